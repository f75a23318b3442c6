package reconcile

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/agent/clock"
)

// Result is what a pass tells the loop about the next one.
type Result struct {
	// Hold: no pass before this time, whatever changes (a rate limit).
	// Zero: none.
	Hold time.Time
	// Wake: the next pass comes at the latest at this time even if
	// nothing changes (a timeout, a retry due). A time not after now
	// means at once. Zero: after LoopConfig.Idle, or only on a change.
	Wake time.Time
}

// LoopConfig describes a reconcile loop.
type LoopConfig struct {
	// Pass looks at state and acts. An error is logged and the next pass
	// comes after a backoff (MinBackoff doubling to MaxBackoff, reset by
	// a pass that succeeds), whatever changes meanwhile.
	Pass func(ctx context.Context) (Result, error)
	// Changes returns a channel closed at the next state change (an
	// fsm.Notifier's Changed); it is taken before each pass, so no change
	// is missed. Nil: the loop wakes only on deadlines and pokes.
	Changes func() <-chan struct{}
	// Gap is waited after every wake before the pass, so a burst of
	// changes becomes one pass.
	Gap time.Duration
	// Idle is the longest wait for a change when the pass named no Wake
	// time (0: wait for a change however long it takes).
	Idle time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed pass
	// (defaults 1 s and 30 s).
	MinBackoff, MaxBackoff time.Duration
	Clock                  clock.Clock
	Logger                 hclog.Logger
}

// Loop runs passes until its context ends.
type Loop struct {
	cfg  LoopConfig
	kick chan struct{}
	// waiting, if set (tests), is called just before the loop waits for
	// a wake, with the change channel it waits on.
	waiting func(changed <-chan struct{}, kick chan struct{})
}

// NewLoop makes a loop; Run runs it.
func NewLoop(cfg LoopConfig) *Loop {
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	return &Loop{cfg: cfg, kick: make(chan struct{}, 1)}
}

// Poke makes the loop pass again soon (after Gap). Pokes coalesce; it
// never blocks.
func (l *Loop) Poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run passes until ctx ends. It starts no goroutine.
func (l *Loop) Run(ctx context.Context) {
	c := l.cfg.Clock
	timer := c.NewTimer(time.Hour)
	defer timer.Stop()
	// sleep waits d on the loop's one timer (no allocation per pass).
	sleep := func(d time.Duration) bool {
		timer.Stop()
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-timer.C():
			return true
		}
	}
	failures := 0
	for {
		// A poke before the pass is covered by it: drop it, so a burst
		// of pokes makes one pass, not two.
		select {
		case <-l.kick:
		default:
		}
		var changed <-chan struct{}
		if l.cfg.Changes != nil {
			changed = l.cfg.Changes()
		}
		res, err := l.cfg.Pass(ctx)
		if ctx.Err() != nil {
			return
		}
		now := c.Now()
		if err != nil {
			failures++
			wait := Backoff(l.cfg.MinBackoff, l.cfg.MaxBackoff, failures)
			l.cfg.Logger.Error("pass failed; retrying", "error", err, "backoff", wait)
			res = Result{Hold: now.Add(wait), Wake: now.Add(wait)}
		} else {
			failures = 0
		}
		if res.Hold.After(now) {
			if !sleep(res.Hold.Sub(now)) {
				return
			}
			now = c.Now()
		}
		wait := l.cfg.Idle
		if !res.Wake.IsZero() {
			wait = res.Wake.Sub(now)
		}
		if l.waiting != nil {
			l.waiting(changed, l.kick)
		}
		if res.Wake.IsZero() && wait <= 0 {
			// Only a change or a poke wakes the loop.
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-l.kick:
			}
		} else if wait > 0 {
			timer.Stop()
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-l.kick:
			case <-timer.C():
			}
		}
		if l.cfg.Gap > 0 && !sleep(l.cfg.Gap) {
			return
		}
	}
}
