package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Event records one state change. Ids count up from 1 across the cluster,
// so "events after id N" is a cheap cursor for streams.
type Event struct {
	ID      uint64       `json:"id"`
	Kind    string       `json:"kind"`
	Details EventDetails `json:"details"`
	Emitted int64        `json:"emitted"`
	// Actor is the token user (or "system") whose request caused the event.
	Actor string `json:"actor"`
	// NamespaceID and PipelineID are the scope the event belongs to, set by
	// the applier that emitted it; they decide who may read the event. An
	// event with no namespace is cluster-wide: tokens, roles, membership,
	// the system, global secrets, and every event recorded before these
	// fields existed.
	NamespaceID string `json:"namespace_id,omitempty"`
	PipelineID  string `json:"pipeline_id,omitempty"`
}

// EventDetails are an event's facts, typed: ids, versions, counts and exit
// codes are JSON numbers, flags booleans, everything else strings
// (docs/api.md, "Event details"). Producers put string, int, int64 or bool
// values; encoding/json writes map keys sorted, so every replica stores the
// same bytes. Decoding keeps numbers as json.Number (exact: a uint64 id
// never passes through float64), and events stored before details were
// typed hold every value as a string — read values through String, Int
// and Bool, which accept both spellings.
type EventDetails map[string]any

// UnmarshalJSON decodes numbers as json.Number rather than float64.
func (d *EventDetails) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return err
	}
	*d = m
	return nil
}

// String is the value of key as text ("" when absent): a number in its
// decimal form, a boolean as true/false.
func (d EventDetails) String(key string) string {
	switch v := d[key].(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// Int is the value of key as an integer; ok is false when the key is
// absent or not an integer (an old event's "12" counts).
func (d EventDetails) Int(key string) (n int64, ok bool) {
	switch v := d[key].(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		return int64(v), v <= 1<<63-1
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// Bool is the value of key as a boolean (an old event's "true" counts);
// false when absent.
func (d EventDetails) Bool(key string) bool {
	switch v := d[key].(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// ClusterWide reports whether the event belongs to no namespace.
func (e *Event) ClusterWide() bool { return e.NamespaceID == "" }

// Event kinds.
const (
	EventCreatedNamespace    = "created_namespace"
	EventUpdatedNamespace    = "updated_namespace"
	EventDeletedNamespace    = "deleted_namespace"
	EventRegisteredConfig    = "registered_pipeline_config"
	EventDeletedConfig       = "deleted_pipeline_config"
	EventPrunedConfig        = "pruned_pipeline_config"
	EventStartedDeployment   = "started_deployment"
	EventCompletedDeployment = "completed_deployment"
	// EventSwitchedLiveVersion: a deployment changed the live version
	// (an immediate deploy, a pipeline rollback, a canary promotion);
	// details from_version and to_version (docs/releases.md, "Events").
	EventSwitchedLiveVersion = "switched_live_version"
	// EventCountedCanaryRun: a finished run counted as evidence of a
	// canary deployment, with the running totals per arm.
	EventCountedCanaryRun   = "counted_canary_run"
	EventCreatedPipeline    = "created_pipeline"
	EventEnabledPipeline    = "enabled_pipeline"
	EventDisabledPipeline   = "disabled_pipeline"
	EventDeletedPipeline    = "deleted_pipeline"
	EventCreatedToken       = "created_token"
	EventEnabledToken       = "enabled_token"
	EventDisabledToken      = "disabled_token"
	EventDeletedToken       = "deleted_token"
	EventCreatedRole        = "created_role"
	EventUpdatedRole        = "updated_role"
	EventDeletedRole        = "deleted_role"
	EventUpdatedSystem      = "updated_system"
	EventInitializedCluster = "initialized_cluster"
	EventJoinedServer       = "joined_server"
	EventRemovedServer      = "removed_server"
	EventDeletedEvent       = "deleted_event"
	// EventAudit records an API request that changed or tried to change
	// something: who (token id), what (route, namespace, resource), the
	// answer (status, outcome) and the request id (docs/auth.md, "Audit").
	// Cluster-wide: only tokens that read cluster events see them.
	EventAudit = "audit"
	// Extensions are cluster-wide; subscriptions belong to their pipeline.
	EventInstalledExtension   = "installed_extension"
	EventUninstalledExtension = "uninstalled_extension"
	EventEnabledExtension     = "enabled_extension"
	EventDisabledExtension    = "disabled_extension"
	EventCreatedSubscription  = "created_subscription"
	EventEnabledSubscription  = "enabled_subscription"
	EventDisabledSubscription = "disabled_subscription"
	EventDeletedSubscription  = "deleted_subscription"
	// EventSkippedTick is one schedule tick a trigger extension decided
	// not to fire under the subscription's catch-up policy
	// (docs/triggers.md); its details carry the tick and the reason.
	EventSkippedTick = "skipped_trigger_tick"
)

// Run and task lifecycle events.
const (
	EventQueuedRun       = "queued_run"
	EventStartedRun      = "started_run"
	EventCompletedRun    = "completed_run"
	EventCancellingRun   = "started_run_cancellation"
	EventScheduledTask   = "scheduled_task_execution"
	EventStartedTask     = "started_task_execution"
	EventRetryingTask    = "retrying_task_execution"
	EventCompletedTask   = "completed_task_execution"
	EventCancellingTask  = "started_task_execution_cancellation"
	EventDeletedTaskLogs = "deleted_task_execution_logs"
	EventExpiredRunLogs  = "expired_run_logs"
	// EventDeletedRuns: run retention deleted a batch of a pipeline's
	// finished runs; details runs (how many), from_run and through_run
	// (the lowest and highest run id deleted).
	EventDeletedRuns = "deleted_runs"
)

// Secret and object store events. Details name the scope and key, never
// a value.
const (
	EventPutSecret         = "put_secret"
	EventDeletedSecret     = "deleted_secret"
	EventPutObject         = "put_object"
	EventDeletedObject     = "deleted_object"
	EventEvictedObject     = "evicted_pipeline_object"
	EventExpiredRunObjects = "expired_run_objects"
	// Encryption key rotation.
	EventKeyRotationStarted  = "started_key_rotation"
	EventKeyRotationFinished = "finished_key_rotation"
)
