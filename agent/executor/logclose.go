package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// Closing the logs nobody else will close is a leader duty. The worker
// that finished a task with its log open closes it once, when its
// collector is done; but the leader may fail over between the finish and
// the close, the finish's outcome may have come back unknown (the worker
// then never learns the log is open), or the close itself may not be
// replicated. Without this a follow stream of such a task would wait for
// the API's fallback (logsOpenGrace in api/runs.go).
//
// closeLogsLoop therefore closes, when leadership begins and then
// periodically, every log in the FSM's open-log index whose task ended
// more than Config.LogCloseWait ago (the worker's own wait, so a live worker
// normally gets there first), retrying with backoff when a close cannot
// be replicated. Output still arriving after that is dropped by the
// applier, as after the worker gives up.
func (e *Executor) closeLogsLoop(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		wait := logCloserInterval
		next, err := e.closeDueLogs(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			backoff = min(max(2*backoff, minWorkBackoff), maxWorkBackoff)
			e.logger.Warn("closing task logs left open failed; retrying", "error", err, "retry_in", backoff)
			wait = backoff
		default:
			backoff = 0
			if !next.IsZero() {
				wait = min(wait, max(next.Sub(e.clock.Now()), minLogCloserGap))
			}
		}
		if !clock.Sleep(ctx, e.clock, wait) {
			return
		}
	}
}

// logCloserInterval bounds how long a log that became due waits for the
// closer; with LogCloseWait it keeps a log's close well inside the API's
// two-minute fallback. minLogCloserGap spaces passes when many logs come
// due in a row.
const (
	logCloserInterval = 15 * time.Second
	minLogCloserGap   = 100 * time.Millisecond
)

// closeDueLogs closes the logs due now and returns when the next one is
// due (zero: none is open). A log whose container this leader is still
// draining is the worker's to close.
func (e *Executor) closeDueLogs(ctx context.Context) (time.Time, error) {
	now := e.clock.Now()
	var due []*model.TaskExecution
	var nextEnded int64
	if err := e.state.View(func(tx *bbolt.Tx) (err error) {
		due, nextEnded, err = store.OpenLogsEndedBy(tx, now.Add(-e.cfg.LogCloseWait).UnixMilli())
		return err
	}); err != nil {
		return time.Time{}, fmt.Errorf("read open logs: %w", err)
	}
	var next time.Time
	if nextEnded > 0 {
		next = time.UnixMilli(nextEnded).Add(e.cfg.LogCloseWait)
	}
	var failed error
	for _, t := range due {
		if _, ok := e.draining.Load(t.Container); ok {
			continue
		}
		res, err := e.apply.Apply(ctx, fsm.CmdLogAppend, fsm.LogAppend{TaskRef: taskRef(t), Attempt: t.Attempt, Last: true, MaxBytes: e.cfg.LogMaxBytes})
		switch {
		case err != nil:
			failed = err
		case errors.Is(res.Err, fsm.ErrConflict), errors.Is(res.Err, fsm.ErrNotFound):
			// The task moved on or is gone (its index entry with it).
		case res.Err != nil:
			failed = res.Err
		default:
			e.logger.Info("closed a task's log left open", "namespace", t.NamespaceID, "pipeline", t.PipelineID,
				"run", t.RunID, "task", t.TaskID, "attempt", t.Attempt)
		}
	}
	return next, failed
}
