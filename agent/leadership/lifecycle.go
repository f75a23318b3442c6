package leadership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/reconcile"
)

// ErrPanicked wraps a panic recovered from a service's Run.
var ErrPanicked = errors.New("leader service panicked")

// Restart backoff bounds: a service that fails again and again is
// restarted at most every maxRestartBackoff; one that ran for
// healthyRun before failing starts over at minRestartBackoff.
const (
	minRestartBackoff = time.Second
	maxRestartBackoff = 30 * time.Second
	healthyRun        = time.Minute
)

// Config describes a lifecycle.
type Config struct {
	// Establish readies state for this leader (raft barrier, cluster
	// initialisation) and returns nil once the services may run. An error
	// ends the term without starting any service; Establish itself
	// decides what else to do about it (transfer leadership).
	Establish func(ctx context.Context) error
	// Services lists the leader services, read once per term after
	// Establish succeeded (so entries may capture the term).
	Services func() []Entry
	// Deps is handed to every service's constructor; Deps.Logger is named
	// after each service.
	Deps Deps
}

// Lifecycle starts and stops the leader services. Start and Stop are
// called from one goroutine (the agent's leadership monitor).
type Lifecycle struct {
	cfg    Config
	cancel context.CancelFunc
	done   chan struct{}
}

// New makes a lifecycle.
func New(cfg Config) *Lifecycle {
	cfg.Deps.Clock = clock.Or(cfg.Deps.Clock)
	if cfg.Deps.Logger == nil {
		cfg.Deps.Logger = hclog.NewNullLogger()
	}
	return &Lifecycle{cfg: cfg}
}

// Start begins a term: Establish, then every service. It returns at once.
func (l *Lifecycle) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l.cancel, l.done = cancel, done
	go func() {
		defer close(done)
		if err := l.cfg.Establish(ctx); err != nil {
			return
		}
		l.run(ctx, l.cfg.Services())
	}()
}

// Stop ends the term: it cancels Establish and every service and returns
// only after all of them returned. It reports whether a term was running.
func (l *Lifecycle) Stop() bool {
	if l.cancel == nil {
		return false
	}
	l.cancel()
	<-l.done
	l.cancel, l.done = nil, nil
	return true
}

func (l *Lifecycle) run(ctx context.Context, entries []Entry) {
	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.supervise(ctx, e)
		}()
	}
	wg.Wait()
}

// supervise runs one service until ctx ends, restarting it with backoff
// when it fails.
func (l *Lifecycle) supervise(ctx context.Context, e Entry) {
	deps := l.cfg.Deps
	deps.Logger = l.cfg.Deps.Logger.Named(e.Name)
	c := deps.Clock
	failures := 0
	for {
		started := c.Now()
		err := runOnce(ctx, e, deps)
		if ctx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) {
				deps.Logger.Error("leader service failed as leadership ended", "error", err)
			}
			return
		}
		if err == nil {
			deps.Logger.Info("leader service finished for this term")
			return
		}
		if c.Now().Sub(started) >= healthyRun {
			failures = 0
		}
		failures++
		wait := reconcile.Backoff(minRestartBackoff, maxRestartBackoff, failures)
		deps.Logger.Error("leader service failed; restarting", "error", err, "backoff", wait)
		if !clock.Sleep(ctx, c, wait) {
			return
		}
	}
}

// runOnce builds and runs a fresh instance, turning a panic in its Run
// goroutine into an error. (A panic in a goroutine the service started
// still ends the process, as any unrecovered panic does.)
func runOnce(ctx context.Context, e Entry, deps Deps) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrPanicked, p)
		}
	}()
	return e.New(deps).Run(ctx)
}
