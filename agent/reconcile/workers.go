// Package reconcile is the machinery the leader services share to turn
// state into work: a loop that wakes on a state change (coalesced), at the
// next deadline a pass names, or after a failed pass with backoff; and
// keyed workers, so one key never has two workers and a key whose work
// keeps failing is held back with doubling backoff. See DESIGN.md.
package reconcile

import (
	"context"
	"sync"
	"time"

	"github.com/goferhq/gofer/agent/clock"
)

// Workers runs work keyed by what it is about. Launch is safe to call
// from any goroutine; Wait waits for every worker launched.
type Workers struct {
	clock  clock.Clock
	lo, hi time.Duration
	wake   func()

	mu   sync.Mutex
	work map[string]*Worker
	// held delays work whose last worker failed, so work that keeps
	// failing is retried with backoff instead of relaunched on every pass.
	held map[string]held
	wg   sync.WaitGroup
}

// held is how long a key is held and how many times in a row it failed.
type held struct {
	until    time.Time
	failures int
}

// Worker is one goroutine doing the work of one key.
type Worker struct {
	cancel     chan struct{}
	cancelOnce sync.Once
	// failed and recovered are set by the worker's own goroutine only.
	failed, recovered bool
}

// Cancelled is closed once RequestCancel was called.
func (w *Worker) Cancelled() <-chan struct{} { return w.cancel }

// RequestCancel asks the worker to stop what it is doing (the work it is
// about was cancelled); it is the worker's to honour. Idempotent.
func (w *Worker) RequestCancel() { w.cancelOnce.Do(func() { close(w.cancel) }) }

// Fail marks the worker's work as failed: when it ends, its key is held
// back with backoff. Call it only from the worker's own goroutine.
func (w *Worker) Fail() { w.failed = true }

// Recovered marks the key's work as having gone well for long enough
// (say, a supervised container that stayed healthy for minutes): its
// failures in a row are forgotten, so a failure after this is held back
// from lo again. Call it only from the worker's own goroutine.
func (w *Worker) Recovered() { w.recovered = true }

// NewWorkers makes a worker set whose failed keys are held back from lo
// doubling to hi. wake (may be nil) is called when a worker ends and
// when a held key's backoff ends, so the owner's loop looks again.
func NewWorkers(c clock.Clock, lo, hi time.Duration, wake func()) *Workers {
	if wake == nil {
		wake = func() {}
	}
	return &Workers{clock: clock.Or(c), lo: lo, hi: hi, wake: wake, work: map[string]*Worker{}, held: map[string]held{}}
}

// Launch runs fn in a goroutine unless work under key is already going
// (it returns that worker) or is held after failures (it returns nil).
func (ws *Workers) Launch(ctx context.Context, key string, fn func(ctx context.Context, w *Worker)) *Worker {
	ws.mu.Lock()
	if w, ok := ws.work[key]; ok {
		ws.mu.Unlock()
		return w
	}
	if h, ok := ws.held[key]; ok && ws.clock.Now().Before(h.until) {
		ws.mu.Unlock()
		return nil
	}
	w := &Worker{cancel: make(chan struct{})}
	ws.work[key] = w
	ws.mu.Unlock()
	ws.wg.Add(1)
	go func() {
		defer ws.wg.Done()
		defer ws.end(ctx, key, w)
		fn(ctx, w)
	}()
	return w
}

// end forgets a finished worker and, if it failed, holds its key.
func (ws *Workers) end(ctx context.Context, key string, w *Worker) {
	ws.mu.Lock()
	delete(ws.work, key)
	if w.failed && ctx.Err() == nil {
		h := ws.held[key]
		if w.recovered {
			h.failures = 0
		}
		h.failures++
		wait := Backoff(ws.lo, ws.hi, h.failures)
		h.until = ws.clock.Now().Add(wait)
		ws.held[key] = h
		ws.clock.AfterFunc(wait, ws.wake)
	} else {
		delete(ws.held, key)
	}
	ws.mu.Unlock()
	ws.wake()
}

// Running reports how many workers are going.
func (ws *Workers) Running() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.work)
}

// Wait waits for every worker launched so far to end.
func (ws *Workers) Wait() { ws.wg.Wait() }

// Backoff is the wait after the n-th failure in a row (n ≥ 1): lo
// doubling, capped at hi.
func Backoff(lo, hi time.Duration, n int) time.Duration {
	return min(lo<<min(max(n-1, 0), 20), hi)
}
