package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// attemptEnd is how an attempt ended.
type attemptEnd struct {
	status model.TaskStatus
	reason model.StatusReason
	exit   *int
	// retryable: the failure may not repeat (an exit code, a timeout, a
	// lost container), so the task's retry policy applies.
	retryable bool
	// logsDone is set when the attempt ended before its output was all
	// replicated: it closes once it is, and the log is closed then.
	// stopLogs stops that collector (it has its own context, so a close
	// that gives up on it can end it before saying the log ended).
	logsDone <-chan struct{}
	stopLogs context.CancelFunc
}

// runTask makes sure one goroutine drives the task: a fresh attempt for a
// waiting task, or the recovery of an attempt a previous leader started.
func (e *Executor) runTask(ctx context.Context, r *model.Run, t *model.TaskExecution) *worker {
	return e.launch(ctx, "task|"+taskKey(t), func(ctx context.Context, w *worker) {
		e.runAttempt(ctx, w, r, t)
	})
}

// runAttempt takes one attempt from intent to recorded result. If ctx ends
// (leadership lost) it returns without recording anything: the next
// leader recovers the attempt from state.
func (e *Executor) runAttempt(ctx context.Context, w *worker, r *model.Run, t *model.TaskExecution) {
	// The pass that launched this worker read state a moment ago; the
	// worker that held this key before may have finished the very attempt
	// that snapshot shows (its TaskFinish is committed before its key is
	// freed). Work only from the task as it is now, and only if it is
	// still what the pass decided on: otherwise the next pass decides
	// again. Without this a stale "scheduled" would start a finished
	// attempt's container a second time.
	cur, ok := e.currentTask(t)
	if !ok || cur.State != t.State || cur.Attempt != t.Attempt {
		return
	}
	t = cur
	ref := taskRef(t)
	recovering := t.State != model.TaskStateWaiting
	if !recovering {
		attempt := t.Attempt + 1
		name := ContainerName(e.cfg.ClusterID, t, attempt)
		env := environment(r, t, e.cfg.APIURLs())
		if n := envBytes(env); n > maxEnvBytes {
			// It could never be replicated; retrying would loop forever.
			e.applyCmd(ctx, w, fsm.CmdTaskResolve, fsm.TaskResolve{TaskRef: ref, Status: model.TaskStatusFailed, Reason: model.StatusReason{
				Reason: model.ReasonSchedulerError, Description: fmt.Sprintf("its environment (system, pipeline and run variables) is %d bytes; the limit is %d", n, maxEnvBytes)}})
			return
		}
		// Commit, then act: the intent is replicated before any container
		// exists, so whoever leads next knows this attempt was meant.
		if _, ok := e.applyCmd(ctx, w, fsm.CmdTaskSchedule, fsm.TaskSchedule{TaskRef: ref, Attempt: attempt, Container: name, Variables: env}); !ok {
			return
		}
		t.State, t.Attempt, t.Container, t.Variables, t.LogOffset, t.StreamOffsets, t.Started = model.TaskStateScheduled, attempt, name, env, 0, nil, 0
		t.Scheduled = e.clock.Now().UnixMilli()
	}
	logger := e.logger.With("namespace", t.NamespaceID, "pipeline", t.PipelineID, "run", t.RunID, "task", t.TaskID, "attempt", t.Attempt)

	end, masks, aborted := e.ensureContainer(ctx, w, t, recovering)
	if aborted {
		return
	}
	if end == nil {
		if t.State == model.TaskStateScheduled {
			res, ok := e.applyCmd(ctx, w, fsm.CmdTaskRunning, fsm.TaskRunning{TaskRef: ref, Attempt: t.Attempt})
			if !ok {
				if res != nil {
					// Refused: the attempt is no longer this one's to run
					// (its run was deleted, say). Nothing will ever
					// record this container's result; do not leave it
					// running.
					e.discard(ctx, logger, t)
				}
				return
			}
			t.State, t.Started = model.TaskStateRunning, e.clock.Now().UnixMilli()
		}
		if end, aborted = e.supervise(ctx, w, t, masks); aborted {
			return
		}
	}
	var retry int64
	if end.status == model.TaskStatusFailed && end.retryable {
		retry = retryAt(t, t.Attempt, e.clock.Now())
	}
	logger.Debug("attempt ended", "status", end.status, "reason", end.reason.Reason, "retry_at", retry)
	if end.logsDone != nil {
		// Until its log is closed the container is the output's source:
		// the sweep leaves it alone (the finish below makes it look
		// dead).
		e.draining.Store(t.Container, struct{}{})
		defer e.draining.Delete(t.Container)
	}
	// LogsOpen says whether the output is all in; whether the log stays
	// open is the applier's call (a retry never leaves it open, and a
	// cancellation landing after retryAt was computed turns a retry into
	// a completion), so the close follows the applied task, not retry.
	res, ok := e.applyCmd(ctx, w, fsm.CmdTaskFinish, fsm.TaskFinish{TaskRef: ref, Attempt: t.Attempt,
		Status: end.status, Reason: end.reason, ExitCode: end.exit, RetryAt: retry, LogsOpen: end.logsDone != nil})
	if !ok && res == nil {
		// Not replicated (no quorum, a timeout): keep the container, whose
		// exit is the evidence the next try (or leader) records. If the
		// finish did commit with the log open, the leader's log closer
		// (closeLogsLoop) closes it.
		return
	}
	if ok && end.logsDone != nil {
		if finished, _ := res.Value.(*model.TaskExecution); finished != nil && finished.LogsOpen {
			// The container goes after the close: removing it first
			// would end its log stream before Docker delivered the rest.
			if !e.closeLog(ctx, w, logger, ref, t.Attempt, end) {
				return // leadership lost: the next leader's sweep removes it
			}
		}
	}
	if !e.cfg.KeepContainers || !ok {
		e.discard(ctx, logger, t)
	}
}

// closeLog closes the log of a task finished while its output was still
// being replicated, once the collector is done (or given up on and
// stopped, so nothing it sends lands after the close): until then a
// follow stream of the task does not end. It reports false when ctx
// ended first. A close that is not replicated is retried by the leader's
// log closer.
func (e *Executor) closeLog(ctx context.Context, w *worker, logger hclog.Logger, ref fsm.TaskRef, attempt int, end *attemptEnd) bool {
	wait := e.clock.NewTimer(e.cfg.LogCloseWait)
	defer wait.Stop()
	select {
	case <-end.logsDone:
	case <-wait.C():
		logger.Warn("closing the task's log while its output is still being collected")
		end.stopLogs()
		select {
		case <-end.logsDone:
		case <-ctx.Done():
			return false
		}
	case <-ctx.Done():
		return false
	}
	e.applyCmd(ctx, w, fsm.CmdLogAppend, fsm.LogAppend{TaskRef: ref, Attempt: attempt, Last: true, MaxBytes: e.cfg.LogMaxBytes})
	return ctx.Err() == nil
}

// currentTask reads the task as state has it now.
func (e *Executor) currentTask(t *model.TaskExecution) (*model.TaskExecution, bool) {
	var cur *model.TaskExecution
	err := e.state.View(func(tx *bbolt.Tx) (err error) {
		cur, err = store.GetTask(tx, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID)
		return err
	})
	return cur, err == nil && cur != nil && cur.RunUID == t.RunUID
}

// discard removes an attempt's container once nothing needs it.
func (e *Executor) discard(ctx context.Context, logger hclog.Logger, t *model.TaskExecution) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := e.sched.Remove(rctx, t.Container); err != nil && ctx.Err() == nil {
		logger.Warn("could not remove the container; the sweep will retry", "container", t.Container, "error", err)
	}
}

// maxEnvBytes bounds a task's environment, which TaskSchedule replicates
// (the raft entry limit is 512 KiB).
const maxEnvBytes = 256 << 10

func envBytes(env map[string]string) int {
	n := 0
	for k, v := range env {
		n += len(k) + len(v)
	}
	return n
}

// ensureContainer makes the attempt's container exist. It returns nil when
// a container is (or was) running for the attempt, an end when none can
// run, and aborted when ctx ended. A recovered attempt (started by an
// earlier leader) is inspected first; a fresh one is created directly,
// and a name conflict means it exists already. masks are the secret
// values the container was given, when this call started it (nil
// otherwise).
func (e *Executor) ensureContainer(ctx context.Context, w *worker, t *model.TaskExecution, recovering bool) (end *attemptEnd, masks [][]byte, aborted bool) {
	if recovering {
		// Recovering an attempt, or re-checking one: the scheduler says
		// what became of it. Unreachable means retry, never guess.
		st, err := e.inspect(ctx, t.Container)
		if err != nil {
			return nil, nil, true
		}
		switch st.State {
		case scheduler.StateNotFound:
			if t.State == model.TaskStateRunning {
				return &attemptEnd{status: model.TaskStatusFailed, retryable: true, reason: model.StatusReason{
					Reason: model.ReasonLost, Description: fmt.Sprintf("container %s disappeared while the task ran", t.Container)}}, nil, false
			}
			// Only the intent was recorded: start it now.
		case scheduler.StateCreated:
			// Created but never started (a leader died between the two
			// calls): Start below starts that very container.
		default:
			return nil, nil, false // running or exited: adopt it
		}
	}
	cancelledEnd := &attemptEnd{status: model.TaskStatusCancelled, reason: model.StatusReason{
		Reason: model.ReasonCancelled, Description: "cancelled before its container started"}}
	if cancelled(w) {
		return cancelledEnd, nil, false
	}
	// A cancellation (or a run timeout) also ends a start that is still
	// pulling an image or waiting for the engine.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-w.Cancelled():
			stop()
		case <-sctx.Done():
		}
	}()
	// Markers resolve now, after the parents finished, from the stores
	// as they are at this moment.
	in := e.interpolate(t)
	if in.problem != "" {
		return &attemptEnd{status: model.TaskStatusFailed, reason: model.StatusReason{
			Reason: model.ReasonFailedPrecondition, Description: in.problem}}, nil, false
	}
	err := e.start(sctx, t, in.env)
	switch {
	case err == nil:
		// Non-nil even when empty: the log collector then knows the
		// values were resolved here and does not resolve them again.
		return nil, append([][]byte{}, in.secrets...), false
	case ctx.Err() != nil:
		return nil, nil, true
	case cancelled(w):
		// A create may have gone through; TaskFinish is followed by the
		// container's removal.
		return cancelledEnd, nil, false
	case errors.Is(err, scheduler.ErrAlreadyExists):
		// The name is the attempt's identity and the container has
		// started already (a previous leader): adopt it.
		return nil, nil, false
	case errors.Is(err, scheduler.ErrImageNotFound), errors.Is(err, scheduler.ErrInvalid):
		return &attemptEnd{status: model.TaskStatusFailed, reason: model.StatusReason{
			Reason: model.ReasonSchedulerError, Description: err.Error()}}, nil, false
	default:
		return &attemptEnd{status: model.TaskStatusFailed, retryable: true, reason: model.StatusReason{
			Reason: model.ReasonSchedulerError, Description: "could not start the container: " + err.Error()}}, nil, false
	}
}

// startRetryFor is how long an unreachable scheduler is retried for a new
// container (a Docker restart takes seconds) before the attempt fails
// with a reason that says so, and the task's retry policy decides.
const startRetryFor = 30 * time.Second

func (e *Executor) start(ctx context.Context, t *model.TaskExecution, env map[string]string) error {
	req := scheduler.StartRequest{
		Name:       t.Container,
		Image:      t.Task.Image,
		Entrypoint: t.Task.Entrypoint,
		Command:    t.Task.Command,
		Env:        env,
		Labels:     containerLabels(e.cfg.ClusterID, t, t.Attempt, e.cfg.Term),
		AlwaysPull: t.Task.AlwaysPullNewestImage,
	}
	if ra := t.Task.RegistryAuth; ra != nil {
		req.RegistryUser, req.RegistryPass = ra.User, ra.Pass
	}
	if r := t.Task.Resources; r != nil {
		req.CPU, req.MemoryMB = r.CPU, r.Memory
	}
	giveUp := e.clock.Now().Add(startRetryFor)
	backoff := 250 * time.Millisecond
	for {
		err := e.sched.Start(ctx, req)
		if err == nil || !errors.Is(err, scheduler.ErrUnavailable) || ctx.Err() != nil || !e.clock.Now().Before(giveUp) {
			return err
		}
		e.logger.Warn("scheduler unavailable; retrying the start", "container", t.Container, "error", err)
		if !clock.Sleep(ctx, e.clock, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// inspect asks the scheduler about a container, retrying while it is
// unreachable; it fails only when ctx ends.
func (e *Executor) inspect(ctx context.Context, name string) (scheduler.Status, error) {
	backoff := 100 * time.Millisecond
	for {
		st, err := e.sched.Inspect(ctx, name)
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		e.logger.Warn("cannot inspect container; retrying", "container", name, "error", err)
		if !clock.Sleep(ctx, e.clock, backoff) {
			return st, ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// supervise follows a running attempt: it replicates its output, enforces
// its timeout, stops it on cancellation, and reports how it ended.
func (e *Executor) supervise(ctx context.Context, w *worker, t *model.TaskExecution, masks [][]byte) (*attemptEnd, bool) {
	// The collector may outlive this call (a drain that does not end in
	// time), so it gets a context of its own that closeLog can end.
	logCtx, stopLogs := context.WithCancel(ctx)
	handedOff := false
	defer func() {
		if !handedOff {
			stopLogs()
		}
	}()
	logsDone := e.collectLogs(logCtx, t, masks)
	waitCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	exited := make(chan scheduler.Status, 1)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if st, err := e.waitExit(waitCtx, t.Container); err == nil {
			exited <- st
		}
	}()

	var deadline <-chan time.Time
	var deadlineAt time.Time
	timeout := t.Task.TimeoutDuration()
	if timeout > 0 {
		started := time.UnixMilli(t.Started)
		if t.Started == 0 {
			started = e.clock.Now()
		}
		deadlineAt = started.Add(timeout)
		timer := e.clock.NewTimer(max(deadlineAt.Sub(e.clock.Now()), 0))
		defer timer.Stop()
		deadline = timer.C()
	}
	stoppedFor := ""
	cancelCh := w.Cancelled()
	// After a stop request, restop fires if the container is still there:
	// the engine may have failed the request, or the container ignores
	// signals. The stop is asked again, then the container is removed.
	var restop <-chan time.Time
	var restopTimer clock.Timer
	defer func() {
		if restopTimer != nil {
			restopTimer.Stop()
		}
	}()
	var grace time.Duration
	stops := 0
	requestStop := func(g time.Duration) {
		grace = g
		stops++
		if stops > maxStopRequests {
			e.logger.Warn("container did not stop; removing it", "container", t.Container)
			e.kill(ctx, t.Container)
		} else {
			e.stop(ctx, t.Container, grace)
		}
		if restopTimer == nil {
			restopTimer = e.clock.NewTimer(grace + stopCheckMargin)
		} else {
			restopTimer.Reset(grace + stopCheckMargin)
		}
		restop = restopTimer.C()
	}
	var st scheduler.Status
	for st.State == "" {
		select {
		case st = <-exited:
		case <-deadline:
			deadline = nil
			// A recovered attempt may have exited on its own before this
			// leader looked: that is its result, not a timeout.
			if done, ok := e.exitedBy(ctx, t.Container, deadlineAt); ok {
				st = done
				continue
			}
			if stoppedFor == "" {
				stoppedFor = model.ReasonTimeout
				requestStop(e.cfg.StopGrace)
			}
		case <-cancelCh:
			cancelCh = nil
			if done, ok := e.exitedBy(ctx, t.Container, time.Time{}); ok {
				st = done
				continue
			}
			if stoppedFor == "" {
				stoppedFor = model.ReasonCancelled
				requestStop(e.cancelGrace(t))
			}
		case <-restop:
			requestStop(grace)
		case <-ctx.Done():
			return nil, true
		}
	}
	// The log stream ends with the container; wait for the last output to
	// be replicated before the result, so a finished task's log is whole.
	// A stream that does not end in time leaves the log open: the task is
	// finished anyway, and its log closed when the output is in.
	drained := true
	drainWait := e.clock.NewTimer(e.cfg.LogDrainWait)
	defer drainWait.Stop()
	select {
	case <-logsDone:
	case <-drainWait.C():
		e.logger.Warn("log stream did not end after the container exited", "container", t.Container)
		drained = false
	case <-ctx.Done():
		return nil, true
	}
	end := attemptOutcome(t, st, stoppedFor, timeout)
	if !drained {
		end.logsDone, end.stopLogs, handedOff = logsDone, stopLogs, true
	}
	return end, false
}

// attemptOutcome is how an attempt ended, from its container's status and
// why it was stopped (if it was).
func attemptOutcome(t *model.TaskExecution, st scheduler.Status, stoppedFor string, timeout time.Duration) *attemptEnd {
	exit := st.ExitCode
	switch {
	case stoppedFor == model.ReasonCancelled:
		by := "a user"
		if t.Cancel != nil && t.Cancel.By != "" {
			by = t.Cancel.By
		}
		end := &attemptEnd{status: model.TaskStatusCancelled, reason: model.StatusReason{
			Reason: model.ReasonCancelled, Description: "cancelled by " + by}}
		if st.State == scheduler.StateExited {
			end.exit = &exit
		}
		return end
	case stoppedFor == model.ReasonTimeout:
		end := &attemptEnd{status: model.TaskStatusFailed, retryable: true, reason: model.StatusReason{
			Reason: model.ReasonTimeout, Description: fmt.Sprintf("exceeded its %s timeout and was stopped", timeout)}}
		if st.State == scheduler.StateExited {
			end.exit = &exit
		}
		return end
	case st.State == scheduler.StateNotFound:
		return &attemptEnd{status: model.TaskStatusFailed, retryable: true, reason: model.StatusReason{
			Reason: model.ReasonLost, Description: fmt.Sprintf("container %s disappeared while the task ran", t.Container)}}
	case exit == 0:
		return &attemptEnd{status: model.TaskStatusSuccessful, exit: &exit, reason: model.StatusReason{Description: "exited with code 0"}}
	default:
		desc := fmt.Sprintf("exited with code %d", exit)
		if st.Message != "" {
			desc += ": " + st.Message
		}
		return &attemptEnd{status: model.TaskStatusFailed, exit: &exit, retryable: true, reason: model.StatusReason{
			Reason: model.ReasonAbnormalExit, Description: desc}}
	}
}

// Stopping: how many times a stop is asked before the container is
// removed by force, and how long past its grace a stop may take.
const (
	maxStopRequests = 3
	stopCheckMargin = 5 * time.Second
)

// exitedBy reports the container's final status if it has exited, and
// (when by is set) did so no later than by.
func (e *Executor) exitedBy(ctx context.Context, name string, by time.Time) (scheduler.Status, bool) {
	st, err := e.sched.Inspect(ctx, name)
	if err != nil || st.State != scheduler.StateExited {
		return st, false
	}
	if !by.IsZero() && !st.Finished.IsZero() && st.Finished.After(by) {
		return st, false
	}
	return st, true
}

// waitExit waits for a container to exit, riding out scheduler outages.
// Only an exit or the container's absence is final: a state the backend
// cannot name (a container being removed, say) is asked about again.
func (e *Executor) waitExit(ctx context.Context, name string) (scheduler.Status, error) {
	backoff := 100 * time.Millisecond
	for {
		st, err := e.sched.Wait(ctx, name)
		if err == nil && (st.State == scheduler.StateExited || st.State == scheduler.StateNotFound) {
			return st, nil
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		if err != nil {
			e.logger.Warn("waiting on container failed; retrying", "container", name, "error", err)
		} else {
			e.logger.Debug("container not exited yet; waiting again", "container", name, "state", st.State)
		}
		if !clock.Sleep(ctx, e.clock, backoff) {
			return st, ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// stop asks a container to stop in the background; the wait that is
// already running reports the exit.
func (e *Executor) stop(ctx context.Context, name string, grace time.Duration) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		sctx, cancel := context.WithTimeout(ctx, grace+30*time.Second)
		defer cancel()
		if err := e.sched.Stop(sctx, name, grace); err != nil && ctx.Err() == nil {
			e.logger.Warn("stopping container failed", "container", name, "error", err)
		}
	}()
}

// kill removes a container that would not stop, in the background; the
// wait sees it gone.
func (e *Executor) kill(ctx context.Context, name string) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := e.sched.Remove(rctx, name); err != nil && ctx.Err() == nil {
			e.logger.Warn("removing a container that would not stop failed", "container", name, "error", err)
		}
	}()
}

// cancelGrace is the cancellation's grace period, read fresh from state
// (the request may carry its own).
func (e *Executor) cancelGrace(t *model.TaskExecution) time.Duration {
	grace := e.cfg.StopGrace
	_ = e.state.View(func(tx *bbolt.Tx) error {
		cur, err := store.GetTask(tx, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID)
		if err == nil && cur != nil && cur.Cancel != nil {
			t.Cancel = cur.Cancel
			if cur.Cancel.GraceMillis > 0 {
				grace = time.Duration(cur.Cancel.GraceMillis) * time.Millisecond
			}
		}
		return nil
	})
	return grace
}

func cancelled(w *worker) bool {
	select {
	case <-w.Cancelled():
		return true
	default:
		return false
	}
}
