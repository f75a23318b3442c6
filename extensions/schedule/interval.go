package schedule

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidInterval marks every interval error: a bad "every" or a bad
// minimum setting. The message names the parameter or setting at fault.
var ErrInvalidInterval = errors.New("invalid interval")

// DefaultMinInterval is the interval extension's minimum when the install
// sets none (upstream's default).
const DefaultMinInterval = time.Minute

// MinIntervalFloor is the least minimum an install may set: trigger keys carry
// whole seconds, so two ticks must never share one.
const MinIntervalFloor = time.Second

// Setting names for the minimum: MIN_INTERVAL is upstream's; MIN_DURATION is
// the name the seed documents. Either is accepted.
const (
	SettingMinInterval = "MIN_INTERVAL"
	SettingMinDuration = "MIN_DURATION"
)

// MinInterval reads the minimum interval from the install's settings. Both
// names may be given only with equal values, so a typo in one cannot be
// silently overridden by the other.
func MinInterval(settings map[string]string) (time.Duration, error) {
	var (
		min  time.Duration
		from string
	)
	for _, name := range []string{SettingMinInterval, SettingMinDuration} {
		text, ok := settings[name]
		if !ok || text == "" {
			continue
		}
		d, err := time.ParseDuration(text)
		if err != nil {
			return 0, fmt.Errorf("%w: install setting %s %q is not a duration (e.g. 1m, 90s)", ErrInvalidInterval, name, text)
		}
		if d < MinIntervalFloor {
			return 0, fmt.Errorf("%w: install setting %s %q is below %s", ErrInvalidInterval, name, text, MinIntervalFloor)
		}
		if from != "" && d != min {
			return 0, fmt.Errorf("%w: install settings %s (%s) and %s (%s) disagree; set one", ErrInvalidInterval, from, min, name, d)
		}
		min, from = d, name
	}
	if from == "" {
		return DefaultMinInterval, nil
	}
	return min, nil
}

// Interval fires every Every, anchored at Start: its ticks are Start+k·Every
// for k ≥ 1, so the first is one period after the subscription starts (as
// upstream) and a restart resumes on the same grid instead of drifting.
type Interval struct {
	Start time.Time
	Every time.Duration
}

// ParseInterval parses the subscription parameter "every" (a Go duration) and
// checks it against the install's minimum (see MinInterval).
func ParseInterval(every string, min time.Duration, start time.Time) (Interval, error) {
	if every == "" {
		return Interval{}, fmt.Errorf("%w: parameter every is required (a duration such as 5m or 1h30m)", ErrInvalidInterval)
	}
	d, err := time.ParseDuration(every)
	if err != nil {
		return Interval{}, fmt.Errorf("%w: parameter every %q is not a duration (e.g. 5m, 1h30m)", ErrInvalidInterval, every)
	}
	if min < MinIntervalFloor {
		min = MinIntervalFloor
	}
	if d < min {
		return Interval{}, fmt.Errorf("%w: parameter every %q is below the minimum %s (install setting %s or %s)", ErrInvalidInterval, every, min, SettingMinInterval, SettingMinDuration)
	}
	return Interval{Start: start, Every: d}, nil
}

// Next returns the first tick strictly after after (zero if Every is not
// positive).
func (iv Interval) Next(after time.Time) time.Time {
	if iv.Every <= 0 {
		return time.Time{}
	}
	if after.Before(iv.Start) {
		return iv.Start.Add(iv.Every)
	}
	// Sub saturates beyond ~292 years, so jump in steps of at most that much;
	// each step stays on the grid.
	t := iv.Start
	for i := 0; i < 64 && !t.After(after); i++ {
		n := after.Sub(t) / iv.Every
		t = t.Add(n * iv.Every).Add(iv.Every)
	}
	if !t.After(after) {
		return time.Time{}
	}
	return t
}
