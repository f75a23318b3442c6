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
	Timeout    string            `json:"timeout,omitempty"`
	Tasks      []*sdk.TaskConfig `json:"tasks"`
	State      ConfigState       `json:"state"`
	Registered int64             `json:"registered"`
	Deprecated int64             `json:"deprecated"`
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
}
