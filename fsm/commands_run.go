package fsm

import (
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// Run and task commands. The executor on the leader decides every
// transition; the FSM only checks that it is legal from the current state
// (and for the current attempt), so a duplicate or stale command changes
// nothing.

// RunCreate starts a run of the pipeline's live config version.
type RunCreate struct {
	NamespaceID string            `json:"namespace_id"`
	PipelineID  string            `json:"pipeline_id"`
	Variables   map[string]string `json:"variables"`
	Initiator   model.Initiator   `json:"initiator"`
	// IdempotencyKey makes a start request repeatable: the same key
	// returns the run it created first.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// RequestHash is the hash of the request that carried the key
	// (Meta.RequestHash): the same key with another request is refused.
	RequestHash string `json:"request_hash,omitempty"`
	RetryOf     int64  `json:"retry_of,omitempty"`
	// Token is token material made on the leader (id, hash, sealed
	// secret, expiry). The applier keeps it, scoped to the run's
	// pipeline, only when a task of the live version sets
	// inject_api_token.
	Token *model.StoredToken `json:"token,omitempty"`
	// TriggerKey, with Extension, starts the run for an extension's
	// trigger (docs/triggers.md): the pipeline starts at most one run per
	// (extension, key), whichever token asks, and a key naming a
	// subscription ("interval:<ns>/<pipeline>/<sub>:<unix>") advances that
	// subscription's watermark.
	TriggerKey string `json:"trigger_key,omitempty"`
	Extension  string `json:"extension,omitempty"`
}

// RunCreated is RunCreate's result.
type RunCreated struct {
	Run *model.Run `json:"run"`
	// Existing is set when the idempotency key had already started Run.
	Existing bool `json:"existing"`
}

// RunRef names a run.
type RunRef struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	RunID       int64  `json:"run_id"`
}

// TaskRef names a task execution.
type TaskRef struct {
	RunRef
	TaskID string `json:"task_id"`
}

// RunStart moves a queued run to running (a parallelism slot is free).
type RunStart struct {
	RunRef
}

// TaskSchedule commits the intent to start attempt Attempt of a task in
// container Container, before the container is created (commit, then act).
type TaskSchedule struct {
	TaskRef
	Attempt   int               `json:"attempt"`
	Container string            `json:"container"`
	Variables map[string]string `json:"variables"`
}

// TaskRunning records that the attempt's container started.
type TaskRunning struct {
	TaskRef
	Attempt int `json:"attempt"`
}

// TaskFinish records how an attempt ended. With RetryAt set the task goes
// back to waiting until then, for another attempt.
type TaskFinish struct {
	TaskRef
	Attempt  int                `json:"attempt"`
	Status   model.TaskStatus   `json:"status"`
	Reason   model.StatusReason `json:"reason"`
	ExitCode *int               `json:"exit_code,omitempty"`
	RetryAt  int64              `json:"retry_at,omitempty"`
	// LogsOpen: the attempt's output was not all collected yet (the
	// executor stopped waiting for it); a LogAppend with Last follows
	// once it is (from the worker, or the leader's log closer). A retry
	// ignores it (the task waits, its log is not closed), and so do
	// entries of envelope versions 1 and 2: their task's log counts as
	// closed at completion, as it always did.
	LogsOpen bool `json:"logs_open,omitempty"`
}

// TaskResolve ends a task that never started (or waits for a retry):
// skipped for unmet dependencies, or cancelled.
type TaskResolve struct {
	TaskRef
	Status model.TaskStatus   `json:"status"`
	Reason model.StatusReason `json:"reason"`
}

// RunFinish ends a run whose tasks are all complete.
type RunFinish struct {
	RunRef
	Status model.RunStatus    `json:"status"`
	Reason model.StatusReason `json:"reason"`
}

// RunCancel asks for a run to be cancelled: every unfinished task is
// marked for cancellation and the executor stops them.
type RunCancel struct {
	RunRef
	Cancel model.Cancellation `json:"cancel"`
}

// TaskCancel asks for one task to be cancelled.
type TaskCancel struct {
	TaskRef
	Cancel model.Cancellation `json:"cancel"`
}

// LogAppend adds output of the current attempt. Offset is where Data
// starts in the container's output, so a chunk read twice (by two
// leaders) is stored once. MaxBytes is the per-task cap, decided by the
// leader's configuration.
type LogAppend struct {
	TaskRef
	Attempt  int    `json:"attempt"`
	Offset   int64  `json:"offset"`
	Data     []byte `json:"data"`
	MaxBytes int64  `json:"max_bytes"`
	// Last says the attempt's output has ended: nothing more will be
	// appended, so a complete task's log is closed (TaskExecution.LogsOpen
	// cleared). It may come with no data. A version 3 append to a complete
	// task whose log is closed stores nothing.
	Last bool `json:"last,omitempty"`
	// Streams, for a backend with separate stdout and stderr, is how far
	// into each stream the output up to Offset+len(Data) reaches; Offset
	// is then a position in the combined log the collector made. An append
	// that stores output stores it as the task's StreamOffsets (envelope
	// version 5 on; older entries never carry it).
	Streams *model.StreamOffsets `json:"streams,omitempty"`
}

// LogAppended is LogAppend's result: how much of the container's output
// is consumed, and whether more output would be dropped anyway (the log
// hit its cap, or was deleted or expired), so the collector can stop
// shipping it.
type LogAppended struct {
	Offset int64
	Full   bool
}

// LogsDelete removes a finished task's stored log.
type LogsDelete struct {
	TaskRef
}

// LogsExpire removes the logs of a pipeline's finished runs up to and
// including run Through (log retention by number of runs).
type LogsExpire struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	Through     int64  `json:"through"`
}

// MaxRunsDeleted bounds the runs one RunsDelete names, so the entry stays
// small and its apply short (each run takes its tasks, logs and objects).
const MaxRunsDeleted = 100

// RunsDelete deletes finished runs of one pipeline past its run retention
// (docs/runs.md, "Run retention"). The leader chooses the runs; the
// limits it applied travel too, so every replica re-checks each run
// against the same numbers and skips a run that no longer qualifies.
type RunsDelete struct {
	NamespaceID string  `json:"namespace_id"`
	PipelineID  string  `json:"pipeline_id"`
	RunIDs      []int64 `json:"run_ids"`
	// Keep is the count limit: runs older than the pipeline's Keep-th
	// newest qualify. 0: no limit by number.
	Keep int64 `json:"keep,omitempty"`
	// EndedBefore is the age limit as a cut-off (epoch ms, computed by
	// the leader from its clock): runs that ended before it qualify.
	// 0: no limit by age.
	EndedBefore int64 `json:"ended_before,omitempty"`
}

// RunsDeleted is RunsDelete's result.
type RunsDeleted struct {
	Deleted int `json:"deleted"`
	// Skipped counts named runs that were kept: gone already, not
	// finished, protected, or no longer past the limits.
	Skipped int `json:"skipped"`
}

// MaxTasksSlim bounds one TasksSlim command: each task is a read of its
// run and a rewrite, so a batch stays a short apply.
const MaxTasksSlim = 200

// TasksSlim names fat task executions to rewrite slim (CmdTasksSlim).
type TasksSlim struct {
	Tasks []store.TaskRecordRef `json:"tasks"`
}

// TasksSlimResult says how many of the named tasks were rewritten (the
// others were already slim, gone, or cannot be slim).
type TasksSlimResult struct {
	Slimmed int `json:"slimmed"`
}
