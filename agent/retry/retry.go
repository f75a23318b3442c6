// Package retry holds the waiting that retry loops share: a sleep that
// ends early when its context does, so a loop that backs off never
// outlives the leadership, the request or the signal it serves.
package retry

import (
	"context"
	"time"

	"github.com/goferhq/gofer/agent/clock"
)

// Sleep waits d on the real clock (clock.Sleep; code that has an injected
// clock calls that). It returns false if ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	return clock.Sleep(ctx, clock.Real{}, d)
}
