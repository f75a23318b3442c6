package scheduled_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/extensions/scheduled"
	"github.com/goferhq/gofer/extensions/scheduled/scheduledtest"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// hourly ticks on the hour after the subscription's creation; the
// worker's re-checks (Recheck, 1m by default) fall between ticks.
var hourly = map[string]string{"every": "1h"}

// eventually waits (real time, bounded) for a worker goroutine to reach
// a state; it asserts nothing about how long that takes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	giveUp := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(giveUp) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func debugLists(e *scheduled.Extension, n int) func() bool {
	return func() bool {
		return strings.HasPrefix(e.Debug(context.Background()), fmt.Sprintf("interval extension, %d subscriptions\n", n))
	}
}

func waitTimer(t *testing.T, c *clock.Fake, at time.Time, what string) {
	t.Helper()
	if !c.WaitTimerAt(at, wait) {
		t.Fatalf("no timer for %s at %s; next deadline %s", what, at, c.NextDeadline())
	}
}

func expectStart(t *testing.T, g *scheduledtest.Gofer, s schedule.Subscription, tick time.Time) {
	t.Helper()
	if st, ok := g.Started(wait); !ok || st.Key != schedule.IntervalKey(s, tick) {
		t.Fatalf("want the run of tick %s, got %+v (started %v)", tick, st, ok)
	}
}

// TestRefusedSkipDoesNotPassTheTick: Gofer refuses a tick's run (the
// pipeline is disabled) and then the report that it was skipped; the
// worker must not move past the tick (it would be neither fired nor
// recorded) but reads the subscription again a minute later and decides
// the tick again from Gofer's watermark.
func TestRefusedSkipDoesNotPassTheTick(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	c := clock.NewFake(created)
	g := scheduledtest.New(c)
	g.Store(sub, hourly, created, 0)
	g.Refuse(&extension.APIError{Status: http.StatusConflict, Message: "pipeline is disabled"})
	g.RefuseSkips(&extension.APIError{Status: http.StatusBadRequest, Message: "tick is in the future"})
	start(t, c, g, hourly)
	t1 := created.Add(time.Hour)
	waitTimer(t, c, t1, "tick 1")
	c.Set(t1)
	waitTimer(t, c, t1.Add(time.Minute), "the re-check after a refused skip report")
	if wm, sk := g.Watermark(sub), g.Skipped(sub); wm != 0 || len(sk) != 0 {
		t.Fatalf("watermark %d, skipped %v: nothing was recorded", wm, sk)
	}
	g.Refuse(nil)
	g.RefuseSkips(nil)
	c.Set(t1.Add(time.Minute))
	expectStart(t, g, sub, t1) // catch_up latest: the tick fires late
}

// TestDeletedSubscriptionStopsItsWorker: a subscription deleted without
// its worker being told (pipeline or namespace deleted, a lost
// unsubscribe) stops the worker at its next tick, instead of a zombie
// that asks Gofer twice a tick forever.
func TestDeletedSubscriptionStopsItsWorker(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	c := clock.NewFake(created)
	g := scheduledtest.New(c)
	g.Store(sub, hourly, created, 0)
	e := start(t, c, g, hourly)
	t1 := created.Add(time.Hour)
	waitTimer(t, c, t1, "tick 1")
	g.Delete(sub)
	c.Set(t1)
	eventually(t, "the worker of a deleted subscription stops", debugLists(e, 0))
	if n := c.Timers(); n != 0 {
		t.Fatalf("%d timers left; next %s", n, c.NextDeadline())
	}
	if s := g.Skipped(sub); len(s) != 0 {
		t.Fatalf("skipped %v", s)
	}
}

// TestDisabledSubscriptionPauses: a tick refused because the subscription
// was disabled is not recorded as skipped; the worker re-checks every
// minute and, once the subscription is active again, catches up from
// Gofer's watermark.
func TestDisabledSubscriptionPauses(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	c := clock.NewFake(created)
	g := scheduledtest.New(c)
	g.Store(sub, hourly, created, 0)
	start(t, c, g, hourly)
	t1 := created.Add(time.Hour)
	waitTimer(t, c, t1, "tick 1")
	g.SetStatus(sub, "disabled")
	c.Set(t1)
	waitTimer(t, c, t1.Add(time.Minute), "the first re-check")
	c.Set(t1.Add(time.Minute))
	waitTimer(t, c, t1.Add(2*time.Minute), "the second re-check")
	if s, n := g.Skipped(sub), len(g.Starts()); len(s) != 0 || n != 0 {
		t.Fatalf("while disabled: skipped %v, %d runs", s, n)
	}
	g.SetStatus(sub, "active")
	c.Set(t1.Add(2 * time.Minute))
	expectStart(t, g, sub, t1)
	waitTimer(t, c, created.Add(2*time.Hour), "tick 2")
	if s := g.Skipped(sub); len(s) != 0 {
		t.Fatalf("skipped %v", s)
	}
}

// TestDisabledAtLoadWaits: enabling a subscription subscribes it before
// the enable is stored, so the new worker may load it still disabled; it
// waits instead of turning its catch-up tick into a skip.
func TestDisabledAtLoadWaits(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	t1 := created.Add(time.Hour)
	now := t1.Add(30 * time.Second) // tick 1 is due: the catch-up fires it
	c := clock.NewFake(now)
	g := scheduledtest.New(c)
	g.Store(sub, hourly, created, 0)
	g.SetStatus(sub, "disabled")
	start(t, c, g, hourly)
	waitTimer(t, c, now.Add(time.Minute), "the re-check of a disabled subscription")
	if s, n := g.Skipped(sub), len(g.Starts()); len(s) != 0 || n != 0 {
		t.Fatalf("while disabled: skipped %v, %d runs", s, n)
	}
	g.SetStatus(sub, "active")
	c.Set(now.Add(time.Minute))
	expectStart(t, g, sub, t1)
}

// TestResubscribeReplacesTheWorker: a subscription deleted and made again
// under the same id (same parameters) gets a new worker anchored at the
// new creation; the old worker, with the old anchor, is gone.
func TestResubscribeReplacesTheWorker(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	c := clock.NewFake(created)
	g := scheduledtest.New(c)
	g.Store(sub, hourly, created, 0)
	e := start(t, c, g, hourly)
	waitTimer(t, c, created.Add(time.Hour), "tick 1 of the first subscription")

	recreated := created.Add(10 * time.Minute)
	c.Set(recreated)
	g.Delete(sub)
	g.Store(sub, hourly, recreated, 0)
	if err := e.Subscribe(context.Background(), extension.Subscription{NamespaceID: sub.Namespace, PipelineID: sub.Pipeline, ID: sub.ID, Params: hourly}); err != nil {
		t.Fatal(err)
	}
	waitTimer(t, c, recreated.Add(time.Hour), "tick 1 of the recreated subscription")
	eventually(t, "one worker, one timer", func() bool { return c.Timers() == 1 })
	c.Set(recreated.Add(time.Hour))
	expectStart(t, g, sub, recreated.Add(time.Hour))
	if n := len(g.Starts()); n != 1 {
		t.Fatalf("%d runs, want 1: %+v", n, g.Starts())
	}
}

// TestResyncHealsLostCalls: every Resync the extension lists its
// subscriptions from Gofer: a subscription it was never told of gets a
// worker, one Gofer no longer has loses its worker, a disabled one gets
// none, and one Gofer has not stored yet (subscribe comes first) keeps
// its worker.
func TestResyncHealsLostCalls(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	c := clock.NewFake(created)
	g := scheduledtest.New(c)
	lost := schedule.Subscription{Namespace: "default", Pipeline: "p", ID: "lost-subscribe"}
	gone := schedule.Subscription{Namespace: "default", Pipeline: "p", ID: "lost-unsubscribe"}
	off := schedule.Subscription{Namespace: "default", Pipeline: "p", ID: "disabled"}
	young := schedule.Subscription{Namespace: "default", Pipeline: "p", ID: "not-stored-yet"}
	g.Store(lost, hourly, created, 0)
	g.Store(gone, map[string]string{"every": "2h"}, created, 0)
	g.Store(off, hourly, created, 0)
	g.SetStatus(off, "disabled")
	e := scheduled.New(every, scheduled.Options{Clock: c, Gofer: g, RetryMin: time.Second, RetryMax: time.Second,
		NotStoredFor: time.Hour, Resync: 5 * time.Minute})
	t.Cleanup(func() { e.Shutdown(context.Background()) })
	if err := e.Init(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []schedule.Subscription{gone, young} {
		if err := e.Subscribe(context.Background(), extension.Subscription{NamespaceID: s.Namespace, PipelineID: s.Pipeline, ID: s.ID, Params: hourly}); err != nil {
			t.Fatal(err)
		}
	}
	waitTimer(t, c, created.Add(time.Hour), "the first tick of "+gone.ID)
	g.Delete(gone)
	waitTimer(t, c, created.Add(5*time.Minute), "the resync")
	c.Set(created.Add(5 * time.Minute))
	waitTimer(t, c, created.Add(10*time.Minute), "the next resync")
	eventually(t, "workers of "+lost.ID+" and "+young.ID+" only", func() bool {
		d := e.Debug(context.Background())
		return debugLists(e, 2)() && strings.Contains(d, lost.String()+" ") && strings.Contains(d, young.String()+" ")
	})
	waitTimer(t, c, created.Add(time.Hour), "the first tick of "+lost.ID)
	c.Set(created.Add(time.Hour))
	expectStart(t, g, lost, created.Add(time.Hour))
}
