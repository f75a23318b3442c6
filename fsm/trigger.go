package fsm

import (
	"strconv"
	"strings"
)

// TriggerPrefixes are the idempotency key prefixes that make a run start by
// an extension's token a trigger (docs/triggers.md).
var TriggerPrefixes = []string{"interval:", "cron:", "github:"}

// IsTriggerKey reports whether key has a trigger prefix.
func IsTriggerKey(key string) bool {
	for _, p := range TriggerPrefixes {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			return true
		}
	}
	return false
}

// TickKey is a trigger key that names a subscription and a tick:
// "<kind>:<namespace>/<pipeline>/<subscription>:<unix seconds>".
type TickKey struct {
	Namespace, Pipeline, Subscription string
	Unix                              int64
}

// ParseTickKey parses an interval or cron trigger key; ok is false for any
// other key (a github delivery id names no subscription).
func ParseTickKey(key string) (TickKey, bool) {
	kind, rest, ok := strings.Cut(key, ":")
	if !ok || (kind != "interval" && kind != "cron") {
		return TickKey{}, false
	}
	sub, unix, ok := strings.Cut(rest, ":")
	if !ok {
		return TickKey{}, false
	}
	parts := strings.Split(sub, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return TickKey{}, false
	}
	n, err := strconv.ParseInt(unix, 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return TickKey{}, false
	}
	return TickKey{Namespace: parts[0], Pipeline: parts[1], Subscription: parts[2], Unix: n}, true
}
