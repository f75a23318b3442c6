package cron

import (
	"context"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/extensions/scheduled"
	"github.com/goferhq/gofer/extensions/scheduled/scheduledtest"
	"github.com/goferhq/gofer/sdk/go/extension"
)

const wait = 5 * time.Second // real-time bound on a goroutine's reaction, never a timing assertion

// TestCronAcrossDST: a fixed-time job in New York, evaluated with an
// injected clock across both 2026 changes, fires at 02:30 EST, at the
// 03:00 EDT jump on the spring-forward day (02:30 does not exist), at
// 02:30 EDT after it; a 01:30 job fires once on the fall-back day (at the
// first 01:30). Each run carries the scheduled instant's key.
func TestCronAcrossDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, expr string
		created    time.Time
		want       []time.Time
	}{
		{"spring forward", "30 2 * * * *", time.Date(2026, 3, 6, 12, 0, 0, 0, ny), []time.Time{
			time.Date(2026, 3, 7, 2, 30, 0, 0, ny),      // EST, 07:30Z
			time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC), // the jump: 03:00 EDT
			time.Date(2026, 3, 9, 2, 30, 0, 0, ny),      // EDT, 06:30Z
		}},
		{"fall back", "30 1 * * * *", time.Date(2026, 10, 31, 12, 0, 0, 0, ny), []time.Time{
			time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), // 01:30 EDT, the first occurrence
			time.Date(2026, 11, 2, 1, 30, 0, 0, ny),       // 01:30 EST the next day
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := schedule.Subscription{Namespace: "default", Pipeline: "p", ID: "nightly"}
			params := map[string]string{ParamExpression: tc.expr, ParamTimezone: "America/New_York"}
			c := clock.NewFake(tc.created.Add(time.Minute))
			g := scheduledtest.New(c)
			g.Store(sub, params, tc.created, 0)
			e := scheduled.New(Kind(), scheduled.Options{Clock: c, Gofer: g})
			defer e.Shutdown(context.Background())
			if err := e.Subscribe(context.Background(), extension.Subscription{NamespaceID: sub.Namespace, PipelineID: sub.Pipeline, ID: sub.ID, Params: params}); err != nil {
				t.Fatal(err)
			}
			for _, tick := range tc.want {
				if !c.WaitTimerAt(tick, wait) {
					t.Fatalf("no timer armed for %s (next deadline %s)", tick.UTC(), c.NextDeadline().UTC())
				}
				c.Set(tick)
				st, ok := g.Started(wait)
				if !ok || st.Key != schedule.CronKey(sub, tick) || !st.At.Equal(tick) {
					t.Fatalf("at %s: %+v %v, want key %s", tick.UTC(), st, ok, schedule.CronKey(sub, tick))
				}
			}
			if n := len(g.Starts()); n != len(tc.want) {
				t.Fatalf("%d runs, want %d", n, len(tc.want))
			}
			if s := g.Skipped(sub); len(s) != 0 {
				t.Fatalf("skipped %v on time", s)
			}
		})
	}
}

// TestCronRefusesBadExpression: the parser's message reaches the caller.
func TestCronRefusesBadExpression(t *testing.T) {
	e := New(scheduled.Options{Clock: clock.NewFake(time.Unix(0, 0))})
	defer e.Shutdown(context.Background())
	err := e.Subscribe(context.Background(), extension.Subscription{NamespaceID: "n", PipelineID: "p", ID: "s", Params: map[string]string{ParamExpression: "0 24 * * * *"}})
	if err == nil || err.Error() != `invalid cron expression: hour field "24": 24 is out of range 0-23` {
		t.Fatalf("got %v", err)
	}
	err = e.Subscribe(context.Background(), extension.Subscription{NamespaceID: "n", PipelineID: "p", ID: "s", Params: map[string]string{ParamExpression: "0 1 * * * *", ParamTimezone: "Mars/Olympus"}})
	if err == nil {
		t.Fatal("a bad time zone was accepted")
	}
}
