package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

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
	ref := taskRef(t)
	recovering := t.State != model.TaskStateWaiting
	if !recovering {
		attempt := t.Attempt + 1
		name := ContainerName(e.cfg.ClusterID, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID, attempt)
		env := environment(r, t, e.cfg.APIURLs())
		// Commit, then act: the intent is replicated before any container
		// exists, so whoever leads next knows this attempt was meant.
		if _, ok := e.applyCmd(ctx, fsm.CmdTaskSchedule, fsm.TaskSchedule{TaskRef: ref, Attempt: attempt, Container: name, Variables: env}); !ok {
			return
		}
		t.State, t.Attempt, t.Container, t.Variables, t.LogOffset, t.Started = model.TaskStateScheduled, attempt, name, env, 0, 0
		t.Scheduled = e.cfg.Now().UnixMilli()
	}
	logger := e.logger.With("namespace", t.NamespaceID, "pipeline", t.PipelineID, "run", t.RunID, "task", t.TaskID, "attempt", t.Attempt)

	end, aborted := e.ensureContainer(ctx, w, t, recovering)
	if aborted {
		return
	}
	if end == nil {
		if t.State == model.TaskStateScheduled {
			if _, ok := e.applyCmd(ctx, fsm.CmdTaskRunning, fsm.TaskRunning{TaskRef: ref, Attempt: t.Attempt}); !ok {
				return
			}
			t.State, t.Started = model.TaskStateRunning, e.cfg.Now().UnixMilli()
		}
		if end, aborted = e.supervise(ctx, w, t); aborted {
			return
		}
	}
	var retry int64
	if end.status == model.TaskStatusFailed && end.retryable {
		retry = retryAt(t, t.Attempt, e.cfg.Now())
	}
	logger.Debug("attempt ended", "status", end.status, "reason", end.reason.Reason, "retry_at", retry)
	if _, ok := e.applyCmd(ctx, fsm.CmdTaskFinish, fsm.TaskFinish{TaskRef: ref, Attempt: t.Attempt,
		Status: end.status, Reason: end.reason, ExitCode: end.exit, RetryAt: retry}); !ok {
		return
	}
	if !e.cfg.KeepContainers {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := e.sched.Remove(rctx, t.Container); err != nil && ctx.Err() == nil {
			logger.Warn("could not remove finished container; the sweep will retry", "container", t.Container, "error", err)
		}
		cancel()
	}
}

// ensureContainer makes the attempt's container exist. It returns nil when
// a container is (or was) running for the attempt, an end when none can
// run, and aborted when ctx ended. A recovered attempt (started by an
// earlier leader) is inspected first; a fresh one is created directly,
// and a name conflict means it exists already.
func (e *Executor) ensureContainer(ctx context.Context, w *worker, t *model.TaskExecution, recovering bool) (end *attemptEnd, aborted bool) {
	if recovering {
		// Recovering an attempt, or re-checking one: the scheduler says
		// what became of it. Unreachable means retry, never guess.
		st, err := e.inspect(ctx, t.Container)
		if err != nil {
			return nil, true
		}
		switch st.State {
		case scheduler.StateNotFound:
			if t.State == model.TaskStateRunning {
				return &attemptEnd{status: model.TaskStatusFailed, retryable: true, reason: model.StatusReason{
					Reason: model.ReasonLost, Description: fmt.Sprintf("container %s disappeared while the task ran", t.Container)}}, false
			}
			// Only the intent was recorded: start it now.
		case scheduler.StateCreated:
			// Created but never started (a leader died between the two
			// calls): Start below starts that very container.
		default:
			return nil, false // running or exited: adopt it
		}
	}
	if cancelled(w) {
		return &attemptEnd{status: model.TaskStatusCancelled, reason: model.StatusReason{
			Reason: model.ReasonCancelled, Description: "cancelled before its container started"}}, false
	}
	err := e.start(ctx, t)
	switch {
	case err == nil:
		return nil, false
	case ctx.Err() != nil:
		return nil, true
	case errors.Is(err, scheduler.ErrAlreadyExists):
		// The name is the attempt's identity and the container has
		// started already (a previous leader): adopt it.
		return nil, false
	case errors.Is(err, scheduler.ErrImageNotFound), errors.Is(err, scheduler.ErrInvalid):
		return &attemptEnd{status: model.TaskStatusFailed, reason: model.StatusReason{
			Reason: model.ReasonSchedulerError, Description: err.Error()}}, false
	default:
		return &attemptEnd{status: model.TaskStatusFailed, retryable: true, reason: model.StatusReason{
			Reason: model.ReasonSchedulerError, Description: "could not start the container: " + err.Error()}}, false
	}
}

// startAttempts bounds how often an unreachable scheduler is retried for
// a new container before the attempt fails (with its retry policy).
const startAttempts = 4

func (e *Executor) start(ctx context.Context, t *model.TaskExecution) error {
	req := scheduler.StartRequest{
		Name:       t.Container,
		Image:      t.Task.Image,
		Entrypoint: t.Task.Entrypoint,
		Command:    t.Task.Command,
		Env:        t.Variables,
		Labels:     containerLabels(e.cfg.ClusterID, t, t.Attempt, e.cfg.Term),
		AlwaysPull: t.Task.AlwaysPullNewestImage,
	}
	if ra := t.Task.RegistryAuth; ra != nil {
		req.RegistryUser, req.RegistryPass = ra.User, ra.Pass
	}
	var err error
	backoff := 250 * time.Millisecond
	for i := 0; i < startAttempts; i++ {
		if err = e.sched.Start(ctx, req); err == nil || !errors.Is(err, scheduler.ErrUnavailable) {
			return err
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff *= 2
	}
	return err
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
		if !sleep(ctx, backoff) {
			return st, ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// supervise follows a running attempt: it replicates its output, enforces
// its timeout, stops it on cancellation, and reports how it ended.
func (e *Executor) supervise(ctx context.Context, w *worker, t *model.TaskExecution) (*attemptEnd, bool) {
	logsDone := e.collectLogs(ctx, t)
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
	timeout := t.Task.TimeoutDuration()
	if timeout > 0 {
		started := time.UnixMilli(t.Started)
		if t.Started == 0 {
			started = e.cfg.Now()
		}
		timer := time.NewTimer(max(started.Add(timeout).Sub(e.cfg.Now()), 0))
		defer timer.Stop()
		deadline = timer.C
	}
	stoppedFor := ""
	cancelCh := w.cancel
	var st scheduler.Status
	for st.State == "" {
		select {
		case st = <-exited:
		case <-deadline:
			deadline, stoppedFor = nil, model.ReasonTimeout
			e.stop(ctx, t.Container, e.cfg.StopGrace)
		case <-cancelCh:
			cancelCh, stoppedFor = nil, model.ReasonCancelled
			e.stop(ctx, t.Container, e.cancelGrace(t))
		case <-ctx.Done():
			return nil, true
		}
	}
	// The log stream ends with the container; wait for the last output to
	// be replicated before the result, so a finished task's log is whole.
	select {
	case <-logsDone:
	case <-time.After(15 * time.Second):
		e.logger.Warn("log stream did not end after the container exited", "container", t.Container)
	case <-ctx.Done():
		return nil, true
	}

	exit := st.ExitCode
	switch {
	case st.State == scheduler.StateNotFound:
		return &attemptEnd{status: model.TaskStatusFailed, retryable: true, reason: model.StatusReason{
			Reason: model.ReasonLost, Description: fmt.Sprintf("container %s disappeared while the task ran", t.Container)}}, false
	case stoppedFor == model.ReasonCancelled:
		by := "a user"
		if t.Cancel != nil && t.Cancel.By != "" {
			by = t.Cancel.By
		}
		return &attemptEnd{status: model.TaskStatusCancelled, exit: &exit, reason: model.StatusReason{
			Reason: model.ReasonCancelled, Description: "cancelled by " + by}}, false
	case stoppedFor == model.ReasonTimeout:
		return &attemptEnd{status: model.TaskStatusFailed, exit: &exit, retryable: true, reason: model.StatusReason{
			Reason: model.ReasonTimeout, Description: fmt.Sprintf("exceeded its %s timeout and was stopped", timeout)}}, false
	case exit == 0:
		return &attemptEnd{status: model.TaskStatusSuccessful, exit: &exit, reason: model.StatusReason{Description: "exited with code 0"}}, false
	default:
		desc := fmt.Sprintf("exited with code %d", exit)
		if st.Message != "" {
			desc += ": " + st.Message
		}
		return &attemptEnd{status: model.TaskStatusFailed, exit: &exit, retryable: true, reason: model.StatusReason{
			Reason: model.ReasonAbnormalExit, Description: desc}}, false
	}
}

// waitExit waits for a container to exit, riding out scheduler outages.
func (e *Executor) waitExit(ctx context.Context, name string) (scheduler.Status, error) {
	backoff := 100 * time.Millisecond
	for {
		st, err := e.sched.Wait(ctx, name)
		if err == nil {
			return st, nil
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		e.logger.Warn("waiting on container failed; retrying", "container", name, "error", err)
		if !sleep(ctx, backoff) {
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

// cancelGrace is the cancellation's grace period, read fresh from state
// (the request may carry its own).
func (e *Executor) cancelGrace(t *model.TaskExecution) time.Duration {
	grace := e.cfg.StopGrace
	_ = e.fsm.View(func(tx *bbolt.Tx) error {
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
	case <-w.cancel:
		return true
	default:
		return false
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
