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
// busy cluster (200 records a second moves a million in under 1.5 hours).
// Once a whole pass finds nothing it stops looking (new fat records come
// only from older leaders, whose entries this leader's term follows) until
// the state is replaced by a snapshot restore; a new leader starts over.
const (
	slimBatchGap = time.Second
	// slimScan bounds the records one look reads, so a state of slim
	// records is walked in short read transactions.
	slimScan = 5000
)

// slimDone is step's answer once a whole pass found nothing to slim.
const slimDone time.Duration = -1

// restoreCounter is the FSM's count of snapshot restores (fsm.FSM.Restores).
type restoreCounter interface{ Restores() uint64 }

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
	// done is set once a whole pass found nothing; doneAt is the state's
	// restore count then. A restore since starts a new pass.
	done   bool
	doneAt uint64
}

func newTaskSlimmer(d leadership.Deps) *taskSlimmer {
	return &taskSlimmer{state: d.State, apply: d.Apply, clock: clock.Or(d.Clock), logger: d.Logger}
}

// Run migrates until ctx ends.
func (s *taskSlimmer) Run(ctx context.Context) error {
	reconcile.NewLoop(reconcile.LoopConfig{
		Pass:    s.pass,
		Changes: s.state.Changes().Changed, // a restore notifies it too
		Clock:   s.clock,
		Logger:  s.logger,
	}).Run(ctx)
	return nil
}

// pass is one wake of the loop: a look while there is work, paced by
// holding the next one back; once done, nothing but a comparison of the
// restore count, until it changes.
func (s *taskSlimmer) pass(ctx context.Context) (reconcile.Result, error) {
	if s.done {
		if s.restores() == s.doneAt {
			return reconcile.Result{}, nil // wait for the next change
		}
		s.done, s.from, s.found = false, nil, false
		s.logger.Debug("state restored from a snapshot: looking for fat task executions again")
	}
	wait, err := s.step(ctx)
	if err != nil || wait == slimDone {
		return reconcile.Result{}, err
	}
	at := s.clock.Now().Add(wait)
	return reconcile.Result{Hold: at, Wake: at}, nil
}

func (s *taskSlimmer) restores() uint64 {
	if r, ok := s.state.(restoreCounter); ok {
		return r.Restores()
	}
	return 0
}

// step looks at the next stretch of records and slims what it found; it
// says how long to wait before the next one, or slimDone.
func (s *taskSlimmer) step(ctx context.Context) (time.Duration, error) {
	var refs []store.TaskRecordRef
	var next []byte
	// Taken before the look: a restore during it makes the next wake
	// look again.
	gen := s.restores()
	// View, not ViewCommitted: a look must see the batch before it, or it
	// would name the same records again (harmless, but a wasted entry).
	// At most one look a second while there is work.
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
	// The pass reached the last record. Another pass follows if this one
	// found something (records it could not name in a batch, or created
	// meanwhile); otherwise the migration is done.
	found := s.found
	s.found = false
	if found {
		return slimBatchGap, nil
	}
	s.done, s.doneAt = true, gen
	return slimDone, nil
}
