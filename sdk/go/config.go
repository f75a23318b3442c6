package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// RequiredParentStatus is the state a parent task must end in for a child
// task to run. The JSON values are upstream's PascalCase strings.
type RequiredParentStatus string

// The conditions a dependency can require.
const (
	// RequiredParentStatusAny runs the child whatever the parent's outcome.
	RequiredParentStatusAny RequiredParentStatus = "Any"
	// RequiredParentStatusSuccess runs the child only if the parent succeeded.
	RequiredParentStatusSuccess RequiredParentStatus = "Success"
	// RequiredParentStatusFailure runs the child only if the parent failed.
	RequiredParentStatusFailure RequiredParentStatus = "Failure"
)

// Valid reports whether s is one of the known conditions.
func (s RequiredParentStatus) Valid() bool {
	switch s {
	case RequiredParentStatusAny, RequiredParentStatusSuccess, RequiredParentStatusFailure:
		return true
	}
	return false
}

// RegistryAuth holds credentials for pulling a task's image.
type RegistryAuth struct {
	User string `json:"user"`
	Pass string `json:"pass"`
}

// PipelineConfig is one version of a pipeline as registered with the server:
// the body of `POST /api/namespaces/{ns}/pipelines/{id}/configs` is
// {"config": <PipelineConfig>}.
type PipelineConfig struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Parallelism int64         `json:"parallelism"`
	Tasks       []*TaskConfig `json:"tasks"`
}

// TaskConfig is one container in a pipeline's DAG.
type TaskConfig struct {
	ID                    string                          `json:"id"`
	Description           string                          `json:"description,omitempty"`
	Image                 string                          `json:"image"`
	RegistryAuth          *RegistryAuth                   `json:"registry_auth,omitempty"`
	DependsOn             map[string]RequiredParentStatus `json:"depends_on"`
	Variables             map[string]string               `json:"variables"`
	Entrypoint            []string                        `json:"entrypoint,omitempty"`
	Command               []string                        `json:"command,omitempty"`
	InjectAPIToken        bool                            `json:"inject_api_token"`
	AlwaysPullNewestImage bool                            `json:"always_pull_newest_image"`
}

// Limits on a pipeline config, so one registration cannot exhaust a node.
const (
	MaxTasks          = 1000
	MaxNameLength     = 256
	MaxDescription    = 4096
	MaxImageLength    = 1024
	MaxVariables      = 512
	MaxParallelism    = 100000
	MaxDependencies   = 1000
	maxVariableKeyLen = 256
)

// DecodeConfig parses a pipeline config from JSON, rejecting unknown fields
// so a typo in a field name is an error instead of a silent default.
func DecodeConfig(data []byte) (*PipelineConfig, error) {
	var cfg PipelineConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("invalid pipeline config: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid pipeline config: trailing data after the JSON object")
	}
	return &cfg, nil
}
