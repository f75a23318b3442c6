package schedule

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidCatchUp marks a bad catch-up setting.
var ErrInvalidCatchUp = errors.New("invalid catch-up policy")

// Ticker is a schedule: Next returns the first tick strictly after its
// argument, or the zero time when there is none. Schedule and Interval are
// Tickers.
type Ticker interface {
	Next(after time.Time) time.Time
}

// Policy says what happens to ticks that passed while nothing fired them
// (the extension was down, the cluster had no leader, the subscription was
// paused).
type Policy string

const (
	// PolicySkip fires only a tick that is on time (at most Grace old) and
	// skips every other passed tick.
	PolicySkip Policy = "skip"
	// PolicyLatest (the default) fires the most recent passed tick, however
	// late, once, and skips the older ones.
	PolicyLatest Policy = "latest"
	// PolicyAll fires every passed tick within Window, oldest first, at most
	// MaxBatch per evaluation; ticks older than Window are skipped. If none
	// is within Window it fires the most recent, like PolicyLatest.
	PolicyAll Policy = "all"
)

// Defaults and bounds of CatchUp.
const (
	DefaultGrace    = time.Minute
	DefaultWindow   = time.Hour
	MaxWindow       = 7 * 24 * time.Hour
	DefaultMaxBatch = 10
	// MaxListedSkips bounds Decision.Skipped: a subscription down for a year
	// at one tick a minute must not produce half a million events.
	MaxListedSkips = 100
)

// CatchUp is a subscription's catch-up policy.
type CatchUp struct {
	Policy Policy
	// Grace is how late a tick may be and still count as on time (skip).
	Grace time.Duration
	// Window is how far back PolicyAll fires missed ticks.
	Window time.Duration
	// MaxBatch bounds the ticks PolicyAll fires in one evaluation.
	MaxBatch int
}

// ParseCatchUp validates a policy name and window as given in subscription
// parameters ("catch_up", "catch_up_window"); empty values take defaults.
func ParseCatchUp(policy, window string) (CatchUp, error) {
	c := CatchUp{Policy: Policy(policy)}
	switch c.Policy {
	case "":
		c.Policy = PolicyLatest
	case PolicySkip, PolicyLatest, PolicyAll:
	default:
		return CatchUp{}, fmt.Errorf("%w: catch_up %q is not one of skip, latest, all", ErrInvalidCatchUp, policy)
	}
	if window != "" {
		if c.Policy != PolicyAll {
			return CatchUp{}, fmt.Errorf("%w: catch_up_window applies only to catch_up \"all\"", ErrInvalidCatchUp)
		}
		d, err := time.ParseDuration(window)
		if err != nil || d <= 0 || d > MaxWindow {
			return CatchUp{}, fmt.Errorf("%w: catch_up_window %q is not a duration between 1s and %s", ErrInvalidCatchUp, window, MaxWindow)
		}
		c.Window = d
	}
	return c.withDefaults(), nil
}

func (c CatchUp) withDefaults() CatchUp {
	if c.Policy == "" {
		c.Policy = PolicyLatest
	}
	if c.Grace <= 0 {
		c.Grace = DefaultGrace
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Window > MaxWindow {
		c.Window = MaxWindow
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	return c
}

// Decision is what to do now.
type Decision struct {
	// Fire lists the ticks to start runs for, oldest first.
	Fire []time.Time
	// Skipped lists passed ticks that will never fire, oldest first, at most
	// MaxListedSkips of them; each is reported as an event.
	Skipped []time.Time
	// SkippedMore is set when more ticks were skipped than listed; they lie
	// after the last listed one and up to SkippedThrough.
	SkippedMore    bool
	SkippedThrough time.Time
	// Watermark is the new watermark: the last tick fired or skipped. The
	// caller stores it (with the runs it starts) so the same ticks are never
	// decided twice. It equals the old watermark when nothing was due.
	Watermark time.Time
}

// Due decides which ticks of s to fire at now. watermark is the last tick
// already fired or skipped; for a subscription that has fired nothing yet it
// is the subscription's start (ticks at or before it are never due). The
// ticks due are those in (watermark, now]; the policy picks which of them
// fire, and every other one is skipped. Due is pure: the caller supplies now.
func Due(s Ticker, watermark, now time.Time, c CatchUp) Decision {
	c = c.withDefaults()
	d := Decision{Watermark: watermark}
	latest := latestTick(s, watermark, now)
	if latest.IsZero() {
		return d
	}
	switch c.Policy {
	case PolicySkip:
		if now.Sub(latest) <= c.Grace {
			d.Fire = []time.Time{latest}
		}
	case PolicyAll:
		from := now.Add(-c.Window)
		if from.Before(watermark) {
			from = watermark
		}
		// Ticks exactly at now-Window are within it.
		for t := s.Next(from.Add(-time.Nanosecond)); !t.IsZero() && !t.After(now) && len(d.Fire) < c.MaxBatch; t = s.Next(t) {
			if t.After(watermark) {
				d.Fire = append(d.Fire, t)
			}
		}
		if len(d.Fire) == 0 {
			d.Fire = []time.Time{latest}
		}
	default: // PolicyLatest
		d.Fire = []time.Time{latest}
	}
	// Skipped: every due tick before the first fired one, or all due ticks
	// when nothing fires.
	through := latest
	if len(d.Fire) > 0 {
		through = latestTick(s, watermark, d.Fire[0].Add(-time.Nanosecond))
	}
	if !through.IsZero() {
		for t := s.Next(watermark); !t.IsZero() && !t.After(through); t = s.Next(t) {
			if len(d.Skipped) == MaxListedSkips {
				d.SkippedMore, d.SkippedThrough = true, through
				break
			}
			d.Skipped = append(d.Skipped, t)
		}
	}
	if n := len(d.Fire); n > 0 {
		d.Watermark = d.Fire[n-1]
	} else {
		d.Watermark = latest
	}
	return d
}

// latestTick returns the last tick of s in (lo, hi], or zero if none. It
// bisects on time rather than stepping through the ticks, so a watermark
// years old costs about a hundred Next calls, not one per missed tick.
func latestTick(s Ticker, lo, hi time.Time) time.Time {
	first := s.Next(lo)
	if first.IsZero() || first.After(hi) {
		return time.Time{}
	}
	// Invariant: a tick lies in (a, hi]; none lies in (b, hi].
	a, b := lo, hi
	for i := 0; i < 200; i++ {
		t := s.Next(a)
		if n := s.Next(t); n.IsZero() || n.After(hi) {
			return t
		}
		mid := a.Add(b.Sub(a) / 2)
		if !mid.After(a) {
			return t
		}
		if m := s.Next(mid); !m.IsZero() && !m.After(hi) {
			a = mid
		} else {
			b = mid
		}
	}
	return s.Next(a)
}
