package schedule

import (
	"strconv"
	"time"
)

// Subscription names a pipeline subscription. A subscription id is unique
// only within its pipeline, while an extension's idempotency keys share one
// scope (its token): two pipelines subscribed as "nightly" would otherwise
// build the same key for the same tick, and the second run start would be
// refused as a reused key. So keys carry all three parts.
type Subscription struct {
	Namespace, Pipeline, ID string
}

// String is "<namespace>/<pipeline>/<id>", the subscription part of a key.
// Identifiers are at most 32 characters without "/" or ":", so a key stays
// within the API's 128-character limit and splits unambiguously.
func (s Subscription) String() string {
	return s.Namespace + "/" + s.Pipeline + "/" + s.ID
}

// IntervalKey is the idempotency key of an interval tick:
// "interval:<namespace>/<pipeline>/<subscription>:<tick unix seconds>". The
// cluster starts at most one run per key, so a retried or replayed tick never
// fires twice.
func IntervalKey(sub Subscription, tick time.Time) string {
	return "interval:" + sub.String() + ":" + strconv.FormatInt(tick.Unix(), 10)
}

// CronKey is the idempotency key of a cron tick:
// "cron:<namespace>/<pipeline>/<subscription>:<scheduled unix seconds>".
func CronKey(sub Subscription, scheduled time.Time) string {
	return "cron:" + sub.String() + ":" + strconv.FormatInt(scheduled.Unix(), 10)
}
