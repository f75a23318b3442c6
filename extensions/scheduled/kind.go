package scheduled

import (
	"time"

	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// Kind is what makes an extension an interval or a cron extension.
type Kind struct {
	// ID is the extension's kind ("interval", "cron"): the prefix of its
	// trigger keys and of its log lines.
	ID string
	// Parse builds a subscription's schedule from its parameters. start is
	// when Gofer stored the subscription (the interval's anchor); for
	// validation at subscribe time, before Gofer stores it, it is the
	// current time.
	Parse func(params map[string]string, start time.Time) (schedule.Ticker, error)
	// Key is the trigger key of a tick (schedule.IntervalKey, CronKey).
	Key func(sub schedule.Subscription, tick time.Time) string
	// Docs documents the extension (GET /api/info); the catch-up
	// parameters are added to it.
	Docs extension.Documentation
}

// Subscription parameters every scheduled extension takes.
const (
	ParamCatchUp       = "catch_up"
	ParamCatchUpWindow = "catch_up_window"
)

// Run variables a scheduled run carries (a Gofer addition; upstream's
// interval and cron extensions send none).
const (
	// VarScheduledTime is the tick the run was started for, unix seconds.
	VarScheduledTime = "GOFER_EXTENSION_SCHEDULED_TIME"
)

var catchUpParams = []extension.Param{
	{Key: ParamCatchUp, Documentation: "What to do with ticks missed while the extension or the cluster was down: skip, latest (default) or all."},
	{Key: ParamCatchUpWindow, Documentation: "With catch_up=all: how far back missed ticks still fire (Go duration, default 1h, at most 168h)."},
}
