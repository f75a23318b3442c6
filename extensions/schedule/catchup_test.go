package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseCatchUp(t *testing.T) {
	for _, tc := range []struct {
		policy, window string
		want           CatchUp
		err            string
	}{
		{"", "", CatchUp{Policy: PolicyLatest, Grace: DefaultGrace, Window: DefaultWindow, MaxBatch: DefaultMaxBatch}, ""},
		{"skip", "", CatchUp{Policy: PolicySkip, Grace: DefaultGrace, Window: DefaultWindow, MaxBatch: DefaultMaxBatch}, ""},
		{"all", "6h", CatchUp{Policy: PolicyAll, Grace: DefaultGrace, Window: 6 * time.Hour, MaxBatch: DefaultMaxBatch}, ""},
		{"every", "", CatchUp{}, `catch_up "every" is not one of skip, latest, all`},
		{"latest", "1h", CatchUp{}, `catch_up_window applies only to catch_up "all"`},
		{"all", "forever", CatchUp{}, `catch_up_window "forever" is not a duration`},
		{"all", "-1h", CatchUp{}, "not a duration between"},
		{"all", "8d", CatchUp{}, "not a duration between"},
		{"all", "169h", CatchUp{}, "not a duration between"},
	} {
		got, err := ParseCatchUp(tc.policy, tc.window)
		if tc.err != "" {
			if err == nil || !errors.Is(err, ErrInvalidCatchUp) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseCatchUp(%q, %q) = %+v, %v; want error containing %q", tc.policy, tc.window, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseCatchUp(%q, %q) = %+v, %v; want %+v", tc.policy, tc.window, got, err, tc.want)
		}
	}
}

// hm formats instants as 15:04 (UTC) for compact expectations.
func hm(ts []time.Time) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.UTC().Format("01-02 15:04"))
	}
	return strings.Join(out, ",")
}

func TestDue(t *testing.T) {
	start := utc(2026, 12, 1, 0, 0)
	every10 := Interval{Start: start, Every: 10 * time.Minute}
	at := func(h, m int) time.Time { return utc(2026, 12, 1, h, m) }
	hourly := mustParse(t, "0 * * * *", "")
	past := mustParse(t, "0 0 * * * 2020", "")
	for _, tc := range []struct {
		name       string
		s          Ticker
		watermark  time.Time
		now        time.Time
		c          CatchUp
		fire, skip string
		more       bool
		watermarkW time.Time
	}{
		{name: "nothing due before the first tick", s: every10, watermark: start, now: at(0, 9),
			c: CatchUp{}, watermarkW: start},
		{name: "on time: latest fires it", s: every10, watermark: start, now: at(0, 10),
			c: CatchUp{}, fire: "12-01 00:10", watermarkW: at(0, 10)},
		{name: "the same tick is not due twice", s: every10, watermark: at(0, 10), now: at(0, 15),
			c: CatchUp{}, watermarkW: at(0, 10)},
		{name: "on time within grace: skip fires it", s: every10, watermark: start, now: at(0, 10).Add(59 * time.Second),
			c: CatchUp{Policy: PolicySkip}, fire: "12-01 00:10", watermarkW: at(0, 10)},
		{name: "late beyond grace: skip skips it", s: every10, watermark: start, now: at(0, 12),
			c: CatchUp{Policy: PolicySkip}, skip: "12-01 00:10", watermarkW: at(0, 10)},
		{name: "down 35 minutes: skip skips all passed ticks", s: every10, watermark: at(0, 10), now: at(0, 45),
			c: CatchUp{Policy: PolicySkip}, skip: "12-01 00:20,12-01 00:30,12-01 00:40", watermarkW: at(0, 40)},
		{name: "down 35 minutes: skip fires the one on time", s: every10, watermark: at(0, 10), now: at(0, 40).Add(30 * time.Second),
			c: CatchUp{Policy: PolicySkip}, fire: "12-01 00:40", skip: "12-01 00:20,12-01 00:30", watermarkW: at(0, 40)},
		{name: "down 35 minutes: latest fires the newest once", s: every10, watermark: at(0, 10), now: at(0, 45),
			c: CatchUp{}, fire: "12-01 00:40", skip: "12-01 00:20,12-01 00:30", watermarkW: at(0, 40)},
		{name: "down 35 minutes: all fires each", s: every10, watermark: at(0, 10), now: at(0, 45),
			c: CatchUp{Policy: PolicyAll}, fire: "12-01 00:20,12-01 00:30,12-01 00:40", watermarkW: at(0, 40)},
		{name: "all: ticks before the window are skipped, its edge fires", s: every10, watermark: at(0, 10), now: at(0, 50),
			c: CatchUp{Policy: PolicyAll, Window: 20 * time.Minute}, fire: "12-01 00:30,12-01 00:40,12-01 00:50",
			skip: "12-01 00:20", watermarkW: at(0, 50)},
		{name: "all: batch limit leaves the rest for the next call", s: every10, watermark: at(0, 10), now: at(0, 55),
			c: CatchUp{Policy: PolicyAll, MaxBatch: 2}, fire: "12-01 00:20,12-01 00:30", watermarkW: at(0, 30)},
		{name: "all: the next call continues from the watermark", s: every10, watermark: at(0, 30), now: at(0, 55),
			c: CatchUp{Policy: PolicyAll, MaxBatch: 2}, fire: "12-01 00:40,12-01 00:50", watermarkW: at(0, 50)},
		{name: "all: nothing within the window fires the newest", s: hourly, watermark: at(0, 0), now: at(2, 30),
			c: CatchUp{Policy: PolicyAll, Window: 10 * time.Minute}, fire: "12-01 02:00", skip: "12-01 01:00", watermarkW: at(2, 0)},
		{name: "cron: latest after a long outage", s: hourly, watermark: at(0, 0), now: at(5, 1),
			c: CatchUp{}, fire: "12-01 05:00", skip: "12-01 01:00,12-01 02:00,12-01 03:00,12-01 04:00", watermarkW: at(5, 0)},
		// The example in docs/triggers.md: down from 00:30 to 05:10.
		{name: "docs example: skip", s: hourly, watermark: at(0, 0), now: at(5, 10),
			c: CatchUp{Policy: PolicySkip}, skip: "12-01 01:00,12-01 02:00,12-01 03:00,12-01 04:00,12-01 05:00", watermarkW: at(5, 0)},
		{name: "docs example: latest", s: hourly, watermark: at(0, 0), now: at(5, 10),
			c: CatchUp{}, fire: "12-01 05:00", skip: "12-01 01:00,12-01 02:00,12-01 03:00,12-01 04:00", watermarkW: at(5, 0)},
		{name: "docs example: all within 3h", s: hourly, watermark: at(0, 0), now: at(5, 10),
			c: CatchUp{Policy: PolicyAll, Window: 3 * time.Hour}, fire: "12-01 03:00,12-01 04:00,12-01 05:00",
			skip: "12-01 01:00,12-01 02:00", watermarkW: at(5, 0)},
		{name: "cron with no further tick: nothing due", s: past, watermark: start, now: at(5, 0),
			c: CatchUp{}, watermarkW: start},
	} {
		d := Due(tc.s, tc.watermark, tc.now, tc.c)
		if hm(d.Fire) != tc.fire || hm(d.Skipped) != tc.skip || d.SkippedMore != tc.more || !d.Watermark.Equal(tc.watermarkW) {
			t.Errorf("%s:\n got  fire [%s] skip [%s] more %v watermark %v\n want fire [%s] skip [%s] more %v watermark %v",
				tc.name, hm(d.Fire), hm(d.Skipped), d.SkippedMore, d.Watermark, tc.fire, tc.skip, tc.more, tc.watermarkW)
		}
	}
}

// TestDueLongOutage: a year of one-minute ticks is decided with bounded work
// and a bounded skip list that says how far the skipped ticks go.
func TestDueLongOutage(t *testing.T) {
	start := utc(2025, 12, 1, 0, 0)
	iv := Interval{Start: start, Every: time.Minute}
	cron := mustParse(t, "* * * * *", "Europe/Berlin")
	now := utc(2026, 12, 1, 0, 0).Add(30 * time.Second)
	for name, s := range map[string]Ticker{"interval": iv, "cron": cron} {
		calls := &countingTicker{Ticker: s}
		d := Due(calls, start, now, CatchUp{})
		if hm(d.Fire) != "12-01 00:00" || len(d.Skipped) != MaxListedSkips || !d.SkippedMore {
			t.Errorf("%s: fire [%s], %d skipped listed, more %v", name, hm(d.Fire), len(d.Skipped), d.SkippedMore)
		}
		if !d.Skipped[0].Equal(start.Add(time.Minute)) || !d.SkippedThrough.Equal(utc(2026, 11, 30, 23, 59)) {
			t.Errorf("%s: skipped from %v through %v", name, d.Skipped[0], d.SkippedThrough)
		}
		if calls.n > 2000 {
			t.Errorf("%s: %d Next calls for one decision", name, calls.n)
		}
	}
}

type countingTicker struct {
	Ticker
	n int
}

func (c *countingTicker) Next(after time.Time) time.Time { c.n++; return c.Ticker.Next(after) }

// TestDueAcrossCalls replays an outage and recovery with an injected clock:
// each tick is fired or skipped exactly once across successive decisions.
func TestDueAcrossCalls(t *testing.T) {
	start := utc(2026, 12, 1, 0, 0)
	iv := Interval{Start: start, Every: 10 * time.Minute}
	for _, policy := range []Policy{PolicySkip, PolicyLatest, PolicyAll} {
		seen := map[time.Time]string{}
		wm := start
		// Evaluations every 2 minutes, with an outage from 00:35 to 02:07.
		for now := start; now.Before(start.Add(3 * time.Hour)); now = now.Add(2 * time.Minute) {
			if now.After(start.Add(35*time.Minute)) && now.Before(start.Add(127*time.Minute)) {
				continue
			}
			d := Due(iv, wm, now, CatchUp{Policy: policy, MaxBatch: 3})
			for _, f := range d.Fire {
				if seen[f] != "" {
					t.Fatalf("%s: tick %v decided twice", policy, f)
				}
				seen[f] = "fire"
			}
			for _, s := range d.Skipped {
				if seen[s] != "" {
					t.Fatalf("%s: tick %v decided twice", policy, s)
				}
				seen[s] = "skip"
			}
			wm = d.Watermark
		}
		for tick := iv.Next(start); tick.Before(start.Add(3*time.Hour - 2*time.Minute)); tick = iv.Next(tick) {
			if seen[tick] == "" {
				t.Errorf("%s: tick %v never decided", policy, tick.Format("15:04"))
			}
		}
	}
}
