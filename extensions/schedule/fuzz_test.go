package schedule

import (
	"errors"
	"testing"
	"time"
)

// FuzzParseCron: any expression and zone either parses or returns an error
// wrapping ErrInvalidCron, never panics; and Next on a parsed schedule
// returns promptly a time strictly after its argument, or zero.
func FuzzParseCron(f *testing.F) {
	for _, seed := range []struct {
		expr, tz string
		unix     int64
	}{
		{"* * * * * *", "", 1796587200},
		{"30 2 * * *", "America/New_York", 1772928000}, // the day before a spring-forward
		{"30 1 * * *", "America/New_York", 1793404800}, // the day before a fall-back
		{"0 * * * * *", "Europe/Berlin", 1792900800},
		{"*/7 1-3 */2 jan-dec mon-fri 2026-2199", "Australia/Lord_Howe", 0},
		{"0 0 29 2 * *", "", 1796587200},
		{"0 0 30 2 * *", "", 1796587200},
		{"59 23 31 12 * 2199", "Pacific/Kiritimati", 7258118400},
		{"CRON_TZ=Pacific/Apia 0 0 * * *", "", 1325030400},
		{"TZ= * * * *", "", 0},
		{"5/9223372036854775807 * * * * 1999/4611686018427387904", "", 0},
		{"1-2-3,,/ */0 - 99999999999999999999 x", "/etc/passwd", -62135596800},
	} {
		f.Add(seed.expr, seed.tz, seed.unix)
	}
	f.Fuzz(func(t *testing.T, expr, tz string, unix int64) {
		s, err := Parse(expr, tz)
		if err != nil {
			if !errors.Is(err, ErrInvalidCron) {
				t.Fatalf("Parse(%q, %q): %v does not wrap ErrInvalidCron", expr, tz, err)
			}
			return
		}
		after := time.Unix(unix, 0)
		for i := 0; i < 3; i++ {
			began := time.Now()
			next := s.Next(after)
			if took := time.Since(began); took > 5*time.Second {
				t.Fatalf("Parse(%q, %q).Next(%v) took %v", expr, tz, after, took)
			}
			if next.IsZero() {
				return
			}
			if !next.After(after) {
				t.Fatalf("Parse(%q, %q).Next(%v) = %v, not after", expr, tz, after, next)
			}
			after = next
		}
	})
}

// FuzzParseInterval: any "every" and minimum either parse or return an error
// wrapping ErrInvalidInterval; a parsed interval respects the minimum, and
// Next is strictly after its argument, on the grid.
func FuzzParseInterval(f *testing.F) {
	for _, seed := range []struct {
		every, min string
		start, now int64
	}{
		{"1m", "", 1796587200, 1796587200},
		{"90s", "30s", 1796587200, 1796590000},
		{"1h30m", "1m", 0, 253402300799},
		{"30s", "1m", 0, 0},
		{"5", "x", 0, 0},
		{"-1m", "-1h", 0, 0},
		{"2562047h", "1s", -62135596800, 253402300799},
	} {
		f.Add(seed.every, seed.min, seed.start, seed.now)
	}
	f.Fuzz(func(t *testing.T, every, min string, startUnix, nowUnix int64) {
		m, err := MinInterval(map[string]string{SettingMinInterval: min})
		if err != nil {
			if !errors.Is(err, ErrInvalidInterval) {
				t.Fatalf("MinInterval(%q): %v does not wrap ErrInvalidInterval", min, err)
			}
			return
		}
		iv, err := ParseInterval(every, m, time.Unix(startUnix, 0))
		if err != nil {
			if !errors.Is(err, ErrInvalidInterval) {
				t.Fatalf("ParseInterval(%q): %v does not wrap ErrInvalidInterval", every, err)
			}
			return
		}
		if iv.Every < m || iv.Every < MinIntervalFloor {
			t.Fatalf("ParseInterval(%q, %v) = %v, below the minimum", every, m, iv.Every)
		}
		now := time.Unix(nowUnix, 0)
		next := iv.Next(now)
		if next.IsZero() {
			return
		}
		if !next.After(now) {
			t.Fatalf("%+v.Next(%v) = %v, not after", iv, now, next)
		}
		if !now.Before(iv.Start) && next.Sub(now) > iv.Every {
			t.Fatalf("%+v.Next(%v) = %v, more than one period ahead", iv, now, next)
		}
		// A decision over the same schedule never panics and never fires a
		// tick after now.
		d := Due(iv, iv.Start, now, CatchUp{Policy: PolicyAll})
		for _, f := range d.Fire {
			if f.After(now) || !f.After(iv.Start) {
				t.Fatalf("Due fired %v outside (%v, %v]", f, iv.Start, now)
			}
		}
	})
}
