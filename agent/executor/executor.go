// Package executor is the leader's DAG executor. Its memory is rebuilt
// from replicated state whenever a node becomes leader; every decision is
// committed to the FSM before it acts (intent, then container), so a new
// leader can always finish what a dead one started. See DESIGN.md.
package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/agent/reconcile"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// Config tunes the executor.
type Config struct {
	// ClusterID and Term label every container this leader starts.
	ClusterID string
	Term      uint64
	// APIURLs lists the cluster's API addresses for GOFER_API_BASE_URL.
	APIURLs func() []string
	// GlobalLimit caps running runs across the cluster (0: no cap).
	GlobalLimit int
	// PipelineLimit caps running runs per pipeline whose config sets no
	// parallelism (0: no cap).
	PipelineLimit int
	// StopGrace is how long a stopped container gets between SIGTERM and
	// SIGKILL unless the cancellation says otherwise.
	StopGrace time.Duration
	// LogMaxBytes caps each task's stored log.
	LogMaxBytes int64
	// LogFlushInterval is how often a running task's new output is
	// replicated.
	LogFlushInterval time.Duration
	// LogDrainWait is how long an exited container's output may take to
	// be replicated before its task is finished anyway, with its log
	// left open (closed once the output is in).
	LogDrainWait time.Duration
	// LogCloseWait bounds how long a task finished with its log open
	// waits for its collector before the log is closed anyway (the
	// collector is stopped; output after that is lost): by the worker
	// that finished it, or by the leader's log closer for a log nobody
	// else closed. Default a minute; the API ends follow streams of a
	// log still open two minutes after its task ended.
	LogCloseWait time.Duration
	// SweepInterval is how often containers that belong to no live
	// attempt are removed.
	SweepInterval time.Duration
	// KeepContainers leaves finished containers for debugging (the sweep
	// still removes them).
	KeepContainers bool
	// Secrets opens the secrets that task variables reference; nil: the
	// leader has no secret_store.encryption_key, and such tasks fail with
	// a reason that says so.
	Secrets *seal.Keyring
}

// Executor runs DAGs on the leader.
type Executor struct {
	cfg    Config
	state  leadership.StateReader
	apply  leadership.Applier
	clock  clock.Clock
	sched  scheduler.Scheduler
	logger hclog.Logger

	// loop runs reconcile passes; workers act on their decisions, one
	// per key, holding back work whose commands failed to replicate.
	loop    *reconcile.Loop
	workers *reconcile.Workers
	// wg covers the goroutines the executor starts besides workers.
	wg sync.WaitGroup
	// draining holds the names of containers of finished tasks whose log
	// this leader is still collecting: the sweep keeps them until the
	// worker closes the log and removes them.
	draining sync.Map

	// decoded keeps the task records the last reconcile pass decoded,
	// with their encoded bytes: a pass rereads every active run's tasks,
	// and most have not changed since the previous pass, so comparing
	// bytes replaces most JSON decoding (the leader's largest cost at
	// high placement rates). Only the reconcile goroutine touches it.
	decoded map[string]decodedTask
}

// decodedTask is a task record and the bytes it was decoded from.
type decodedTask struct {
	raw  []byte
	task *model.TaskExecution
}

// worker is one goroutine doing one piece of work (a task attempt, a run
// transition); see package reconcile.
type worker = reconcile.Worker

// Bounds of the per-work backoff after failed replication.
const (
	minWorkBackoff = 100 * time.Millisecond
	maxWorkBackoff = 10 * time.Second
)

// New builds an executor (a leader service; see package leadership); Run
// starts it.
func New(cfg Config, deps leadership.Deps, sched scheduler.Scheduler) *Executor {
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 10 * time.Second
	}
	if cfg.LogFlushInterval <= 0 {
		cfg.LogFlushInterval = 250 * time.Millisecond
	}
	if cfg.LogDrainWait <= 0 {
		cfg.LogDrainWait = 15 * time.Second
	}
	if cfg.LogCloseWait <= 0 {
		cfg.LogCloseWait = time.Minute
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 30 * time.Second
	}
	if cfg.APIURLs == nil {
		cfg.APIURLs = func() []string { return nil }
	}
	logger := deps.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	e := &Executor{cfg: cfg, state: deps.State, apply: deps.Apply, clock: clock.Or(deps.Clock), sched: sched, logger: logger}
	e.loop = reconcile.NewLoop(reconcile.LoopConfig{
		Pass: func(ctx context.Context) (reconcile.Result, error) {
			return reconcile.Result{Wake: e.reconcile(ctx)}, nil
		},
		Changes: func() <-chan struct{} { return e.state.RunChanges().Changed() },
		Gap:     minReconcileGap,
		Idle:    time.Hour,
		Clock:   e.clock,
		Logger:  logger,
	})
	e.workers = reconcile.NewWorkers(e.clock, minWorkBackoff, maxWorkBackoff, e.loop.Poke)
	return e
}

// minReconcileGap coalesces bursts of state changes into one pass.
const minReconcileGap = 2 * time.Millisecond

// Run executes until ctx ends (leadership lost), then waits for every
// goroutine it started: a deposed leader must issue no scheduler calls.
// The loop wakes on every change a run's progress can depend on
// (coalesced), when a worker ends, and at the next deadline a pass found.
// Beside it run the sweep and the log closer (closeLogsLoop).
func (e *Executor) Run(ctx context.Context) error {
	e.logger.Info("executor started; recovering unfinished runs from state")
	// Its own context, cancelled first on the way out: when the loop
	// returns early or panics, the sweep and the workers stop too, so the
	// waits below end and the lifecycle can restart the executor.
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		e.wg.Wait()
		e.workers.Wait()
		e.logger.Info("executor stopped")
	}()
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		e.sweepLoop(ctx)
	}()
	go func() {
		defer e.wg.Done()
		e.closeLogsLoop(ctx)
	}()
	e.loop.Run(ctx)
	return nil
}

// launch runs fn in a goroutine unless work under key is already going
// (it returns that worker) or is held after failures (it returns nil).
func (e *Executor) launch(ctx context.Context, key string, fn func(ctx context.Context, w *worker)) *worker {
	return e.workers.Launch(ctx, key, fn)
}

// snapshot is the state one reconcile pass works from.
type snapshot struct {
	runs  []*model.Run
	tasks map[int][]*model.TaskExecution // by index in runs
}

func (e *Executor) read() (*snapshot, error) {
	s := &snapshot{tasks: map[int][]*model.TaskExecution{}}
	seen := make(map[string]decodedTask, len(e.decoded))
	err := e.state.View(func(tx *bbolt.Tx) error {
		dec := store.NewTaskDecoder(tx) // each config version once a pass
		runs, err := store.ActiveRuns(tx)
		if err != nil {
			return err
		}
		s.runs = runs
		for i, r := range runs {
			if r.State == model.RunStatePending && r.Cancel == nil {
				continue // queued: its tasks are not looked at yet
			}
			err := store.ForEachTaskRaw(tx, r.NamespaceID, r.PipelineID, r.RunID, func(k, v []byte) error {
				d, ok := e.decoded[string(k)]
				if !ok || !bytes.Equal(d.raw, v) {
					t, err := dec.Decode(v)
					if t == nil {
						return err // not a record at all: the state is broken
					}
					if err != nil {
						// One slim record whose config version cannot be
						// read holds up its own task only (progressRun
						// fails it if it waits), never every run. Not
						// kept, so the next pass tries again.
						e.logger.Error("task execution without its config", "namespace", t.NamespaceID, "pipeline", t.PipelineID,
							"run", t.RunID, "task", t.TaskID, "error", err)
						s.tasks[i] = append(s.tasks[i], t)
						return nil
					}
					d = decodedTask{raw: bytes.Clone(v), task: t}
				}
				seen[string(k)] = d
				t := *d.task // callers get their own copy of the record
				s.tasks[i] = append(s.tasks[i], &t)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		e.decoded = seen // drops the tasks of runs that ended
	}
	return s, err
}

// reconcile looks at every unfinished run and starts whatever work is due.
// It returns when it next needs to look even if nothing changes (a retry
// backoff or a timeout ending), or the zero time.
func (e *Executor) reconcile(ctx context.Context) time.Time {
	s, err := e.read()
	if err != nil {
		e.logger.Error("reading state failed", "error", err)
		return e.clock.Now().Add(time.Second)
	}
	now := e.clock.Now()
	var next time.Time
	wake := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	e.startQueuedRuns(ctx, s)
	for i, r := range s.runs {
		switch r.State {
		case model.RunStatePending:
			if r.Cancel != nil {
				e.progressRun(ctx, r, s.tasks[i], now, wake)
			}
		case model.RunStateRunning:
			if r.TimeoutMillis > 0 && r.Cancel == nil {
				deadline := time.UnixMilli(r.Started + r.TimeoutMillis)
				if !now.Before(deadline) {
					e.cancelRun(ctx, r, model.ReasonTimeout)
				} else {
					wake(deadline)
				}
			}
			e.progressRun(ctx, r, s.tasks[i], now, wake)
		}
	}
	return next
}

// startQueuedRuns starts pending runs in arrival order while the global
// and per-pipeline limits allow. A pipeline at its limit does not hold up
// other pipelines' runs.
func (e *Executor) startQueuedRuns(ctx context.Context, s *snapshot) {
	running := 0
	perPipeline := map[string]int{}
	for _, r := range s.runs {
		if r.State == model.RunStateRunning {
			running++
			perPipeline[r.NamespaceID+"/"+r.PipelineID]++
		}
	}
	for _, r := range s.runs {
		if r.State != model.RunStatePending || r.Cancel != nil {
			continue
		}
		if e.cfg.GlobalLimit > 0 && running >= e.cfg.GlobalLimit {
			return
		}
		key := r.NamespaceID + "/" + r.PipelineID
		limit := int(r.Parallelism)
		if limit == 0 {
			limit = e.cfg.PipelineLimit
		}
		if limit > 0 && perPipeline[key] >= limit {
			continue
		}
		running++
		perPipeline[key]++
		ref := fsm.RunRef{NamespaceID: r.NamespaceID, PipelineID: r.PipelineID, RunID: r.RunID}
		e.launch(ctx, "start|"+runKey(r), func(ctx context.Context, w *worker) {
			e.applyCmd(ctx, w, fsm.CmdRunStart, fsm.RunStart{RunRef: ref})
		})
	}
}

// progressRun starts or resolves the run's ready tasks, hands
// cancellations to running tasks and finishes the run when all are done.
func (e *Executor) progressRun(ctx context.Context, r *model.Run, tasks []*model.TaskExecution, now time.Time, wake func(time.Time)) {
	byID := make(map[string]*model.TaskExecution, len(tasks))
	for _, t := range tasks {
		byID[t.TaskID] = t
	}
	allDone := true
	for _, t := range tasks {
		if t.Task == nil && !t.Terminal() {
			allDone = false
			e.unresolvable(ctx, t)
			continue
		}
		switch t.State {
		case model.TaskStateComplete:
			continue
		case model.TaskStateWaiting:
			allDone = false
			if t.Cancel != nil || r.Cancel != nil {
				e.resolveTask(ctx, t, model.TaskStatusCancelled, model.StatusReason{
					Reason: model.ReasonCancelled, Description: "cancelled before it started"})
				continue
			}
			if r.State != model.RunStateRunning {
				continue
			}
			verdict, why := checkDependencies(t, byID)
			switch verdict {
			case depsPending:
				continue
			case depsUnmet:
				e.resolveTask(ctx, t, model.TaskStatusSkipped, model.StatusReason{Reason: model.ReasonFailedPrecondition, Description: why})
				continue
			}
			if t.NotBefore > 0 {
				if at := time.UnixMilli(t.NotBefore); now.Before(at) {
					wake(at)
					continue
				}
			}
			e.runTask(ctx, r, t)
		case model.TaskStateScheduled, model.TaskStateRunning:
			allDone = false
			if w := e.runTask(ctx, r, t); w != nil && t.Cancel != nil {
				w.RequestCancel()
			}
		}
	}
	if allDone {
		ref := fsm.RunRef{NamespaceID: r.NamespaceID, PipelineID: r.PipelineID, RunID: r.RunID}
		e.launch(ctx, "finish|"+runKey(r), func(ctx context.Context, w *worker) { e.finishRun(ctx, w, ref) })
	}
}

// finishRun re-reads the run (it may have changed since the pass that
// launched this) and records its outcome.
func (e *Executor) finishRun(ctx context.Context, w *worker, ref fsm.RunRef) {
	var r *model.Run
	var tasks []*model.TaskExecution
	if err := e.state.View(func(tx *bbolt.Tx) (err error) {
		if r, err = store.GetRun(tx, ref.NamespaceID, ref.PipelineID, ref.RunID); err != nil || r == nil {
			return err
		}
		// As stored: the outcome needs no task config.
		tasks, err = store.ListTaskRecords(tx, ref.NamespaceID, ref.PipelineID, ref.RunID)
		return err
	}); err != nil || r == nil || r.State == model.RunStateComplete {
		return
	}
	status, reason := runOutcome(r, tasks)
	e.applyCmd(ctx, w, fsm.CmdRunFinish, fsm.RunFinish{RunRef: ref, Status: status, Reason: reason})
}

// unresolvable deals with a task whose config could not be read (read
// logged why): without it nothing can be started or resumed. A waiting
// task fails, so its run goes on and ends; one already started is left as
// it is (its container, if any, is not touched) until the config is
// readable again or the run is cancelled by hand.
func (e *Executor) unresolvable(ctx context.Context, t *model.TaskExecution) {
	if t.State != model.TaskStateWaiting {
		return
	}
	e.resolveTask(ctx, t, model.TaskStatusFailed, model.StatusReason{Reason: model.ReasonFailedPrecondition,
		Description: fmt.Sprintf("the task's config (pipeline config version %d) cannot be read", t.ConfigVersion)})
}

func (e *Executor) resolveTask(ctx context.Context, t *model.TaskExecution, status model.TaskStatus, reason model.StatusReason) {
	ref := taskRef(t)
	e.launch(ctx, "task|"+taskKey(t), func(ctx context.Context, w *worker) {
		e.applyCmd(ctx, w, fsm.CmdTaskResolve, fsm.TaskResolve{TaskRef: ref, Status: status, Reason: reason})
	})
}

func (e *Executor) cancelRun(ctx context.Context, r *model.Run, reason string) {
	ref := fsm.RunRef{NamespaceID: r.NamespaceID, PipelineID: r.PipelineID, RunID: r.RunID}
	e.launch(ctx, "cancel|"+runKey(r), func(ctx context.Context, w *worker) {
		e.logger.Info("cancelling run", "namespace", r.NamespaceID, "pipeline", r.PipelineID, "run", r.RunID, "reason", reason)
		e.applyCmd(ctx, w, fsm.CmdRunCancel, fsm.RunCancel{RunRef: ref, Cancel: model.Cancellation{Reason: reason, By: "gofer"}})
	})
}

// applyCmd applies a command for worker w (nil: none). A refused command
// (the state moved on, say a task cancelled meanwhile) is normal and only
// logged; the next pass sees the new state. A command that could not be
// replicated, or that the state machine rejects as invalid, marks w
// failed, so its work is retried with backoff. The result is nil only
// when the command was not applied at all.
func (e *Executor) applyCmd(ctx context.Context, w *worker, t fsm.CommandType, body any) (*fsm.Result, bool) {
	res, err := e.apply.Apply(ctx, t, body)
	if err != nil {
		if ctx.Err() == nil {
			e.logger.Warn("apply failed", "command", t, "error", err)
			if w != nil {
				w.Fail()
			}
		}
		return nil, false
	}
	if errors.Is(res.Err, fsm.ErrConflict) || errors.Is(res.Err, fsm.ErrNotFound) {
		e.logger.Debug("command refused; state moved on", "command", t, "reason", res.Err)
		return res, false
	}
	if res.Err != nil {
		e.logger.Warn("command refused", "command", t, "error", res.Err)
		if w != nil {
			w.Fail()
		}
		return res, false
	}
	return res, true
}

// runKey and taskKey name work; the run's UID keeps a worker of a run
// that was deleted from blocking a new run with the same number.
func runKey(r *model.Run) string {
	return fmt.Sprintf("%s|%s|%d|%d", r.NamespaceID, r.PipelineID, r.RunID, r.UID)
}

func taskKey(t *model.TaskExecution) string {
	return fmt.Sprintf("%s|%s|%d|%d|%s", t.NamespaceID, t.PipelineID, t.RunID, t.RunUID, t.TaskID)
}

func taskRef(t *model.TaskExecution) fsm.TaskRef {
	return fsm.TaskRef{RunRef: fsm.RunRef{NamespaceID: t.NamespaceID, PipelineID: t.PipelineID, RunID: t.RunID}, TaskID: t.TaskID}
}
