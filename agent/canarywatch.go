package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/canary"
	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/agent/reconcile"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// canaryPoll is the longest a canary watcher waits without a state
// change: run completions wake it, and a canary's duration end is a Wake
// time, so this only bounds what a missed wake could cost.
const canaryPoll = 5 * time.Second

// canaryWatchActor is the actor of the decisions the leader makes.
const canaryWatchActor = "canary-watcher"

// canaryService is the leader service that decides canary deployments
// (agent/canary/DESIGN.md, "The watcher"): a reconcile loop whose pass is
// one canary.Watcher.Tick over committed state. It keeps nothing between
// terms: a new leader's service continues from state.
type canaryService struct {
	state leadership.StateReader
	apply leadership.Applier
	clock clock.Clock
	deps  leadership.Deps
	poll  time.Duration
}

func newCanaryService(d leadership.Deps) *canaryService {
	return &canaryService{state: d.State, apply: d.Apply, clock: clock.Or(d.Clock), deps: d, poll: canaryPoll}
}

// Run ticks the watcher on every run change, at each waiting canary's
// duration end and every canaryPoll, until leadership ends.
func (s *canaryService) Run(ctx context.Context) error {
	w := canary.NewWatcher(canaryState{s}, s.clock, s.deps.Logger)
	reconcile.NewLoop(reconcile.LoopConfig{
		Pass: func(ctx context.Context) (reconcile.Result, error) {
			next, err := w.Tick(ctx)
			return reconcile.Result{Wake: next}, err
		},
		Changes:    func() <-chan struct{} { return s.state.RunChanges().Changed() },
		Gap:        500 * time.Millisecond,
		Idle:       s.poll,
		MinBackoff: time.Second,
		MaxBackoff: 30 * time.Second,
		Clock:      s.clock,
		Logger:     s.deps.Logger,
	}).Run(ctx)
	return nil
}

// logger is the service's logger (a null one when none was given).
func (s *canaryService) logger() hclog.Logger {
	if s.deps.Logger == nil {
		return hclog.NewNullLogger()
	}
	return s.deps.Logger
}

// canaryState is canary.State over the leader's FSM and raft.
type canaryState struct{ s *canaryService }

// ActiveCanaries lists every pipeline's undecided canary deployment.
func (c canaryState) ActiveCanaries(ctx context.Context) ([]canary.Canary, error) {
	// Most passes (every run change wakes one) find no canary: look in
	// the committed state file first, which does not force a commit of
	// pending entries (a canary started a flush ago is seen next pass).
	found := false
	if err := c.s.state.ViewCommitted(func(tx *bbolt.Tx) error {
		return store.ForEachPipeline(tx, func(p *model.Pipeline) error {
			found = found || p.ActiveCanary != 0
			return nil
		})
	}); err != nil || !found {
		return nil, err
	}
	var out []canary.Canary
	err := c.s.state.View(func(tx *bbolt.Tx) error {
		return store.ForEachPipeline(tx, func(p *model.Pipeline) error {
			if p.ActiveCanary == 0 {
				return nil
			}
			d, err := store.GetDeployment(tx, p.NamespaceID, p.PipelineID, p.ActiveCanary)
			if err != nil || d == nil || d.Canary == nil || d.Canary.Decision != nil {
				return err
			}
			policy, err := fsm.CanaryPolicy(&d.Canary.Policy)
			if err != nil {
				// One canary the watcher cannot decide (a stored policy a
				// later Validate refuses) must not stop the others; a
				// human can still promote, roll it back or abort it.
				c.s.logger().Warn("skipping canary deployment with an undecidable policy", "namespace", p.NamespaceID,
					"pipeline", p.PipelineID, "deployment", d.DeploymentID, "error", err)
				return nil
			}
			out = append(out, canary.Canary{
				Namespace: p.NamespaceID, Pipeline: p.PipelineID, DeploymentID: d.DeploymentID,
				StableVersion: d.Canary.StableVersion, CanaryVersion: d.Canary.CanaryVersion,
				Policy: policy, Started: time.UnixMilli(d.Canary.Started),
			})
			return nil
		})
	})
	return out, err
}

// Stats reads the deployment's committed per-arm counts.
func (c canaryState) Stats(ctx context.Context, cn canary.Canary) (stable, canaryStats canary.Stats, err error) {
	err = c.s.state.View(func(tx *bbolt.Tx) error {
		d, err := store.GetDeployment(tx, cn.Namespace, cn.Pipeline, cn.DeploymentID)
		if err != nil {
			return err
		}
		if d == nil || d.Canary == nil {
			return fmt.Errorf("deployment %d is gone", cn.DeploymentID)
		}
		store.WithCanaryDurations(tx, d)
		stable = canary.Stats{Completed: d.Canary.Stable.Completed, Failed: d.Canary.Stable.Failed}
		canaryStats = canary.Stats{Completed: d.Canary.Canary.Completed, Failed: d.Canary.Canary.Failed}
		for _, ms := range d.Canary.Canary.DurationsMillis {
			canaryStats.Durations = append(canaryStats.Durations, time.Duration(ms)*time.Millisecond)
		}
		return nil
	})
	return stable, canaryStats, err
}

// Decide records the watcher's decision as one DeploymentDecide; the
// applier's refusal of a second decision is canary.ErrAlreadyDecided.
func (c canaryState) Decide(ctx context.Context, cn canary.Canary, d canary.Decision) error {
	outcome := model.CanaryPromote
	if d.Outcome == canary.RollBack {
		outcome = model.CanaryRollback
	}
	res, err := c.s.apply.Apply(ctx, fsm.CmdDeploymentDecide, fsm.DeploymentDecide{
		NamespaceID: cn.Namespace, PipelineID: cn.Pipeline, DeploymentID: cn.DeploymentID,
		Outcome: outcome, Reason: d.Reason, At: d.At.UnixMilli(), Actor: canaryWatchActor,
	})
	if err != nil {
		return err
	}
	if errors.Is(res.Err, fsm.ErrAlreadyDecided) {
		return fmt.Errorf("%w: %w", canary.ErrAlreadyDecided, res.Err)
	}
	return res.Err
}
