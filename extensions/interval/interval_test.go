package interval

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/extensions/scheduled"
	"github.com/goferhq/gofer/extensions/scheduled/scheduledtest"
	"github.com/goferhq/gofer/sdk/go/extension"
)

const wait = 5 * time.Second // real-time bound on a goroutine's reaction, never a timing assertion

var sub = schedule.Subscription{Namespace: "default", Pipeline: "nightly", ID: "every10"}

func settings(min string) func(string) string {
	return func(k string) string {
		if k == schedule.SettingMinInterval {
			return min
		}
		return ""
	}
}

func newExt(t *testing.T, c clock.Clock, g scheduled.Gofer) *scheduled.Extension {
	t.Helper()
	e := scheduled.New(Kind(settings("1s")), scheduled.Options{Clock: c, Gofer: g, RetryMin: time.Second, RetryMax: time.Second})
	t.Cleanup(func() { e.Shutdown(context.Background()) })
	return e
}

func subscribe(t *testing.T, e *scheduled.Extension, params map[string]string) {
	t.Helper()
	if err := e.Subscribe(context.Background(), extension.Subscription{NamespaceID: sub.Namespace, PipelineID: sub.Pipeline, ID: sub.ID, Params: params}); err != nil {
		t.Fatal(err)
	}
}

// step waits until the extension's timer for tick is armed, moves the
// clock to it and returns the run start that follows.
func step(t *testing.T, c *clock.Fake, g *scheduledtest.Gofer, tick time.Time) scheduledtest.Start {
	t.Helper()
	if !c.WaitTimerAt(tick, wait) {
		t.Fatalf("no timer armed for the tick at %s (next deadline %s)", tick, c.NextDeadline())
	}
	c.Set(tick)
	st, ok := g.Started(wait)
	if !ok {
		t.Fatalf("no run started for the tick at %s", tick)
	}
	return st
}

// TestIntervalFiresOnTime: ticks fall at created+k·every (created cut to
// the second), each run starts at its tick's instant with the tick's key
// and the scheduled time as a variable, and a timer waits for each tick.
func TestIntervalFiresOnTime(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 400_000_000, time.UTC)
	c := clock.NewFake(created.Add(time.Second))
	g := scheduledtest.New(c)
	g.Store(sub, map[string]string{"every": "10s"}, created, 0)
	e := newExt(t, c, g)
	subscribe(t, e, map[string]string{"every": "10s"})

	anchor := created.Truncate(time.Second)
	for k := 1; k <= 5; k++ {
		tick := anchor.Add(time.Duration(k) * 10 * time.Second)
		st := step(t, c, g, tick)
		if !st.At.Equal(tick) || st.Key != schedule.IntervalKey(sub, tick) || st.Variables[scheduled.VarScheduledTime] != fmt.Sprint(tick.Unix()) {
			t.Fatalf("tick %d: start %+v, want key %s at %s", k, st, schedule.IntervalKey(sub, tick), tick)
		}
	}
	if n := len(g.Starts()); n != 5 {
		t.Fatalf("%d starts, want 5", n)
	}
	// Subscribing again with the same parameters is a no-op: no second
	// worker fires the next tick twice.
	subscribe(t, e, map[string]string{"every": "10s"})
	tick := anchor.Add(60 * time.Second)
	step(t, c, g, tick)
	if _, ok := g.Started(100 * time.Millisecond); ok {
		t.Fatal("a repeated subscribe started a second worker")
	}
	if len(g.Skipped(sub)) != 0 {
		t.Fatalf("skips %v while on time", g.Skipped(sub))
	}
}

// TestIntervalRefusesBadSettings: the errors name the parameter.
func TestIntervalRefusesBadSettings(t *testing.T) {
	c := clock.NewFake(time.Unix(1000, 0))
	e := scheduled.New(Kind(settings("")), scheduled.Options{Clock: c, Gofer: scheduledtest.New(c)})
	defer e.Shutdown(context.Background())
	for _, p := range []map[string]string{{}, {"every": "soon"}, {"every": "30s"}, {"every": "1m", "catch_up": "never"}} {
		err := e.Subscribe(context.Background(), extension.Subscription{NamespaceID: "n", PipelineID: "p", ID: "s", Params: p})
		if err == nil {
			t.Errorf("params %v accepted", p)
		}
	}
}

// TestIntervalCatchUpAfterRestart: an extension restarted after missing
// ticks reads the watermark Gofer kept and applies the policy — latest
// fires the newest missed tick and reports the older ones as skipped,
// skip fires nothing late, all fires every missed tick within the window
// — and no tick is fired twice.
func TestIntervalCatchUpAfterRestart(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tick := func(k int) time.Time { return created.Add(time.Duration(k) * 10 * time.Second) }
	cases := []struct {
		policy    string
		window    string
		wantFired []int // ticks fired at boot (k)
		wantSkip  []int
	}{
		{policy: "latest", wantFired: []int{7}, wantSkip: []int{4, 5, 6}},
		{policy: "", wantFired: []int{7}, wantSkip: []int{4, 5, 6}},
		{policy: "skip", wantFired: []int{7}, wantSkip: []int{4, 5, 6}}, // tick 7 is within the 1m grace
		{policy: "all", wantFired: []int{4, 5, 6, 7}},
		{policy: "all", window: "25s", wantFired: []int{5, 6, 7}, wantSkip: []int{4}},
	}
	for _, tc := range cases {
		t.Run(tc.policy+tc.window, func(t *testing.T) {
			params := map[string]string{"every": "10s", "catch_up": tc.policy, "catch_up_window": tc.window}
			// Down from just after tick 3 to 5s after tick 7.
			c := clock.NewFake(tick(7).Add(5 * time.Second))
			g := scheduledtest.New(c)
			g.Store(sub, params, created, tick(3).UnixMilli())
			e := newExt(t, c, g)
			subscribe(t, e, params)
			var fired []int
			for range tc.wantFired {
				st, ok := g.Started(wait)
				if !ok {
					t.Fatalf("fired %v, want %v", fired, tc.wantFired)
				}
				for k := 4; k <= 7; k++ {
					if st.Key == schedule.IntervalKey(sub, tick(k)) {
						fired = append(fired, k)
					}
				}
			}
			if !c.WaitTimerAt(tick(8), wait) {
				t.Fatal("no timer for the next tick after catching up")
			}
			if !slices.Equal(fired, tc.wantFired) {
				t.Fatalf("fired %v, want %v", fired, tc.wantFired)
			}
			var skipped []int
			for _, u := range g.Skipped(sub) {
				skipped = append(skipped, int((u-created.Unix())/10))
			}
			if !slices.Equal(skipped, tc.wantSkip) {
				t.Fatalf("skipped %v, want %v", skipped, tc.wantSkip)
			}
			if wm := g.Watermark(sub); wm != tick(7).UnixMilli() {
				t.Fatalf("watermark %d, want tick 7", wm)
			}
			// Then on time again.
			if st := step(t, c, g, tick(8)); st.Key != schedule.IntervalKey(sub, tick(8)) {
				t.Fatalf("after catch-up: %+v", st)
			}
		})
	}
}

// TestIntervalSkipPolicyDropsLateTicks: with catch_up=skip a tick more
// than the grace late is skipped, not fired.
func TestIntervalSkipPolicyDropsLateTicks(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	params := map[string]string{"every": "10m", "catch_up": "skip"}
	tick := func(k int) time.Time { return created.Add(time.Duration(k) * 10 * time.Minute) }
	c := clock.NewFake(tick(3).Add(2 * time.Minute)) // tick 3 is 2m late: beyond the 1m grace
	g := scheduledtest.New(c)
	g.Store(sub, params, created, 0)
	e := newExt(t, c, g)
	subscribe(t, e, params)
	if !c.WaitTimerAt(tick(4), wait) {
		t.Fatal("no timer for tick 4")
	}
	if n := len(g.Starts()); n != 0 {
		t.Fatalf("%d late ticks fired under skip", n)
	}
	if got := g.Skipped(sub); len(got) != 3 || got[2] != tick(3).Unix() {
		t.Fatalf("skipped %v, want ticks 1-3", got)
	}
	step(t, c, g, tick(4))
}

// TestIntervalRetriesWithTheSameKey: while Gofer is unreachable the tick
// is retried with the same key; once back, it starts once (latest).
func TestIntervalRetriesWithTheSameKey(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	params := map[string]string{"every": "10s"}
	c := clock.NewFake(created.Add(time.Second))
	g := scheduledtest.New(c)
	g.Store(sub, params, created, 0)
	e := newExt(t, c, g)
	subscribe(t, e, params)
	if !c.WaitTimerAt(created.Add(10*time.Second), wait) {
		t.Fatal("no timer for tick 1")
	}
	g.SetDown(true)
	c.Set(created.Add(10 * time.Second))
	if !c.WaitTimerAt(created.Add(11*time.Second), wait) { // the retry backoff
		t.Fatal("no retry timer")
	}
	g.SetDown(false)
	c.Set(created.Add(11 * time.Second))
	st, ok := g.Started(wait)
	if !ok || st.Key != schedule.IntervalKey(sub, created.Add(10*time.Second)) {
		t.Fatalf("after Gofer came back: %+v %v", st, ok)
	}
	step(t, c, g, created.Add(20*time.Second))
}
