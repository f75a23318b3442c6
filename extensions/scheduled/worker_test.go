package scheduled_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/extensions/scheduled"
	"github.com/goferhq/gofer/extensions/scheduled/scheduledtest"
	"github.com/goferhq/gofer/sdk/go/extension"
)

const wait = 5 * time.Second // real-time bound on a goroutine's reaction, never a timing assertion

// every is a test kind: an interval with no minimum.
var every = scheduled.Kind{
	ID: "interval",
	Parse: func(params map[string]string, start time.Time) (schedule.Ticker, error) {
		return schedule.ParseInterval(params["every"], time.Second, start)
	},
	Key: schedule.IntervalKey,
}

var sub = schedule.Subscription{Namespace: "default", Pipeline: "p", ID: "s"}

func start(t *testing.T, c *clock.Fake, g *scheduledtest.Gofer, params map[string]string) *scheduled.Extension {
	t.Helper()
	e := scheduled.New(every, scheduled.Options{Clock: c, Gofer: g, RetryMin: time.Second, RetryMax: time.Second, NotStoredFor: time.Minute})
	t.Cleanup(func() { e.Shutdown(context.Background()) })
	if err := e.Subscribe(context.Background(), extension.Subscription{NamespaceID: sub.Namespace, PipelineID: sub.Pipeline, ID: sub.ID, Params: params}); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRefusedTickIsSkipped: a tick Gofer refuses for good (a disabled
// subscription: 409) is recorded as skipped and the worker moves on to
// the next tick, which fires once Gofer accepts again.
func TestRefusedTickIsSkipped(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	c := clock.NewFake(created)
	g := scheduledtest.New(c)
	params := map[string]string{"every": "10s"}
	g.Store(sub, params, created, 0)
	g.Refuse(&extension.APIError{Status: http.StatusConflict, Message: "subscription is disabled"})
	start(t, c, g, params)
	t1, t2 := created.Add(10*time.Second), created.Add(20*time.Second)
	if !c.WaitTimerAt(t1, wait) {
		t.Fatal("no timer for tick 1")
	}
	c.Set(t1)
	if !c.WaitTimerAt(t2, wait) {
		t.Fatal("the worker did not move on to tick 2 after a refusal")
	}
	if got := g.Skipped(sub); len(got) != 1 || got[0] != t1.Unix() {
		t.Fatalf("skipped %v, want tick 1", got)
	}
	g.Refuse(nil)
	c.Set(t2)
	if st, ok := g.Started(wait); !ok || st.Key != schedule.IntervalKey(sub, t2) {
		t.Fatalf("tick 2: %+v %v", st, ok)
	}
}

// TestFractionalIntervalResumes: Gofer keeps the watermark in whole
// seconds; a restarted worker of a 1.5 s interval maps it back to the
// tick of that second and neither re-decides it nor skips the next.
func TestFractionalIntervalResumes(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	params := map[string]string{"every": "1500ms"}
	tick := func(k int) time.Time { return created.Add(time.Duration(k) * 1500 * time.Millisecond) }
	c := clock.NewFake(tick(3).Add(100 * time.Millisecond)) // tick 3 (…004.5) fired; its second is stored
	g := scheduledtest.New(c)
	g.Store(sub, params, created, tick(3).Unix()*1000)
	start(t, c, g, params)
	if !c.WaitTimerAt(tick(4), wait) {
		t.Fatalf("no timer for tick 4 (%s); next deadline %s", tick(4), c.NextDeadline())
	}
	if n := len(g.Starts()); n != 0 {
		t.Fatalf("the restarted worker fired %d ticks again", n)
	}
	if s := g.Skipped(sub); len(s) != 0 {
		t.Fatalf("skipped %v", s)
	}
	c.Set(tick(4))
	if st, ok := g.Started(wait); !ok || st.Key != schedule.IntervalKey(sub, tick(4)) {
		t.Fatalf("tick 4: %+v %v", st, ok)
	}
}

// TestUnsubscribeStopsTheWorker: after Unsubscribe no tick fires; a
// subscription Gofer never stores is given up after NotStoredFor.
func TestUnsubscribeStopsTheWorker(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	c := clock.NewFake(created)
	g := scheduledtest.New(c)
	params := map[string]string{"every": "10s"}
	g.Store(sub, params, created, 0)
	e := start(t, c, g, params)
	if !c.WaitTimerAt(created.Add(10*time.Second), wait) {
		t.Fatal("no timer for tick 1")
	}
	if err := e.Unsubscribe(context.Background(), extension.Subscription{NamespaceID: sub.Namespace, PipelineID: sub.Pipeline, ID: sub.ID}); err != nil {
		t.Fatal(err)
	}
	c.Set(created.Add(time.Minute))
	if n := c.Timers(); n != 0 || len(g.Starts()) != 0 {
		t.Fatalf("after unsubscribe: %d timers, %d starts", n, len(g.Starts()))
	}

	ghost := extension.Subscription{NamespaceID: "default", PipelineID: "p", ID: "never-stored", Params: params}
	if err := e.Subscribe(context.Background(), ghost); err != nil {
		t.Fatal(err)
	}
	// Move the clock to each retry until the worker gives up (it
	// retries every second for the minute).
	giveUp := time.Now().Add(wait)
	for e.Debug(context.Background()) != "interval extension, 0 subscriptions\n" {
		if time.Now().After(giveUp) {
			t.Fatalf("the worker of a subscription Gofer never stored is still there at %s: %q", c.Now(), e.Debug(context.Background()))
		}
		if next := c.NextDeadline(); !next.IsZero() {
			c.Set(next)
		} else {
			time.Sleep(time.Millisecond) // let the worker react
		}
	}
	if c.Now().Before(created.Add(2 * time.Minute)) {
		t.Fatalf("gave up at %s, before NotStoredFor (1m) had passed", c.Now())
	}
}

// TestRefusedTickReason: a tick refused for missing values is skipped
// with the compact "missing: KIND KEY, …" reason naming every one; a long
// refusal is cut to Gofer's limit at a character boundary.
func TestRefusedTickReason(t *testing.T) {
	created := time.Unix(1_800_000_000, 0)
	c := clock.NewFake(created)
	g := scheduledtest.New(c)
	params := map[string]string{"every": "10s"}
	g.Store(sub, params, created, 0)
	g.Refuse(&extension.APIError{Status: http.StatusConflict, Message: "pipeline \"p\" did not start a run: 2 secrets or objects it names are not there: …",
		Missing: []extension.MissingValue{{Kind: "pipeline_secret", Key: "token"}, {Kind: "global_secret", Key: "registry_pass"}}})
	start(t, c, g, params)
	t1, t2, t3 := created.Add(10*time.Second), created.Add(20*time.Second), created.Add(30*time.Second)
	if !c.WaitTimerAt(t1, wait) {
		t.Fatal("no timer for tick 1")
	}
	c.Set(t1)
	if !c.WaitTimerAt(t2, wait) {
		t.Fatal("the worker did not move on to tick 2")
	}
	g.Refuse(&extension.APIError{Status: http.StatusConflict, Message: strings.Repeat("ü", 300)})
	c.Set(t2)
	if !c.WaitTimerAt(t3, wait) {
		t.Fatal("the worker did not move on to tick 3: was the long reason refused?")
	}
	reasons := g.SkipReasons(sub)
	if len(reasons) != 2 {
		t.Fatalf("reasons %q, want 2", reasons)
	}
	if want := "refused: missing: pipeline_secret token, global_secret registry_pass"; reasons[0] != want {
		t.Errorf("reason %q, want %q", reasons[0], want)
	}
	if r := reasons[1]; len(r) > extension.MaxSkipReason || !utf8.ValidString(r) || !strings.HasSuffix(r, "ü…") {
		t.Errorf("long reason (%d bytes) %q: want at most %d bytes of whole characters ending in …", len(r), r, extension.MaxSkipReason)
	}
}
