package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
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
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Parallelism is how many runs of this pipeline may run at once; 0
	// means the server's per-pipeline default.
	Parallelism int64 `json:"parallelism"`
	// Timeout bounds a whole run (a Go duration such as "30m"); a run
	// still going after it is cancelled. Empty means no limit.
	Timeout string `json:"timeout,omitempty"`
	// RunRetention, when set, replaces the server's run retention
	// (api.run_retention_count and api.run_retention_age) for this
	// pipeline: the leader deletes its finished runs past it, with their
	// task logs and run objects. An empty RunRetention ({}) keeps every
	// run whatever the server sets; nil (absent) takes the server's.
	RunRetention *RunRetention `json:"run_retention,omitempty"`
	Tasks        []*TaskConfig `json:"tasks"`
}

// RunRetention says which finished runs of a pipeline are kept
// (docs/runs.md, "Run retention"). A run is deleted when either limit
// passes it; a zero limit is off. Runs still going, the pipeline's newest
// run and the runs an undecided canary deployment counts are always kept.
type RunRetention struct {
	// Count keeps the newest Count runs; older finished runs are
	// deleted. 0: no limit by number.
	Count int64 `json:"count,omitempty"`
	// Age deletes finished runs that ended longer ago than this (a Go
	// duration such as "720h"). Empty: no limit by age.
	Age string `json:"age,omitempty"`
}

// AgeDuration parses Age (0 when empty). Validate has checked it.
func (r *RunRetention) AgeDuration() time.Duration { return parseDurationOrZero(r.Age) }

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
	// Timeout bounds one attempt of the task (a Go duration such as
	// "90s"); the container is stopped when it runs longer. Empty means
	// no limit.
	Timeout string `json:"timeout,omitempty"`
	// Retries is how many more attempts a failed attempt gets (0–10).
	Retries int `json:"retries,omitempty"`
	// RetryBackoff is the wait before the first retry (a Go duration);
	// each further retry waits twice as long.
	RetryBackoff string `json:"retry_backoff,omitempty"`
	// Resources is what the task reserves on the scheduler; nil, or a
	// zero field, takes the scheduler's default.
	Resources *Resources `json:"resources,omitempty"`
}

// Resources is the CPU and memory of one task. Zero means the
// scheduler's default (docs/pipelines.md says what each one does).
type Resources struct {
	// CPU in MHz (Nomad's unit; the Docker scheduler turns it into a
	// share of a CPU). 0: the default.
	CPU int `json:"cpu,omitempty"`
	// Memory in MB, a hard limit: a task that uses more is killed. 0: the
	// default.
	Memory int `json:"memory,omitempty"`
}

// Limits on timeouts and retries.
const (
	MaxRetries      = 10
	MaxTimeout      = 7 * 24 * time.Hour
	MaxRetryBackoff = time.Hour
)

// Limits on resources.
const (
	MaxCPU    = 256000  // MHz: about a hundred cores
	MaxMemory = 1 << 20 // MB: 1 TiB
)

// TimeoutDuration parses Timeout (0 when empty). Validate has checked it.
func (t *TaskConfig) TimeoutDuration() time.Duration { return parseDurationOrZero(t.Timeout) }

// RetryBackoffDuration parses RetryBackoff (0 when empty).
func (t *TaskConfig) RetryBackoffDuration() time.Duration { return parseDurationOrZero(t.RetryBackoff) }

// TimeoutDuration parses the run timeout (0 when empty).
func (p *PipelineConfig) TimeoutDuration() time.Duration { return parseDurationOrZero(p.Timeout) }

func parseDurationOrZero(s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return d
}

// Limits on a pipeline config, so one registration cannot exhaust a node.
const (
	MaxTasks        = 1000
	MaxNameLength   = 256
	MaxDescription  = 4096
	MaxImageLength  = 1024
	MaxVariables    = 512
	MaxParallelism  = 100000
	MaxDependencies = 1000
	// MaxRunRetentionAge bounds run_retention.age (about ten years).
	MaxRunRetentionAge = 87600 * time.Hour
	// MaxRunRetentionCount bounds run_retention.count: the leader and
	// every replica find the count-th newest run by walking that many
	// keys, so an absurd count would only cost.
	MaxRunRetentionCount = 1_000_000
	maxVariableKeyLen    = 256
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

// Normalize rewrites a config into its canonical form, so two configs that
// mean the same encode (and hash) the same: durations as Go prints them
// ("90s" becomes "1m30s"; a zero run_retention.age is dropped, as the
// builders drop it) and empty maps instead of missing ones. It
// leaves anything Validate would reject alone, for Validate to report.
func (p *PipelineConfig) Normalize() {
	p.Timeout = canonicalDuration(p.Timeout)
	if r := p.RunRetention; r != nil {
		// "720h" and "720h0m0s" are one setting; a zero age is no limit,
		// written as the builders write it: absent.
		if d, err := time.ParseDuration(r.Age); err == nil && d == 0 {
			r.Age = ""
		}
		r.Age = canonicalDuration(r.Age)
	}
	for _, t := range p.Tasks {
		if t == nil {
			continue
		}
		t.Timeout = canonicalDuration(t.Timeout)
		t.RetryBackoff = canonicalDuration(t.RetryBackoff)
		if t.Resources != nil && *t.Resources == (Resources{}) {
			t.Resources = nil
		}
		if t.DependsOn == nil {
			t.DependsOn = map[string]RequiredParentStatus{}
		}
		if t.Variables == nil {
			t.Variables = map[string]string{}
		}
	}
}

func canonicalDuration(s string) string {
	if s == "" {
		return s
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return s
	}
	return d.String()
}
