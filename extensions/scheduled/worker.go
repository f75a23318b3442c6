package scheduled

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

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

	// after, when set, is the done channel of the worker this one
	// replaces; run waits for it before anything else.
	after <-chan struct{}
	// stored is set once Gofer has been seen storing the subscription
	// (from the start for a worker started from Gofer's list): from then
	// on a 404 means gone. seenAt is the extension's sequence number at
	// that moment (see Extension.resync).
	stored atomic.Bool
	seenAt atomic.Uint64

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

// run is the worker's life: read the subscription from Gofer (waiting
// while it is disabled), then evaluate, act and sleep until the next tick,
// until stopped or the subscription is gone. A refusal that says the
// subscription changed (disabled, recreated) sends the worker back to
// reading it, so it resumes from Gofer's watermark with catch-up.
func (w *worker) run() {
	defer close(w.done)
	if w.after != nil {
		// The worker this one replaces must be gone first: two workers
		// of one subscription never overlap.
		select {
		case <-w.after:
		case <-w.ctx.Done():
			return
		}
	}
	for {
		stored := w.load()
		if stored == nil {
			return
		}
		if !w.fire(stored) {
			return
		}
	}
}

// Reasons a worker stops firing, found by re-reading the subscription
// after Gofer refused a tick.
var (
	// errGone: Gofer has no such subscription (deleted, or its pipeline
	// or namespace): the worker stops.
	errGone = errors.New("the subscription is gone")
	// errDisabled: the subscription is disabled: the worker pauses
	// until it is active again.
	errDisabled = errors.New("the subscription is disabled")
	// errRecreated: the subscription was deleted and made again under
	// the same id: its ticks have another anchor.
	errRecreated = errors.New("the subscription was recreated")
	// errSkipRefused: Gofer refused a skipped-ticks report of an active
	// subscription; the tick is neither fired nor recorded, so the worker
	// does not move past it but reads the subscription again later.
	errSkipRefused = errors.New("skipped-ticks report refused")
)

// fire evaluates and acts on the subscription as loaded until stopped
// (false) or until the subscription must be read again (true).
func (w *worker) fire(stored *extension.StoredSubscription) (reload bool) {
	log := w.e.log().With("subscription", w.sub.String())
	start := w.e.opts.Clock.Now()
	if stored.Created > 0 {
		start = time.UnixMilli(stored.Created)
	}
	ticker, err := w.e.kind.Parse(w.params, start)
	if err != nil {
		log.Error("stored subscription has a bad schedule; not firing", "error", err)
		w.set(time.Time{}, time.Time{}, "bad schedule: "+err.Error())
		return false
	}
	catch, err := schedule.ParseCatchUp(w.params[ParamCatchUp], w.params[ParamCatchUpWindow])
	if err != nil {
		log.Error("stored subscription has a bad catch-up policy; not firing", "error", err)
		w.set(time.Time{}, time.Time{}, "bad catch-up policy: "+err.Error())
		return false
	}
	wm := watermarkOf(ticker, start, stored.Watermark)
	backoff := w.e.opts.RetryMin
	for {
		d := schedule.Due(ticker, wm, w.e.opts.Clock.Now(), catch)
		var err error
		wm, err = w.act(d, wm, catch.Policy, stored.Created)
		switch {
		case err == nil:
		case w.ctx.Err() != nil:
			return false
		case errors.Is(err, errGone):
			log.Warn("subscription gone; its worker stops", "error", err)
			w.set(wm, time.Time{}, "gone")
			return false
		case errors.Is(err, errDisabled), errors.Is(err, errRecreated):
			log.Info("subscription changed; reading it again", "error", err)
			return true
		case errors.Is(err, errSkipRefused):
			log.Error("tick neither fired nor recorded; reading the subscription again later", "error", err, "wait", w.e.opts.Recheck)
			w.set(wm, time.Time{}, "stuck: "+err.Error())
			return clock.Sleep(w.ctx, w.e.opts.Clock, w.e.opts.Recheck)
		default:
			log.Warn("tick not done; retrying", "error", err, "wait", backoff)
			w.set(wm, time.Time{}, "retrying: "+err.Error())
			if !clock.Sleep(w.ctx, w.e.opts.Clock, backoff) {
				return false
			}
			backoff = min(2*backoff, w.e.opts.RetryMax)
			continue
		}
		backoff = w.e.opts.RetryMin
		next := ticker.Next(wm)
		if next.IsZero() {
			w.set(wm, next, "no further tick")
			<-w.ctx.Done()
			return false
		}
		w.set(wm, next, "waiting")
		// A timer to the tick itself, not a polling loop.
		if wait := next.Sub(w.e.opts.Clock.Now()); wait > 0 && !clock.Sleep(w.ctx, w.e.opts.Clock, wait) {
			return false
		}
		if w.ctx.Err() != nil {
			return false
		}
	}
}

// load reads the subscription as Gofer stores it, retrying while Gofer is
// unreachable and, until it has been seen stored (for at most
// NotStoredFor), while Gofer has not stored it yet. While the subscription
// is disabled it waits, reading it again every Recheck: Gofer refuses a
// disabled subscription's runs, and enabling one subscribes it before the
// enable is stored. Nil means stop (gone, never stored, or stopped).
func (w *worker) load() *extension.StoredSubscription {
	giveUp := w.e.opts.Clock.Now().Add(w.e.opts.NotStoredFor)
	backoff := w.e.opts.RetryMin
	for {
		s, err := w.e.opts.Gofer.Subscription(w.ctx, w.sub.Namespace, w.sub.Pipeline, w.sub.ID)
		wait := backoff
		switch {
		case err == nil && s.Status != statusDisabled:
			w.seen()
			return s
		case err == nil:
			w.seen()
			w.set(time.Time{}, time.Time{}, "paused: the subscription is disabled")
			wait, backoff = w.e.opts.Recheck, w.e.opts.RetryMin
		case w.ctx.Err() != nil:
			return nil
		case status(err) == http.StatusNotFound && (w.stored.Load() || w.e.opts.Clock.Now().After(giveUp)):
			if w.stored.Load() {
				w.e.log().Warn("subscription gone; its worker stops", "subscription", w.sub.String())
			} else {
				w.e.log().Warn("Gofer never stored the subscription; its worker stops", "subscription", w.sub.String())
			}
			return nil
		default:
			w.set(time.Time{}, time.Time{}, "loading: "+err.Error())
			backoff = min(2*backoff, w.e.opts.RetryMax)
		}
		if !clock.Sleep(w.ctx, w.e.opts.Clock, wait) {
			return nil
		}
	}
}

// seen notes that Gofer has stored the subscription: from now on a 404
// means it is gone, and a resync may stop the worker if Gofer's list no
// longer has it.
func (w *worker) seen() {
	if !w.stored.Load() {
		w.seenAt.Store(w.e.seq.Add(1))
		w.stored.Store(true)
	}
}

// statusDisabled is a disabled subscription's stored status.
const statusDisabled = "disabled"

// status is the HTTP status of Gofer's answer in err (0: none).
func status(err error) int {
	var apiErr *extension.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}

// whyRefused reads the subscription again after Gofer refused one of its
// ticks and says why: errGone, errDisabled, errRecreated (created is the
// anchor the worker loaded), nil when it is active and unchanged (the
// refusal was about the tick: the pipeline or the extension is disabled,
// or the tick was decided elsewhere), or the error reading it.
func (w *worker) whyRefused(refusal error, created int64) error {
	s, err := w.e.opts.Gofer.Subscription(w.ctx, w.sub.Namespace, w.sub.Pipeline, w.sub.ID)
	switch {
	case status(err) == http.StatusNotFound:
		return fmt.Errorf("%w (%v)", errGone, refusal)
	case err != nil:
		return fmt.Errorf("reading the subscription after a refusal (%v): %w", refusal, err)
	case s.Status == statusDisabled:
		return fmt.Errorf("%w (%v)", errDisabled, refusal)
	case s.Created != created:
		return fmt.Errorf("%w (%v)", errRecreated, refusal)
	}
	return nil
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
// well. created is the subscription's creation as loaded (its anchor).
func (w *worker) act(d schedule.Decision, wm time.Time, policy schedule.Policy, created int64) (time.Time, error) {
	g := w.e.opts.Gofer
	if len(d.Skipped) > 0 || d.SkippedMore {
		sk := extension.SkippedTicks{Ticks: d.Skipped, Reason: "missed; catch_up " + string(policy)}
		if d.SkippedMore {
			sk.Through = d.SkippedThrough
		}
		if err := w.recordSkipped(sk, created); err != nil {
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
			// Gofer will not start this tick's run. If the subscription
			// is gone, disabled or recreated the worker stops or reads
			// it again; otherwise (pipeline or extension disabled, tick
			// decided elsewhere) the tick is skipped.
			if why := w.whyRefused(err, created); why != nil {
				return wm, why
			}
			w.e.log().Warn("tick refused; skipped", "subscription", w.sub.String(), "tick", tick, "error", err)
			if err := w.recordSkipped(extension.SkippedTicks{Ticks: []time.Time{tick}, Reason: refusalReason(err)}, created); err != nil {
				return wm, err
			}
		} else if err != nil {
			return wm, err
		}
		wm = tick
	}
	return d.Watermark, nil
}

// recordSkipped reports skipped ticks. When Gofer refuses the report, the
// subscription is read again: gone, disabled or recreated say so; when it
// is active and unchanged the error is errSkipRefused, since the ticks
// must not be passed over unrecorded.
func (w *worker) recordSkipped(sk extension.SkippedTicks, created int64) error {
	err := w.e.opts.Gofer.RecordSkippedTicks(w.ctx, w.sub.Namespace, w.sub.Pipeline, w.sub.ID, sk)
	if !refused(err) {
		return err
	}
	if why := w.whyRefused(err, created); why != nil {
		return why
	}
	return fmt.Errorf("%w: %v", errSkipRefused, err)
}

// refused reports whether Gofer answered a final no (a 4xx other than
// 408 and 429), as opposed to being unreachable or busy.
// refusalReason is a refused tick's skip reason: the missing values in
// the compact "refused: missing: KIND KEY, KIND KEY" when Gofer named
// them, else its answer; cut at a character boundary to what Gofer
// accepts (extension.MaxSkipReason bytes), ending in "…" when cut.
func refusalReason(err error) string {
	reason := fmt.Sprintf("refused: %v", err)
	var apiErr *extension.APIError
	if errors.As(err, &apiErr) && len(apiErr.Missing) > 0 {
		reason = "refused: " + apiErr.MissingSummary()
	}
	if len(reason) <= extension.MaxSkipReason {
		return reason
	}
	const ellipsis = "…"
	cut := extension.MaxSkipReason - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut] + ellipsis
}

func refused(err error) bool {
	var apiErr *extension.APIError
	return errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 &&
		apiErr.Status != http.StatusRequestTimeout && apiErr.Status != http.StatusTooManyRequests
}
