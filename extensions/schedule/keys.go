package schedule

import (
	"strconv"
	"time"
)

// IntervalKey is the idempotency key of an interval tick:
// "interval:<subscription>:<tick unix seconds>". The leader starts at most one
// run per key, so a retried or replayed tick never fires twice.
func IntervalKey(subscription string, tick time.Time) string {
	return "interval:" + subscription + ":" + strconv.FormatInt(tick.Unix(), 10)
}

// CronKey is the idempotency key of a cron tick:
// "cron:<subscription>:<scheduled unix seconds>".
func CronKey(subscription string, scheduled time.Time) string {
	return "cron:" + subscription + ":" + strconv.FormatInt(scheduled.Unix(), 10)
}
