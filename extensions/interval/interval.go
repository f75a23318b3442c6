// Package interval is the built-in interval extension
// (`gofer service extension interval`): it starts a run of each subscribed
// pipeline every `every`, on a grid anchored at the subscription's
// creation, with catch-up after downtime (docs/triggers.md).
package interval

import (
	"time"

	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/extensions/scheduled"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// ParamEvery is the subscription parameter: a Go duration.
const ParamEvery = "every"

// Kind is the interval kind; setting reads an install setting (the
// process environment through extension.Config in production).
func Kind(setting func(string) string) scheduled.Kind {
	return scheduled.Kind{
		ID: "interval",
		Parse: func(params map[string]string, start time.Time) (schedule.Ticker, error) {
			min, err := schedule.MinInterval(map[string]string{
				schedule.SettingMinInterval: setting(schedule.SettingMinInterval),
				schedule.SettingMinDuration: setting(schedule.SettingMinDuration),
			})
			if err != nil {
				return nil, err
			}
			// Anchored at the whole second the subscription was stored,
			// so ticks of whole-second intervals fall on whole seconds
			// and every process computes the same grid.
			iv, err := schedule.ParseInterval(params[ParamEvery], min, start.Truncate(time.Second))
			if err != nil {
				return nil, err
			}
			return iv, nil
		},
		Key: schedule.IntervalKey,
		Docs: extension.Documentation{
			ConfigParams: []extension.Param{
				{Key: schedule.SettingMinInterval, Documentation: "The shortest interval a subscription may use (Go duration, default 1m, at least 1s)."},
				{Key: schedule.SettingMinDuration, Documentation: "The same as MIN_INTERVAL, under the name the seed documents; if both are set they must agree."},
			},
			PipelineSubscriptionParams: []extension.Param{
				{Key: ParamEvery, Required: true, Documentation: "How often to start a run (Go duration such as 90s, 5m, 1h30m). Ticks fall at the subscription's creation + k·every."},
			},
			Body: "Starts a run of the pipeline every `every`. Each tick carries the idempotency key interval:<namespace>/<pipeline>/<subscription>:<tick unix>, so a tick starts at most one run.",
		},
	}
}

// New returns the interval extension reading its install settings from
// the environment.
func New(opts scheduled.Options) *scheduled.Extension {
	return scheduled.New(Kind(extension.Config), opts)
}
