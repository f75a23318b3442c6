package fsm

import (
	"fmt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

func taskDetails(t *model.TaskExecution, kv ...any) model.EventDetails {
	return pipelineDetails(t.NamespaceID, t.PipelineID, append([]any{"run_id", t.RunID, "task_id", t.TaskID}, kv...)...)
}

func mustTask(a *applyCtx, ref TaskRef) (*model.TaskExecution, error) {
	// As stored: a slim record's task config is not decoded (only a
	// repeated attempt needs it, applyTaskSchedule).
	t, err := store.GetTaskRecord(a.tx, ref.NamespaceID, ref.PipelineID, ref.RunID, ref.TaskID)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("%w: run %d of pipeline %q has no task %q", ErrNotFound, ref.RunID, ref.PipelineID, ref.TaskID)
	}
	return t, nil
}

// mustAttempt loads a task whose current attempt is attempt and whose
// state is one of states.
func mustAttempt(a *applyCtx, ref TaskRef, attempt int, states ...model.TaskState) (*model.TaskExecution, error) {
	t, err := mustTask(a, ref)
	if err != nil {
		return nil, err
	}
	if t.Attempt != attempt {
		return nil, fmt.Errorf("%w: task %q is on attempt %d, not %d", ErrConflict, t.TaskID, t.Attempt, attempt)
	}
	for _, s := range states {
		if t.State == s {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: task %q is %s", ErrConflict, t.TaskID, t.State)
}

// taskConfig is a task's config: embedded in a fat record, from its config
// version for a slim one. A slim record's version is kept even when it is
// deleted (store.DeleteConfig), so a missing one is refused, never guessed.
func taskConfig(a *applyCtx, t *model.TaskExecution) (*sdk.TaskConfig, error) {
	if t.Task != nil {
		return t.Task, nil
	}
	// Its own copy, not the readers' cached one (store.OwnConfigTask).
	task, err := store.OwnConfigTask(a.tx, t.NamespaceID, t.PipelineID, t.ConfigVersion, t.TaskID)
	if err != nil {
		return nil, err
	}
	if task == nil {
		return nil, fmt.Errorf("%w: task %q of run %d: config version %d is gone", ErrConflict, t.TaskID, t.RunID, t.ConfigVersion)
	}
	return task, nil
}

func applyTaskSchedule(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TaskSchedule](body)
	r, err := mustRun(a, cmd.RunRef)
	if err != nil {
		return nil, err
	}
	if r.State != model.RunStateRunning {
		return nil, fmt.Errorf("%w: run %d is %s", ErrConflict, r.RunID, r.State)
	}
	t, err := mustAttempt(a, cmd.TaskRef, cmd.Attempt-1, model.TaskStateWaiting)
	if err != nil {
		return nil, err
	}
	if t.Cancel != nil {
		return nil, fmt.Errorf("%w: task %q is being cancelled", ErrConflict, t.TaskID)
	}
	t.State, t.Attempt, t.Container, t.Scheduled = model.TaskStateScheduled, cmd.Attempt, cmd.Container, a.meta.Timestamp
	t.Variables, t.NotBefore, t.LogOffset, t.StreamOffsets = cmd.Variables, 0, 0, nil
	t.Started, t.Ended, t.ExitCode = 0, 0, nil
	if cmd.Attempt > 1 {
		// Attempts share one log; a header line tells them apart, on a
		// line of its own even if the last attempt's output did not end one.
		task, err := taskConfig(a, t)
		if err != nil {
			return nil, err
		}
		marker := fmt.Sprintf("[gofer] attempt %d of %d starting\n", cmd.Attempt, task.Retries+1)
		if t.LogChunks > 0 {
			last, _ := store.LogChunks(a.tx, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID, t.LogChunks-1, 1)
			if len(last) == 1 && len(last[0]) > 0 && last[0][len(last[0])-1] != '\n' {
				marker = "\n" + marker
			}
		}
		if err := appendLogChunk(a, t, []byte(marker)); err != nil {
			return nil, err
		}
	}
	if err := store.PutTask(a.tx, t); err != nil {
		return nil, err
	}
	return t, a.emitIn(t.NamespaceID, t.PipelineID, model.EventScheduledTask, taskDetails(t, "attempt", t.Attempt, "container", t.Container))
}

func applyTaskRunning(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TaskRunning](body)
	t, err := mustAttempt(a, cmd.TaskRef, cmd.Attempt, model.TaskStateScheduled)
	if err != nil {
		return nil, err
	}
	t.State, t.Started = model.TaskStateRunning, a.meta.Timestamp
	if err := store.PutTask(a.tx, t); err != nil {
		return nil, err
	}
	return t, a.emitIn(t.NamespaceID, t.PipelineID, model.EventStartedTask, taskDetails(t, "attempt", t.Attempt))
}

// applyTaskFinish records an attempt's end: the task completes, or with
// RetryAt set waits for its next attempt.
func applyTaskFinish(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TaskFinish](body)
	t, err := mustAttempt(a, cmd.TaskRef, cmd.Attempt, model.TaskStateScheduled, model.TaskStateRunning)
	if err != nil {
		return nil, err
	}
	switch cmd.Status {
	case model.TaskStatusSuccessful, model.TaskStatusFailed, model.TaskStatusCancelled:
	default:
		return nil, fmt.Errorf("%w: task status %q", ErrInvalid, cmd.Status)
	}
	reason := cmd.Reason
	started := t.Started
	if started == 0 {
		started = t.Scheduled
	}
	t.Attempts = append(t.Attempts, model.Attempt{
		Attempt: t.Attempt, Container: t.Container, Started: started, Ended: a.meta.Timestamp,
		ExitCode: cmd.ExitCode, Status: cmd.Status, StatusReason: &reason,
	})
	t.ExitCode, t.StatusReason = cmd.ExitCode, &reason
	kind := model.EventCompletedTask
	if cmd.RetryAt > 0 && cmd.Status == model.TaskStatusFailed && t.Cancel == nil {
		t.State, t.NotBefore, t.Status = model.TaskStateWaiting, cmd.RetryAt, model.TaskStatusUnknown
		kind = model.EventRetryingTask
		t.LogsOpen = false
	} else {
		t.State, t.Status, t.Ended = model.TaskStateComplete, cmd.Status, a.meta.Timestamp
		// Older binaries never leave a log open (their entries are
		// versions 1 and 2), and the open-log index the leader closes
		// logs from is kept for version 3 entries only.
		t.LogsOpen = cmd.LogsOpen && !a.legacyFormat
	}
	if err := store.PutTask(a.tx, t); err != nil {
		return nil, err
	}
	if t.LogsOpen {
		if err := store.PutOpenLog(a.tx, t); err != nil {
			return nil, err
		}
	}
	details := taskDetails(t, "attempt", t.Attempt, "status", string(cmd.Status), "reason", reason.Reason)
	if cmd.ExitCode != nil {
		details["exit_code"] = *cmd.ExitCode
	} else if a.legacyFormat {
		details["exit_code"] = "" // older binaries always wrote the key
	}
	return t, a.emitIn(t.NamespaceID, t.PipelineID, kind, details)
}

func applyTaskResolve(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TaskResolve](body)
	t, err := mustTask(a, cmd.TaskRef)
	if err != nil {
		return nil, err
	}
	if t.State != model.TaskStateWaiting {
		return nil, fmt.Errorf("%w: task %q is %s, not waiting", ErrConflict, t.TaskID, t.State)
	}
	switch cmd.Status {
	case model.TaskStatusSkipped, model.TaskStatusCancelled, model.TaskStatusFailed:
	default:
		return nil, fmt.Errorf("%w: a waiting task cannot resolve to %q", ErrInvalid, cmd.Status)
	}
	reason := cmd.Reason
	t.State, t.Status, t.StatusReason, t.Ended = model.TaskStateComplete, cmd.Status, &reason, a.meta.Timestamp
	if err := store.PutTask(a.tx, t); err != nil {
		return nil, err
	}
	return t, a.emitIn(t.NamespaceID, t.PipelineID, model.EventCompletedTask, taskDetails(t, "status", string(t.Status), "reason", reason.Reason))
}

func applyTaskCancel(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TaskCancel](body)
	t, err := mustTask(a, cmd.TaskRef)
	if err != nil {
		return nil, err
	}
	if t.Terminal() {
		return nil, fmt.Errorf("%w: task %q is already complete (%s)", ErrConflict, t.TaskID, t.Status)
	}
	if t.Cancel != nil {
		return t, nil
	}
	c := cmd.Cancel
	c.Requested = a.meta.Timestamp
	t.Cancel = &c
	if err := store.PutTask(a.tx, t); err != nil {
		return nil, err
	}
	return t, a.emitIn(t.NamespaceID, t.PipelineID, model.EventCancellingTask, taskDetails(t, "by", c.By))
}
