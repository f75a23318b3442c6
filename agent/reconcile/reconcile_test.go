package reconcile

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/fsm"
)

var t0 = time.Unix(1_000_000, 0)

// armedAt waits until the fake clock has a timer due at `at`.
func armedAt(t *testing.T, c *clock.Fake, at time.Time) {
	t.Helper()
	if !c.WaitTimerAt(at, 10*time.Second) {
		t.Fatalf("no timer armed for %v (next: %v)", at, c.NextDeadline())
	}
}

func TestWorkersOneWorkerPerKey(t *testing.T) {
	c := clock.NewFake(t0)
	ws := NewWorkers(c, 100*time.Millisecond, 10*time.Second, nil)
	release := make(chan struct{})
	var runs atomic.Int32
	fn := func(ctx context.Context, w *Worker) {
		runs.Add(1)
		<-release
	}
	first := ws.Launch(context.Background(), "k", fn)
	for range 10 {
		if w := ws.Launch(context.Background(), "k", fn); w != first {
			t.Fatal("a second Launch of a running key returned another worker")
		}
	}
	other := ws.Launch(context.Background(), "other", fn)
	if other == nil || other == first {
		t.Fatal("another key did not get its own worker")
	}
	close(release)
	ws.Wait()
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d workers ran for two keys", n)
	}
	if ws.Running() != 0 {
		t.Fatal("finished workers are still counted")
	}
}

func TestWorkersBackoffDoublesPerKey(t *testing.T) {
	c := clock.NewFake(t0)
	woken := make(chan struct{}, 100)
	ws := NewWorkers(c, 100*time.Millisecond, 350*time.Millisecond, func() { woken <- struct{}{} })
	ctx := context.Background()
	fail := func(ctx context.Context, w *Worker) { w.Fail() }
	// Each failure holds the key back twice as long, up to the cap; the
	// wake comes when the hold ends.
	for _, hold := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 350 * time.Millisecond, 350 * time.Millisecond} {
		if ws.Launch(ctx, "k", fail) == nil {
			t.Fatalf("key held before its %v backoff began", hold)
		}
		ws.Wait()
		<-woken // the worker ended
		if ws.Launch(ctx, "k", fail) != nil {
			t.Fatal("a failed key was relaunched at once")
		}
		if w := ws.Launch(ctx, "free", func(context.Context, *Worker) {}); w == nil {
			t.Fatal("another key was held by this key's failure")
		}
		ws.Wait()
		<-woken
		c.Advance(hold - time.Millisecond)
		if ws.Launch(ctx, "k", fail) != nil {
			t.Fatalf("key relaunched before its %v backoff ended", hold)
		}
		c.Advance(time.Millisecond)
		<-woken // the hold ended
	}
	// A success clears the hold: the next failure starts over at 100 ms;
	// so does a failure after the work reported it recovered.
	ws.Launch(ctx, "k", func(context.Context, *Worker) {})
	ws.Wait()
	<-woken
	ws.Launch(ctx, "k", fail)
	ws.Wait()
	<-woken
	c.Advance(100 * time.Millisecond)
	<-woken
	// Fail twice more (holds 100 ms, 200 ms); then a worker that
	// recovered before failing is held only 100 ms again.
	ws.Launch(ctx, "k", fail)
	ws.Wait()
	<-woken
	c.Advance(200 * time.Millisecond)
	<-woken
	ws.Launch(ctx, "k", func(ctx context.Context, w *Worker) { w.Recovered(); w.Fail() })
	ws.Wait()
	<-woken
	c.Advance(100 * time.Millisecond)
	if ws.Launch(ctx, "k", func(context.Context, *Worker) {}) == nil {
		t.Fatal("backoff did not start over after the work recovered")
	}
	ws.Wait()
}

func TestWorkersCancelledContextDoesNotHold(t *testing.T) {
	ws := NewWorkers(clock.NewFake(t0), time.Second, time.Second, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ws.Launch(ctx, "k", func(ctx context.Context, w *Worker) { w.Fail() })
	ws.Wait()
	if ws.Launch(context.Background(), "k", func(context.Context, *Worker) {}) == nil {
		t.Fatal("a failure after the context ended held the key")
	}
	ws.Wait()
}

// loopHarness runs a loop on a fake clock and reports each pass.
type loopHarness struct {
	c      *clock.Fake
	n      *fsm.Notifier
	l      *Loop
	passes chan int
	cancel context.CancelFunc
	done   chan struct{}
	// pendingAtWait records, each time the loop is about to wait,
	// whether a wake was already pending.
	mu            sync.Mutex
	pendingAtWait []bool
	waited        chan struct{}
}

func newLoopHarness(t *testing.T, cfg LoopConfig, pass func(n int) (Result, error)) *loopHarness {
	h := &loopHarness{c: clock.NewFake(t0), n: fsm.NewNotifier(), passes: make(chan int, 100), done: make(chan struct{}), waited: make(chan struct{}, 100)}
	count := 0
	cfg.Pass = func(ctx context.Context) (Result, error) {
		count++
		res, err := pass(count)
		h.passes <- count
		return res, err
	}
	cfg.Changes = func() <-chan struct{} { return h.n.Changed() }
	cfg.Clock = h.c
	h.l = NewLoop(cfg)
	h.l.waiting = func(changed <-chan struct{}, kick chan struct{}) {
		pending := len(kick) > 0
		select {
		case <-changed:
			pending = true
		default:
		}
		h.mu.Lock()
		h.pendingAtWait = append(h.pendingAtWait, pending)
		h.mu.Unlock()
		h.waited <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { defer close(h.done); h.l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

func (h *loopHarness) pass(t *testing.T, want int) {
	t.Helper()
	select {
	case got := <-h.passes:
		if got != want {
			t.Fatalf("pass %d, want %d", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("pass %d never came", want)
	}
}

func TestLoopCoalescesChangesAndPokes(t *testing.T) {
	const gap = 2 * time.Millisecond
	inPass := make(chan struct{})
	release := make(chan struct{})
	h := newLoopHarness(t, LoopConfig{Gap: gap, Idle: time.Hour}, func(n int) (Result, error) {
		if n == 1 {
			close(inPass)
			<-release
		}
		return Result{}, nil
	})
	<-inPass
	// A burst while the pass runs: it is all one wake.
	for range 20 {
		h.n.Notify()
		h.l.Poke()
	}
	close(release)
	h.pass(t, 1)
	<-h.waited
	armedAt(t, h.c, t0.Add(gap))
	// More changes and pokes during the gap are covered by the pass that
	// follows it.
	for range 20 {
		h.n.Notify()
		h.l.Poke()
	}
	h.c.Advance(gap)
	h.pass(t, 2)
	<-h.waited
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pendingAtWait) != 2 || !h.pendingAtWait[0] || h.pendingAtWait[1] {
		t.Fatalf("pending wakes when the loop waited: %v; want [true false] (one pass per burst)", h.pendingAtWait)
	}
}

func TestLoopWakesAtDeadlineAndIdle(t *testing.T) {
	h := newLoopHarness(t, LoopConfig{Idle: time.Minute}, func(n int) (Result, error) {
		if n == 1 {
			return Result{Wake: t0.Add(5 * time.Second)}, nil
		}
		return Result{}, nil
	})
	h.pass(t, 1)
	armedAt(t, h.c, t0.Add(5*time.Second))
	h.c.Advance(5 * time.Second)
	h.pass(t, 2)
	armedAt(t, h.c, t0.Add(5*time.Second+time.Minute))
	h.c.Advance(time.Minute)
	h.pass(t, 3)
}

func TestLoopBacksOffAfterFailedPasses(t *testing.T) {
	errBoom := errors.New("boom")
	h := newLoopHarness(t, LoopConfig{MinBackoff: time.Second, MaxBackoff: 3 * time.Second}, func(n int) (Result, error) {
		if n <= 4 {
			return Result{}, errBoom
		}
		return Result{}, nil
	})
	now := t0
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		h.pass(t, i+1)
		armedAt(t, h.c, now.Add(wait))
		// A change during the backoff does not cut it short.
		h.n.Notify()
		h.c.Advance(wait - time.Millisecond)
		select {
		case n := <-h.passes:
			t.Fatalf("pass %d came during a backoff", n)
		default:
		}
		h.c.Advance(time.Millisecond)
		now = now.Add(wait)
	}
	h.pass(t, 5)
	// Success resets the backoff: the loop now waits for a change (no
	// Idle), which brings the next pass at once.
	h.n.Notify()
	h.pass(t, 6)
}

func TestLoopHoldIsARateLimit(t *testing.T) {
	h := newLoopHarness(t, LoopConfig{}, func(n int) (Result, error) {
		at := t0.Add(time.Duration(n) * time.Second)
		return Result{Hold: at, Wake: at}, nil
	})
	h.pass(t, 1)
	armedAt(t, h.c, t0.Add(time.Second))
	h.n.Notify() // does not cut the hold short
	h.l.Poke()
	h.c.Advance(999 * time.Millisecond)
	select {
	case n := <-h.passes:
		t.Fatalf("pass %d came during a hold", n)
	default:
	}
	h.c.Advance(time.Millisecond)
	h.pass(t, 2)
}

// Every executor pass launches every running task's key again; finding
// the running worker must not allocate.
func TestWorkersLaunchOfARunningKeyDoesNotAllocate(t *testing.T) {
	ws := NewWorkers(clock.NewFake(t0), time.Second, time.Second, nil)
	release := make(chan struct{})
	fn := func(ctx context.Context, w *Worker) { <-release }
	ctx := context.Background()
	ws.Launch(ctx, "k", fn)
	if n := testing.AllocsPerRun(100, func() { ws.Launch(ctx, "k", fn) }); n != 0 {
		t.Fatalf("%v allocations per launch of a running key", n)
	}
	close(release)
	ws.Wait()
}
