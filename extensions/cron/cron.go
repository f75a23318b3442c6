// Package cron is the built-in cron extension (`gofer service extension
// cron`): it starts a run of each subscribed pipeline at the times a
// six-field cron expression names, in an optional IANA time zone, with
// catch-up after downtime (docs/triggers.md).
package cron

import (
	"time"

	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/extensions/scheduled"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// Subscription parameters.
const (
	ParamExpression = "expression"
	ParamTimezone   = "timezone"
)

// Kind is the cron kind.
func Kind() scheduled.Kind {
	return scheduled.Kind{
		ID: "cron",
		Parse: func(params map[string]string, _ time.Time) (schedule.Ticker, error) {
			return schedule.Parse(params[ParamExpression], params[ParamTimezone])
		},
		Key: schedule.CronKey,
		Docs: extension.Documentation{
			PipelineSubscriptionParams: []extension.Param{
				{Key: ParamExpression, Required: true, Documentation: "minute hour day-of-month month day-of-week year, e.g. `0 3 * * mon-fri *`."},
				{Key: ParamTimezone, Documentation: "IANA time zone the expression is read in (default UTC), e.g. Europe/Berlin."},
			},
			Body: "Starts a run of the pipeline at the times the expression names. Each tick carries the idempotency key cron:<namespace>/<pipeline>/<subscription>:<scheduled unix>, so a tick starts at most one run.",
		},
	}
}

// New returns the cron extension.
func New(opts scheduled.Options) *scheduled.Extension { return scheduled.New(Kind(), opts) }
