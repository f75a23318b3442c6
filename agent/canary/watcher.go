package canary

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/agent/clock"
)

// ErrAlreadyDecided is what State.Decide returns when the canary already
// has a decision (the watcher's own earlier one whose answer was lost, a
// previous leader's, or a human's promote/rollback/abort). The watcher
// takes it as "done": exactly one decision is kept, and it is the first.
var ErrAlreadyDecided = errors.New("canary already decided")

// Canary is one undecided canary deployment as committed state holds it.
type Canary struct {
	Namespace    string
	Pipeline     string
	DeploymentID int64
	// StableVersion and CanaryVersion are the pipeline config versions
	// compared; informative here (State.Stats selects runs by them).
	StableVersion int64
	CanaryVersion int64
	Policy        Policy
	// Started is when the deployment started (the time in its committed
	// start command), the origin of Policy.Duration.
	Started time.Time
}

func (c Canary) String() string {
	return fmt.Sprintf("%s/%s deployment %d", c.Namespace, c.Pipeline, c.DeploymentID)
}

// State is the watcher's whole view of the cluster, the consumer-side
// interface that the leader service implements over the FSM and raft
// (and tests over a mock).
//
// The contract:
//   - ActiveCanaries and Stats read committed state only (the leader's
//     FSM after its Barrier), so a decision never rests on a run result
//     that could still be lost. A run counts once it is terminal in
//     committed state; runs still going are not evidence.
//   - ActiveCanaries lists canaries without a decision. It may lag a
//     Decide that just succeeded (the watcher copes: see Decide).
//   - Decide records the decision as one raft command. Its applier
//     refuses a second decision for the same deployment with
//     ErrAlreadyDecided (wrapped is fine), whoever made the first. It may
//     return another error with the outcome unknown (leadership lost, a
//     timeout): the watcher then evaluates again on the next Tick, and
//     the applier's refusal keeps the count at one.
type State interface {
	ActiveCanaries(ctx context.Context) ([]Canary, error)
	Stats(ctx context.Context, c Canary) (stable, canary Stats, err error)
	Decide(ctx context.Context, c Canary, d Decision) error
}

// Watcher evaluates every active canary on each Tick and records the
// decisions that are due. It keeps no state between ticks that matters
// for correctness: a new Watcher after a failover, given the same State,
// continues where the old one was, because everything it needs
// (policy, start time, counts, whether decided) is in committed state.
type Watcher struct {
	state  State
	clock  clock.Clock
	logger hclog.Logger
}

// NewWatcher makes a watcher over state. A nil clock is the real one; a
// nil logger discards.
func NewWatcher(state State, c clock.Clock, logger hclog.Logger) *Watcher {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Watcher{state: state, clock: clock.Or(c), logger: logger}
}

// Tick evaluates every active canary once. It returns the earliest time
// a waiting canary's Duration ends (zero if none waits), so a loop knows
// when to tick again without a change in state (reconcile.Result.Wake),
// and the errors met, joined. An error for one canary does not stop the
// others; that canary is simply evaluated again on the next Tick.
func (w *Watcher) Tick(ctx context.Context) (next time.Time, err error) {
	canaries, err := w.state.ActiveCanaries(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("list active canaries: %w", err)
	}
	var errs []error
	for _, c := range canaries {
		deadline, err := w.evaluate(ctx, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c, err))
			continue
		}
		if !deadline.IsZero() && (next.IsZero() || deadline.Before(next)) {
			next = deadline
		}
	}
	return next, errors.Join(errs...)
}

// evaluate decides one canary; it returns the end of its Duration while
// it waits.
func (w *Watcher) evaluate(ctx context.Context, c Canary) (deadline time.Time, err error) {
	if err := c.Policy.Validate(); err != nil {
		return time.Time{}, err
	}
	stable, canary, err := w.state.Stats(ctx, c)
	if err != nil {
		return time.Time{}, fmt.Errorf("stats: %w", err)
	}
	if err := stable.Check(); err != nil {
		return time.Time{}, fmt.Errorf("stable stats: %w", err)
	}
	if err := canary.Check(); err != nil {
		return time.Time{}, fmt.Errorf("canary stats: %w", err)
	}
	// State keeps the durations of the first MaxRuns completed
	// canary runs only (runs go on completing until the decision
	// commits), so the p95 is over those.
	if want := min(canary.Completed, MaxRuns); c.Policy.MaxP95 > 0 && len(canary.Durations) != want {
		return time.Time{}, fmt.Errorf("canary stats: %d durations for %d completed runs; the p95 bound needs all of the first %d", len(canary.Durations), canary.Completed, want)
	}
	d := Decide(w.clock.Now(), c.Policy, c.Started, stable, canary)
	if d.Outcome == Wait {
		return c.Started.Add(c.Policy.Duration), nil
	}
	switch err := w.state.Decide(ctx, c, d); {
	case errors.Is(err, ErrAlreadyDecided):
		w.logger.Debug("canary already decided", "deployment", c.String())
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("record %s: %w", d.Outcome, err)
	}
	w.logger.Info("canary decided", "deployment", c.String(), "outcome", string(d.Outcome), "reason", d.Reason)
	return time.Time{}, nil
}
