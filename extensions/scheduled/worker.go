package scheduled

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// worker fires one subscription's ticks.
type worker struct {
	e      *Extension
	sub    schedule.Subscription
	params map[string]string
	ctx    context.Context
	stop   context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex // guards the fields below (read by Debug)
	watermark time.Time
	next      time.Time
	state     string
}

func newWorker(e *Extension, sub schedule.Subscription, params map[string]string) *worker {
	ctx, stop := context.WithCancel(e.ctx)
	return &worker{e: e, sub: sub, params: params, ctx: ctx, stop: stop, done: make(chan struct{}), state: "loading"}
}

func (w *worker) status() (watermark, next time.Time, state string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.watermark, w.next, w.state
}

func (w *worker) set(watermark, next time.Time, state string) {
	w.mu.Lock()
	w.watermark, w.next, w.state = watermark, next, state
	w.mu.Unlock()
}

// run is the worker's life: read the subscription's start and watermark
// from Gofer, then evaluate, act and sleep until the next tick, until
// stopped.
func (w *worker) run() {
	defer close(w.done)
	log := w.e.log().With("subscription", w.sub.String())
	stored := w.load()
	if stored == nil {
		return
	}
	start := w.e.opts.Clock.Now()
	if stored.Created > 0 {
		start = time.UnixMilli(stored.Created)
	}
	ticker, err := w.e.kind.Parse(w.params, start)
	if err != nil {
		log.Error("stored subscription has a bad schedule; not firing", "error", err)
		w.set(time.Time{}, time.Time{}, "bad schedule: "+err.Error())
		return
	}
	catch, err := schedule.ParseCatchUp(w.params[ParamCatchUp], w.params[ParamCatchUpWindow])
	if err != nil {
		log.Error("stored subscription has a bad catch-up policy; not firing", "error", err)
		w.set(time.Time{}, time.Time{}, "bad catch-up policy: "+err.Error())
		return
	}
	wm := watermarkOf(ticker, start, stored.Watermark)
	backoff := w.e.opts.RetryMin
	for {
		d := schedule.Due(ticker, wm, w.e.opts.Clock.Now(), catch)
		var err error
		wm, err = w.act(d, wm, catch.Policy)
		if err != nil {
			if w.ctx.Err() != nil {
				return
			}
			log.Warn("tick not done; retrying", "error", err, "wait", backoff)
			w.set(wm, time.Time{}, "retrying: "+err.Error())
			if !clock.Sleep(w.ctx, w.e.opts.Clock, backoff) {
				return
			}
			backoff = min(2*backoff, w.e.opts.RetryMax)
			continue
		}
		backoff = w.e.opts.RetryMin
		next := ticker.Next(wm)
		if next.IsZero() {
			w.set(wm, next, "no further tick")
			<-w.ctx.Done()
			return
		}
		w.set(wm, next, "waiting")
		// A timer to the tick itself, not a polling loop.
		if wait := next.Sub(w.e.opts.Clock.Now()); wait > 0 && !clock.Sleep(w.ctx, w.e.opts.Clock, wait) {
			return
		}
		if w.ctx.Err() != nil {
			return
		}
	}
}

// load reads the subscription as Gofer stores it, retrying while Gofer is
// unreachable and, for at most NotStoredFor, while Gofer has not stored it
// yet. Nil means stop.
func (w *worker) load() *extension.StoredSubscription {
	giveUp := w.e.opts.Clock.Now().Add(w.e.opts.NotStoredFor)
	backoff := w.e.opts.RetryMin
	for {
		s, err := w.e.opts.Gofer.Subscription(w.ctx, w.sub.Namespace, w.sub.Pipeline, w.sub.ID)
		if err == nil {
			return s
		}
		if w.ctx.Err() != nil {
			return nil
		}
		var apiErr *extension.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && w.e.opts.Clock.Now().After(giveUp) {
			w.e.log().Warn("Gofer never stored the subscription; its worker stops", "subscription", w.sub.String())
			return nil
		}
		w.set(time.Time{}, time.Time{}, "loading: "+err.Error())
		if !clock.Sleep(w.ctx, w.e.opts.Clock, backoff) {
			return nil
		}
		backoff = min(2*backoff, w.e.opts.RetryMax)
	}
}

// watermarkOf turns Gofer's watermark (epoch ms of the tick's whole
// second, as the trigger key carries it) back into the tick itself; zero
// means nothing fired yet, and the subscription's start is the watermark.
func watermarkOf(t schedule.Ticker, start time.Time, ms int64) time.Time {
	if ms <= 0 {
		return start
	}
	sec := ms / 1000
	if tick := t.Next(time.Unix(sec, 0).Add(-time.Nanosecond)); !tick.IsZero() && tick.Unix() == sec {
		return tick
	}
	if wm := time.UnixMilli(ms); wm.After(start) {
		return wm
	}
	return start
}

// act carries out a decision: first the skipped ticks are reported (so a
// crash before the runs start re-decides the same ticks, whose keys then
// dedupe), then each fired tick starts its run with the tick's key. It
// returns the watermark reached, which is the decision's when all went
// well.
func (w *worker) act(d schedule.Decision, wm time.Time, policy schedule.Policy) (time.Time, error) {
	g := w.e.opts.Gofer
	if len(d.Skipped) > 0 || d.SkippedMore {
		sk := extension.SkippedTicks{Ticks: d.Skipped, Reason: "missed; catch_up " + string(policy)}
		if d.SkippedMore {
			sk.Through = d.SkippedThrough
		}
		if err := g.RecordSkippedTicks(w.ctx, w.sub.Namespace, w.sub.Pipeline, w.sub.ID, sk); err != nil {
			return wm, err
		}
		if d.SkippedMore {
			wm = d.SkippedThrough
		} else {
			wm = d.Skipped[len(d.Skipped)-1]
		}
	}
	for _, tick := range d.Fire {
		vars := map[string]string{VarScheduledTime: strconv.FormatInt(tick.Unix(), 10)}
		_, err := g.StartRun(w.ctx, w.sub.Namespace, w.sub.Pipeline, vars, w.e.kind.Key(w.sub, tick))
		if refused(err) {
			// Gofer will never start this tick's run (the pipeline or
			// the subscription is gone or disabled): it is skipped.
			w.e.log().Warn("tick refused; skipped", "subscription", w.sub.String(), "tick", tick, "error", err)
			reason := fmt.Sprintf("refused: %v", err)
			if len(reason) > 200 {
				reason = reason[:200]
			}
			if rerr := g.RecordSkippedTicks(w.ctx, w.sub.Namespace, w.sub.Pipeline, w.sub.ID, extension.SkippedTicks{Ticks: []time.Time{tick}, Reason: reason}); rerr != nil && !refused(rerr) {
				return wm, rerr
			}
		} else if err != nil {
			return wm, err
		}
		wm = tick
	}
	return d.Watermark, nil
}

// refused reports whether Gofer answered a final no (a 4xx other than
// 408 and 429), as opposed to being unreachable or busy.
func refused(err error) bool {
	var apiErr *extension.APIError
	return errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 &&
		apiErr.Status != http.StatusRequestTimeout && apiErr.Status != http.StatusTooManyRequests
}
