// Package retry holds the waiting that retry loops share: a sleep that
// ends early when its context does, so a loop that backs off never
// outlives the leadership, the request or the signal it serves.
package retry

import (
	"context"
	"time"
)

// Sleep waits d. It returns false if ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
