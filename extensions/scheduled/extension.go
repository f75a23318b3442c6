package scheduled

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// Gofer is the part of the SDK's client the engine uses (an interface so
// unit tests can answer for the cluster). *extension.Client implements it.
type Gofer interface {
	StartRun(ctx context.Context, namespace, pipeline string, variables map[string]string, idempotencyKey string) (*extension.RunInfo, error)
	Subscription(ctx context.Context, namespace, pipeline, id string) (*extension.StoredSubscription, error)
	RecordSkippedTicks(ctx context.Context, namespace, pipeline, id string, skipped extension.SkippedTicks) error
	Subscriptions(ctx context.Context) ([]extension.StoredSubscription, error)
}

// Options configure an Extension; zero values take defaults.
type Options struct {
	// Clock defaults to the real clock.
	Clock clock.Clock
	// Gofer defaults to the client the SDK passes to Init.
	Gofer Gofer
	// Logger defaults to the client's logger.
	Logger *slog.Logger
	// RetryMin and RetryMax bound the wait before a failed evaluation
	// (Gofer unreachable) is tried again (defaults 200ms and 5s).
	RetryMin, RetryMax time.Duration
	// NotStoredFor is how long a subscription Gofer has not stored is
	// waited for before its worker gives up (default 2m): Gofer asks the
	// extension to subscribe before it stores the subscription, and may
	// then refuse to store it.
	NotStoredFor time.Duration
	// Recheck is how often a paused worker (its subscription disabled,
	// or a skipped-ticks report refused) reads its subscription again
	// (default 1m).
	Recheck time.Duration
	// Resync is how often the extension lists its subscriptions from
	// Gofer to start workers for subscribe calls it missed and stop those
	// of subscriptions Gofer no longer has (default 5m).
	Resync time.Duration
}

// Extension is a scheduled extension (interval or cron) for the SDK's
// Serve/Run. The SDK calls its methods one at a time; its per-subscription
// workers run concurrently with those calls, so the worker map is locked.
type Extension struct {
	kind Kind
	opts Options

	mu      sync.Mutex
	ctx     context.Context
	stop    context.CancelFunc
	workers map[schedule.Subscription]*worker
	wg      sync.WaitGroup
	// seq orders workers' first sight of their subscription against
	// resync's list requests.
	seq      atomic.Uint64
	resyncer sync.Once
}

// New returns the extension of the given kind.
func New(kind Kind, opts Options) *Extension {
	opts.Clock = clock.Or(opts.Clock)
	if opts.RetryMin <= 0 {
		opts.RetryMin = 200 * time.Millisecond
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(5*time.Second, opts.RetryMin)
	}
	if opts.NotStoredFor <= 0 {
		opts.NotStoredFor = 2 * time.Minute
	}
	if opts.Recheck <= 0 {
		opts.Recheck = time.Minute
	}
	if opts.Resync <= 0 {
		opts.Resync = 5 * time.Minute
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Extension{kind: kind, opts: opts, ctx: ctx, stop: stop, workers: map[schedule.Subscription]*worker{}}
}

// Init keeps the SDK's client (unless Options gave a Gofer and a
// Logger; then client may be nil) and starts the periodic resync.
func (e *Extension) Init(_ context.Context, client *extension.Client) error {
	if e.opts.Gofer == nil {
		if client == nil {
			return fmt.Errorf("scheduled extension %s: no Gofer client", e.kind.ID)
		}
		e.opts.Gofer = client
	}
	if e.opts.Logger == nil && client != nil {
		e.opts.Logger = client.Logger()
	}
	e.resyncer.Do(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.ctx.Err() != nil {
			return
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for clock.Sleep(e.ctx, e.opts.Clock, e.opts.Resync) {
				e.resync(e.ctx)
			}
		}()
	})
	return nil
}

// Info documents the kind's parameters and the catch-up parameters.
func (e *Extension) Info() extension.Documentation {
	d := e.kind.Docs
	d.PipelineSubscriptionParams = append(slices.Clone(d.PipelineSubscriptionParams), catchUpParams...)
	return d
}

func (e *Extension) log() *slog.Logger {
	if e.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.opts.Logger
}

// validate parses the parameters as a subscription stored now would have
// them; its error is what Gofer shows the user who subscribes.
func (e *Extension) validate(params map[string]string) error {
	if _, err := e.kind.Parse(params, e.opts.Clock.Now()); err != nil {
		return err
	}
	_, err := schedule.ParseCatchUp(params[ParamCatchUp], params[ParamCatchUpWindow])
	return err
}

// Subscribe validates the parameters and starts the subscription's worker.
// A worker the subscription already has is replaced, even with the same
// parameters: the subscription may have been deleted and made again under
// the same id, with another anchor, and a new worker reads it from Gofer.
// The new worker waits for the old one to finish before it starts.
func (e *Extension) Subscribe(_ context.Context, sub extension.Subscription) error {
	if err := e.validate(sub.Params); err != nil {
		return err
	}
	key := schedule.Subscription{Namespace: sub.NamespaceID, Pipeline: sub.PipelineID, ID: sub.ID}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx.Err() != nil {
		return extension.Errorf(503, "the extension is shutting down")
	}
	e.startLocked(key, sub.Params, false)
	return nil
}

// startLocked starts a worker for key, replacing (and following) the one
// it has. stored says Gofer is known to store the subscription (it came
// from Gofer's list). e.mu is held.
func (e *Extension) startLocked(key schedule.Subscription, params map[string]string, stored bool) {
	w := newWorker(e, key, maps.Clone(params))
	if old := e.workers[key]; old != nil {
		old.stop()
		w.after = old.done
	}
	if stored {
		w.seenAt.Store(e.seq.Add(1))
		w.stored.Store(true)
	}
	e.workers[key] = w
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		w.run()
		e.mu.Lock()
		if e.workers[key] == w {
			delete(e.workers, key)
		}
		e.mu.Unlock()
	}()
}

// Unsubscribe stops the subscription's worker and waits for it; an
// unknown subscription is not an error.
func (e *Extension) Unsubscribe(_ context.Context, sub extension.Subscription) error {
	key := schedule.Subscription{Namespace: sub.NamespaceID, Pipeline: sub.PipelineID, ID: sub.ID}
	e.mu.Lock()
	w := e.workers[key]
	delete(e.workers, key)
	e.mu.Unlock()
	if w != nil {
		w.stop()
		<-w.done
	}
	return nil
}

// Shutdown stops every worker and waits for them.
func (e *Extension) Shutdown(context.Context) {
	e.mu.Lock()
	e.stop()
	e.mu.Unlock()
	e.wg.Wait()
}

// Debug lists the subscriptions with their watermark and next tick.
func (e *Extension) Debug(context.Context) string {
	e.mu.Lock()
	ws := slices.Collect(maps.Values(e.workers))
	e.mu.Unlock()
	slices.SortFunc(ws, func(a, b *worker) int { return strings.Compare(a.sub.String(), b.sub.String()) })
	var b strings.Builder
	fmt.Fprintf(&b, "%s extension, %d subscriptions\n", e.kind.ID, len(ws))
	for _, w := range ws {
		wm, next, state := w.status()
		fmt.Fprintf(&b, "%s  watermark=%s  next=%s  %s\n", w.sub, fmtTime(wm), fmtTime(next), state)
	}
	return b.String()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
