package agent

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/agent/reconcile"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
)

// Pacing of the task-record migration (fsm/DESIGN.md, "Version 6"). It is
// housekeeping: a batch every slimBatchGap keeps it off the hot path of a
// busy cluster (200 records a second moves a million in under 1.5 hours),
// and once a whole pass finds nothing it looks again only every
// slimIdleInterval (new fat records come only from older leaders).
const (
	slimBatchGap     = time.Second
	slimIdleInterval = time.Hour
	// slimScan bounds the records one look reads, so a state of slim
	// records is walked in short read transactions.
	slimScan = 5000
)

// taskSlimmer is the leader service that rewrites fat task executions
// (embedding their task's config, written by entries before envelope
// version 6) slim, in bounded TasksSlim batches. It remembers only where
// its scan stopped; a new leader starts again from the first record, and
// the FSM skips what is already slim, so a repeated or stale batch is
// harmless.
type taskSlimmer struct {
	state  leadership.StateReader
	apply  leadership.Applier
	clock  clock.Clock
	logger hclog.Logger
	// from is where the next look starts (nil: the first record); found
	// says whether this pass over the records found anything.
	from  []byte
	found bool
}

func newTaskSlimmer(d leadership.Deps) *taskSlimmer {
	return &taskSlimmer{state: d.State, apply: d.Apply, clock: clock.Or(d.Clock), logger: d.Logger}
}

// Run migrates until ctx ends.
func (s *taskSlimmer) Run(ctx context.Context) error {
	reconcile.NewLoop(reconcile.LoopConfig{
		Pass: func(ctx context.Context) (reconcile.Result, error) {
			wait, err := s.step(ctx)
			return reconcile.Result{Wake: s.clock.Now().Add(wait)}, err
		},
		Clock:  s.clock,
		Logger: s.logger,
	}).Run(ctx)
	return nil
}

// step looks at the next stretch of records and slims what it found; it
// says how long to wait before the next one.
func (s *taskSlimmer) step(ctx context.Context) (time.Duration, error) {
	var refs []store.TaskRecordRef
	var next []byte
	// View, not ViewCommitted: a look must see the batch before it, or it
	// would name the same records again (harmless, but a wasted entry).
	// At most one look a second while there is work, one an hour after.
	err := s.state.View(func(tx *bbolt.Tx) error {
		var err error
		refs, next, err = store.FatTasks(tx, s.from, fsm.MaxTasksSlim, slimScan)
		return err
	})
	if err != nil {
		return 0, err
	}
	if len(refs) > 0 {
		res, err := applyChecked(ctx, s.apply, fsm.CmdTasksSlim, fsm.TasksSlim{Tasks: refs})
		if err != nil {
			return 0, err // the loop backs off; the look is repeated
		}
		if r, _ := fsm.ResultAs[fsm.TasksSlimResult](res); r != nil && r.Slimmed > 0 {
			s.logger.Debug("slimmed task executions", "count", r.Slimmed)
		}
		s.found = true
	}
	s.from = next
	if next != nil {
		if len(refs) == 0 {
			return 0, nil // nothing in this stretch: read on at once
		}
		return slimBatchGap, nil
	}
	// The pass reached the last record. Another pass follows at once if
	// this one found something (records it could not name in a batch, or
	// created meanwhile); otherwise the next one is an hour away.
	found := s.found
	s.found = false
	if found {
		return slimBatchGap, nil
	}
	return slimIdleInterval, nil
}
