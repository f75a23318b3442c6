package model

import (
	"encoding/json"
	"strings"

	sdk "github.com/goferhq/gofer/sdk/go"
)

// PipelineState says whether a pipeline accepts new runs.
type PipelineState string

// Pipeline states.
const (
	PipelineStateActive   PipelineState = "active"
	PipelineStateDisabled PipelineState = "disabled"
)

// Pipeline is a pipeline's metadata. Its tasks live in config versions.
type Pipeline struct {
	NamespaceID string        `json:"namespace_id"`
	PipelineID  string        `json:"pipeline_id"`
	State       PipelineState `json:"state"`
	Created     int64         `json:"created"`
	Modified    int64         `json:"modified"`
	// LiveVersion is the config version new runs use; 0 until one is deployed.
	LiveVersion int64 `json:"live_version"`
	// LatestVersion is the highest version ever registered. Versions are
	// never reused, even after the newest one is deleted.
	LatestVersion int64 `json:"latest_version"`
	// LastDeployment is the id of the newest deployment; 0 if none.
	LastDeployment int64 `json:"last_deployment"`
	// LastRunID is the id of the newest run; run ids count up from 1.
	LastRunID int64 `json:"last_run_id"`
	// LogsExpiredThrough is the newest run whose task logs were expired
	// by retention.
	LogsExpiredThrough int64 `json:"logs_expired_through,omitempty"`
	// ObjectsExpiredThrough is the newest run whose run objects were
	// expired.
	ObjectsExpiredThrough int64 `json:"objects_expired_through,omitempty"`
	// ActiveCanary is the id of the pipeline's undecided canary
	// deployment; 0 when none. New runs are split between the live
	// version and the canary's version while it is set.
	ActiveCanary int64 `json:"active_canary,omitempty"`
}

// ConfigState is where a config version is in its lifecycle.
type ConfigState string

// Config states.
const (
	ConfigStateUnreleased ConfigState = "unreleased"
	ConfigStateLive       ConfigState = "live"
	ConfigStateDeprecated ConfigState = "deprecated"
)

// PipelineConfig is one registered version of a pipeline.
type PipelineConfig struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	Version     int64  `json:"version"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Parallelism int64  `json:"parallelism"`
	// Timeout bounds each run of this version (a Go duration; "" none).
	Timeout string `json:"timeout,omitempty"`
	// RunRetention replaces the server's run retention for the pipeline
	// while this version is live; nil takes the server's (and is what
	// versions registered before the setting existed hold).
	RunRetention *sdk.RunRetention `json:"run_retention,omitempty"`
	Tasks        []*sdk.TaskConfig `json:"tasks"`
	State        ConfigState       `json:"state"`
	Registered   int64             `json:"registered"`
	Deprecated   int64             `json:"deprecated"`
	// Hash is the SHA-256 of the canonical config JSON, so identical
	// registrations can be recognised.
	Hash string `json:"hash"`
}

// DeploymentState and DeploymentStatus are lower-case like every other
// state and status. Upstream writes them PascalCase ("Running",
// "Complete") only because its enum lacks a serde rename; we differ on
// purpose (docs/api.md, "Differences from upstream"). Records stored
// before the change hold the PascalCase spelling: decoding lower-cases
// them, so a cluster upgraded in place answers one spelling.
type (
	DeploymentState  string
	DeploymentStatus string
)

// Deployment states and statuses.
const (
	DeploymentStateRunning  DeploymentState  = "running"
	DeploymentStateComplete DeploymentState  = "complete"
	DeploymentStatusSuccess DeploymentStatus = "successful"
	DeploymentStatusFailed  DeploymentStatus = "failed"
	// DeploymentStatusUnknown: a canary deployment not decided yet.
	DeploymentStatusUnknown DeploymentStatus = "unknown"
)

// Deployment strategies. Records without one are immediate.
const (
	DeploymentStrategyImmediate = "immediate"
	DeploymentStrategyCanary    = "canary"
)

// The PascalCase spellings older binaries stored. The FSM still writes
// them for log entries those binaries proposed (envelope versions 1 and
// 2), so replaying such an entry stores the bytes every node stored the
// first time (fsm/DESIGN.md, "Envelope and evolution"). Readers never see
// them: decoding lower-cases.
const (
	DeploymentStateCompleteLegacy DeploymentState  = "Complete"
	DeploymentStatusSuccessLegacy DeploymentStatus = "Successful"
)

// UnmarshalJSON accepts the old PascalCase spelling and keeps the
// lower-case one.
func (s *DeploymentState) UnmarshalJSON(b []byte) error {
	v, err := lowerString(b)
	*s = DeploymentState(v)
	return err
}

// UnmarshalJSON accepts the old PascalCase spelling and keeps the
// lower-case one.
func (s *DeploymentStatus) UnmarshalJSON(b []byte) error {
	v, err := lowerString(b)
	*s = DeploymentStatus(v)
	return err
}

func lowerString(b []byte) (string, error) {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return "", err
	}
	return strings.ToLower(v), nil
}

// Deployment records one change of a pipeline's live version.
type Deployment struct {
	NamespaceID  string           `json:"namespace_id"`
	PipelineID   string           `json:"pipeline_id"`
	DeploymentID int64            `json:"deployment_id"`
	StartVersion int64            `json:"start_version"`
	EndVersion   int64            `json:"end_version"`
	Started      int64            `json:"started"`
	Ended        int64            `json:"ended"`
	State        DeploymentState  `json:"state"`
	Status       DeploymentStatus `json:"status"`
	// Actor is who asked for the deployment (token user).
	Actor string `json:"actor"`
	// Strategy is "canary" for a canary deployment; empty (immediate) on
	// every other record, so records written before canaries existed
	// and immediate deployments encode as they always did.
	Strategy string `json:"strategy,omitempty"`
	// Canary is the canary's policy, evidence and decision; nil unless
	// Strategy is "canary".
	Canary *DeploymentCanary `json:"canary,omitempty"`
}

// CanaryPolicy is a canary deployment's policy as the API takes it and
// the record keeps it: durations are Go duration strings ("10m", "90s"),
// parsed by the FSM when it validates (agent/canary.Policy).
type CanaryPolicy struct {
	Percent            int     `json:"canary_percent"`
	Runs               int     `json:"canary_runs"`
	Duration           string  `json:"canary_duration"`
	MaxFailureIncrease float64 `json:"max_failure_increase"`
	// MaxP95Duration "" or "0s" turns the p95 bound off.
	MaxP95Duration string `json:"max_p95_duration,omitempty"`
}

// DeploymentCanary is the state of a canary deployment.
type DeploymentCanary struct {
	Policy        CanaryPolicy `json:"policy"`
	StableVersion int64        `json:"stable_version"`
	CanaryVersion int64        `json:"canary_version"`
	// Started is when the canary started (epoch ms, the start command's
	// time), the origin of the policy's duration.
	Started int64 `json:"started"`
	// Stable and Canary count the completed runs of this deployment on
	// each version (cancelled runs count nowhere).
	Stable CanaryArm `json:"stable"`
	Canary CanaryArm `json:"canary"`
	// Decision is set once, by the watcher or a human; nil while the
	// canary runs.
	Decision *CanaryDecision `json:"decision,omitempty"`
}

// CanaryArm is the evidence about one version's runs.
type CanaryArm struct {
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	// DurationsMillis has one entry per completed run, kept for the
	// canary only (its p95 bound), at most agent/canary.MaxRuns. Stored
	// records of the old shape hold them here; newer ones keep them under
	// per-run keys (store.PutCanaryDuration) and readers fill this field
	// from both (store.WithCanaryDurations), so the API answers one shape.
	DurationsMillis []int64 `json:"durations_ms,omitempty"`
}

// Canary decision outcomes: promote and rollback come from the watcher
// or a human, abort only from a human (it ends like a rollback).
const (
	CanaryPromote  = "promote"
	CanaryRollback = "rollback"
	CanaryAbort    = "abort"
)

// CanaryDecision is how a canary ended, why and by whom.
type CanaryDecision struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	At      int64  `json:"at"`
	Actor   string `json:"actor"`
}
