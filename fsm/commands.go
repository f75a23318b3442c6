package fsm

import (
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// Command bodies. Every field an applier needs is in the body: appliers
// never consult the clock, randomness, configuration or the environment.

// ClusterInit seeds a brand-new cluster: its id, built-in roles and the
// default namespace. Applying it twice is a no-op.
type ClusterInit struct {
	ClusterID string          `json:"cluster_id"`
	Roles     []*model.Role   `json:"roles"`
	Namespace model.Namespace `json:"namespace"`
}

// ServerUpsert records a member's addresses.
type ServerUpsert struct {
	Server model.Server `json:"server"`
}

// ServerRemove forgets a member.
type ServerRemove struct {
	ID string `json:"id"`
}

// NamespaceCreate creates a namespace.
type NamespaceCreate struct {
	Namespace model.Namespace `json:"namespace"`
}

// NamespaceUpdate changes the fields that are set.
type NamespaceUpdate struct {
	ID          string  `json:"id"`
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// NamespaceDelete deletes a namespace and everything in it.
type NamespaceDelete struct {
	ID string `json:"id"`
}

// ConfigRegister registers a new config version, creating the pipeline on
// first registration, and prunes versions beyond Retention.
type ConfigRegister struct {
	NamespaceID string              `json:"namespace_id"`
	Config      *sdk.PipelineConfig `json:"config"`
	Hash        string              `json:"hash"`
	// Retention is how many versions to keep (the live one always stays);
	// 0 keeps all. It travels in the command so every node prunes alike.
	Retention int `json:"retention"`
}

// ConfigDeploy makes a version live, or with Strategy "canary" starts a
// canary deployment of it (the live version stays live until the canary
// is promoted).
type ConfigDeploy struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	Version     int64  `json:"version"`
	// Strategy is "immediate" (also when empty, as in every entry
	// written before canaries) or "canary".
	Strategy string              `json:"strategy,omitempty"`
	Canary   *model.CanaryPolicy `json:"canary,omitempty"`
}

// DeploymentDecide records the decision of a canary deployment: promote
// makes the canary version live, rollback and abort keep the stable one.
// At (epoch ms) is the decider's time, so the applier stays
// deterministic; Actor is who decided ("" takes the command's actor).
type DeploymentDecide struct {
	NamespaceID  string `json:"namespace_id"`
	PipelineID   string `json:"pipeline_id"`
	DeploymentID int64  `json:"deployment_id"`
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason"`
	At           int64  `json:"at"`
	Actor        string `json:"actor,omitempty"`
}

// ConfigDelete deletes a version that is not live.
type ConfigDelete struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	Version     int64  `json:"version"`
}

// PipelineSetState enables or disables a pipeline.
type PipelineSetState struct {
	NamespaceID string              `json:"namespace_id"`
	PipelineID  string              `json:"pipeline_id"`
	State       model.PipelineState `json:"state"`
}

// PipelineDelete deletes a pipeline with its configs and deployments.
type PipelineDelete struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
}

// TokenCreate stores a token; TokenBootstrap does so only once per cluster.
type TokenCreate struct {
	Token model.StoredToken `json:"token"`
}

// TokenSetDisabled enables or disables a token.
type TokenSetDisabled struct {
	ID       string `json:"id"`
	Disabled bool   `json:"disabled"`
}

// TokenDelete deletes a token.
type TokenDelete struct {
	ID string `json:"id"`
}

// RoleCreate creates a role.
type RoleCreate struct {
	Role model.Role `json:"role"`
}

// RoleUpdate changes the fields that are set on a non-system role.
type RoleUpdate struct {
	ID          string              `json:"id"`
	Description *string             `json:"description,omitempty"`
	Permissions *[]model.Permission `json:"permissions,omitempty"`
}

// RoleDelete deletes a role (CmdRoleDeleteDetach; CmdRoleDelete only one
// no token uses).
type RoleDelete struct {
	ID string `json:"id"`
}

// SystemUpdate changes cluster-wide switches.
type SystemUpdate struct {
	IgnorePipelineRunEvents *bool `json:"ignore_pipeline_run_events,omitempty"`
}

// Prune deletes expired housekeeping records in bounded batches. The
// leader computes the cutoffs from its clock and configuration.
type Prune struct {
	EventsBefore      int64 `json:"events_before"`
	IdempotencyBefore int64 `json:"idempotency_before"`
	Max               int   `json:"max"`
	// TriggerKeysBefore prunes trigger keys recorded before it (epoch
	// ms): those listed in TriggerKeys (the leader picked them from its
	// state, at most MaxPrunedTriggerKeys), each deleted only if it is
	// still older than the cutoff. With no list, every key is walked (the
	// form before the list existed; the pruner sends the list).
	TriggerKeysBefore int64                 `json:"trigger_keys_before,omitempty"`
	TriggerKeys       []store.TriggerKeyRef `json:"trigger_keys,omitempty"`
}

// MaxPrunedTriggerKeys bounds Prune.TriggerKeys (a raft entry of tens of
// kilobytes at most).
const MaxPrunedTriggerKeys = 1000

// PruneResult says how much a Prune removed, so the leader knows whether
// to run another batch.
type PruneResult struct {
	Events      int `json:"events"`
	Idempotency int `json:"idempotency"`
	TriggerKeys int `json:"trigger_keys,omitempty"`
}

// EventDelete deletes one event.
type EventDelete struct {
	ID uint64 `json:"id"`
}
