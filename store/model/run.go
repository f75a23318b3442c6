package model

import sdk "github.com/goferhq/gofer/sdk/go"

// RunState is where a run is in its life.
type RunState string

// Run states.
const (
	// RunStatePending: queued, waiting for a parallelism slot.
	RunStatePending  RunState = "pending"
	RunStateRunning  RunState = "running"
	RunStateComplete RunState = "complete"
)

// RunStatus is how a complete run ended.
type RunStatus string

// Run statuses.
const (
	RunStatusUnknown    RunStatus = "unknown"
	RunStatusSuccessful RunStatus = "successful"
	RunStatusFailed     RunStatus = "failed"
	RunStatusCancelled  RunStatus = "cancelled"
)

// Reasons a run or task ended the way it did (upstream's values, plus
// timeout and lost).
const (
	ReasonAbnormalExit       = "abnormal_exit"
	ReasonSchedulerError     = "scheduler_error"
	ReasonFailedPrecondition = "failed_precondition"
	ReasonUserCancelled      = "user_cancelled"
	ReasonAdminCancelled     = "admin_cancelled"
	ReasonCancelled          = "cancelled"
	ReasonTimeout            = "timeout"
	// ReasonLost: the container vanished while it ran (positive evidence:
	// the scheduler answered and has no such container).
	ReasonLost = "lost"
)

// StatusReason explains a status.
type StatusReason struct {
	Reason      string `json:"reason"`
	Description string `json:"description"`
}

// Initiator is who started a run.
type Initiator struct {
	// ID is the token id ("" in dev mode).
	ID   string `json:"id"`
	User string `json:"user"`
}

// Cancellation records a request to cancel a run or a task.
type Cancellation struct {
	Reason    string `json:"reason"`
	By        string `json:"by"`
	Requested int64  `json:"requested"`
	// GraceMillis is how long a container gets between SIGTERM and
	// SIGKILL (0: the server default).
	GraceMillis int64 `json:"grace_ms,omitempty"`
}

// Run is one execution of a pipeline's live config version.
type Run struct {
	NamespaceID   string        `json:"namespace_id"`
	PipelineID    string        `json:"pipeline_id"`
	RunID         int64         `json:"run_id"`
	ConfigVersion int64         `json:"pipeline_config_version"`
	State         RunState      `json:"state"`
	Status        RunStatus     `json:"status"`
	StatusReason  *StatusReason `json:"status_reason,omitempty"`
	Created       int64         `json:"created"`
	Started       int64         `json:"started"`
	Ended         int64         `json:"ended"`
	// Variables is stored and replicated as an object; the API serves
	// upstream's list of {key, value, source} (View).
	Variables map[string]string `json:"variables"`
	// VariableSources holds the sources of a run decoded from an API
	// answer (the client); never stored.
	VariableSources map[string]VariableSource `json:"-"`
	Initiator       Initiator                 `json:"initiator"`
	// IdempotencyKey is the start request's key: the same key never
	// starts a second run of this pipeline.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Parallelism and TimeoutMillis come from the config version.
	Parallelism   int64         `json:"parallelism"`
	TimeoutMillis int64         `json:"timeout_ms,omitempty"`
	Cancel        *Cancellation `json:"cancel,omitempty"`
	// RetryOf is the run this one repeats (gofer run retry).
	RetryOf int64 `json:"retry_of,omitempty"`
	// Seq orders runs across the cluster for queueing (first come, first
	// started).
	Seq uint64 `json:"seq"`
	// UID is the raft index of the command that created the run: unlike
	// RunID it is never reused (a deleted and recreated pipeline starts
	// again at run 1; a restored snapshot rolls run ids back), so it is
	// what makes container names and executor work unique.
	UID         uint64 `json:"uid"`
	LogsExpired bool   `json:"logs_expired"`
	// StoreObjectsExpired: the run's objects were deleted by the object
	// store's run expiry (object_store.run_object_expiry).
	StoreObjectsExpired bool `json:"store_objects_expired"`
	// TokenID is the run's own API token, given to tasks that set
	// inject_api_token; it is deleted when the run ends.
	TokenID string `json:"token_id,omitempty"`
	// DeploymentID and Canary say which canary deployment split this run
	// and whether it went to the canary version (ConfigVersion is that
	// version then); both empty for runs made with no canary active.
	DeploymentID int64 `json:"deployment_id,omitempty"`
	Canary       bool  `json:"canary,omitempty"`
}

// TaskState is where a task execution is in its life.
type TaskState string

// Task states.
const (
	// TaskStateWaiting: waiting for its parents, or for a retry.
	TaskStateWaiting TaskState = "waiting"
	// TaskStateScheduled: the intent to start attempt N is committed; the
	// container may or may not exist yet.
	// The API spells it "processing", upstream's name for a task
	// between its parents finishing and its container running
	// (TaskExecution.View); stored and replicated as "scheduled".
	TaskStateScheduled TaskState = "scheduled"
	// TaskStateProcessing is the API's spelling of TaskStateScheduled;
	// never stored.
	TaskStateProcessing TaskState = "processing"
	TaskStateRunning    TaskState = "running"
	TaskStateComplete   TaskState = "complete"
)

// TaskStatus is how a complete task ended.
type TaskStatus string

// Task statuses.
const (
	TaskStatusUnknown    TaskStatus = "unknown"
	TaskStatusSuccessful TaskStatus = "successful"
	TaskStatusFailed     TaskStatus = "failed"
	TaskStatusCancelled  TaskStatus = "cancelled"
	TaskStatusSkipped    TaskStatus = "skipped"
)

// Attempt is one finished try of a task.
type Attempt struct {
	Attempt      int           `json:"attempt"`
	Container    string        `json:"container"`
	Started      int64         `json:"started"`
	Ended        int64         `json:"ended"`
	ExitCode     *int          `json:"exit_code,omitempty"`
	Status       TaskStatus    `json:"status"`
	StatusReason *StatusReason `json:"status_reason,omitempty"`
}

// TaskExecution is one task of one run.
type TaskExecution struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	RunID       int64  `json:"run_id"`
	// RunUID is the run's UID.
	RunUID uint64 `json:"run_uid"`
	TaskID string `json:"task_id"`
	// Task is the task's config. Records written before envelope version
	// 6 embed it; slim ones name ConfigVersion instead and the store
	// fills it in when it reads them (store/taskconfig.go).
	Task         *sdk.TaskConfig `json:"task,omitempty"`
	State        TaskState       `json:"state"`
	Status       TaskStatus      `json:"status"`
	StatusReason *StatusReason   `json:"status_reason,omitempty"`
	ExitCode     *int            `json:"exit_code,omitempty"`
	// Attempt is the number of attempts started (the current one while
	// scheduled or running).
	Attempt   int    `json:"attempt"`
	Container string `json:"container,omitempty"`
	Scheduled int64  `json:"scheduled"`
	Started   int64  `json:"started"`
	Ended     int64  `json:"ended"`
	// NotBefore delays the next attempt (retry backoff), epoch ms.
	NotBefore int64 `json:"not_before,omitempty"`
	// Variables is the environment the container got, before any secret
	// was interpolated (stored as an object; the API serves a list, View).
	Variables map[string]string `json:"variables"`
	// VariableSources holds the sources decoded from an API answer (the
	// client); never stored.
	VariableSources map[string]VariableSource `json:"-"`
	// Created is when the task execution was created, with its run (0 in
	// records written before the field existed: View uses the run's).
	Created  int64         `json:"created,omitempty"`
	Attempts []Attempt     `json:"attempts,omitempty"`
	Cancel   *Cancellation `json:"cancel,omitempty"`

	// LogBytes is how much of the task's output is stored; LogOffset is
	// how many bytes of the current attempt's container output have been
	// consumed (stored or dropped past the cap), so a new leader resumes
	// reading the container's log where the old one stopped.
	LogBytes  int64 `json:"log_bytes"`
	LogOffset int64 `json:"log_offset"`
	// StreamOffsets is, for a backend that keeps stdout and stderr apart
	// (Nomad), how many bytes of each stream the LogOffset bytes consumed:
	// the combined log holds them in the order the collector received
	// them, which no later read can repeat, so a new leader resumes each
	// stream at its own position. Nil for a single ordered stream (Docker)
	// and in records written before envelope version 5 (fsm/DESIGN.md).
	StreamOffsets *StreamOffsets `json:"stream_offsets,omitempty"`
	LogChunks     int64          `json:"log_chunks"`
	LogsTruncated bool           `json:"logs_truncated"`
	LogsExpired   bool           `json:"logs_expired"`
	LogsRemoved   bool           `json:"logs_removed"`
	// LogsOpen is set when the task completed while its output was still
	// being collected (the executor stopped waiting for the drain): more
	// of it may be appended. A last append (LogAppend.Last, from the
	// worker or the leader's log closer) clears it; after that nothing
	// more is stored. A complete task without it has its whole log, which is
	// what a follow stream waits for before it says the log ended.
	LogsOpen bool `json:"logs_open,omitempty"`

	// ConfigVersion is the run's pipeline config version in a slim record
	// (stored as "pipeline_config_version", which the store writes and
	// UnmarshalJSON reads); 0 for a record that embeds its task. Never in
	// an API answer, which keeps upstream's shape.
	ConfigVersion int64 `json:"-"`
}

// StreamOffsets are positions in a container's stdout and stderr.
type StreamOffsets struct {
	Stdout int64 `json:"stdout"`
	Stderr int64 `json:"stderr"`
}

// Terminal reports whether the task execution is complete.
func (t *TaskExecution) Terminal() bool { return t.State == TaskStateComplete }
