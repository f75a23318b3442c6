package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// VariableSource says where a variable of a run or a task execution came
// from. The values are upstream's.
type VariableSource string

// Variable sources.
const (
	VariableSourceUnknown        VariableSource = "unknown"
	VariableSourcePipelineConfig VariableSource = "pipeline_config"
	VariableSourceSystem         VariableSource = "system"
	VariableSourceRunOptions     VariableSource = "run_options"
	// VariableSourceExtension: set by an extension that started the run
	// (upstream's value; no extension sets variables here yet).
	VariableSourceExtension VariableSource = "extension"
)

// Variable is one variable as the API serves it: upstream answers with a
// list of these, not an object.
type Variable struct {
	Key    string         `json:"key"`
	Value  string         `json:"value"`
	Source VariableSource `json:"source"`
}

// VariableList turns vars into upstream's list, sorted by key so that the
// order is stable; source names the source of each key.
func VariableList(vars map[string]string, source func(key, value string) VariableSource) []Variable {
	out := make([]Variable, 0, len(vars))
	for k, v := range vars {
		out = append(out, Variable{Key: k, Value: v, Source: source(k, v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// decodeVariables reads a "variables" value in either form: the object
// {K: V} that runs and task executions are stored (and replicated) as, or
// the list of {key, value, source} the API serves. It returns the sources
// only for the list form. Absent or null gives a nil map, as before.
func decodeVariables(raw json.RawMessage) (map[string]string, map[string]VariableSource, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil, nil
	}
	if raw[0] != '[' {
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, nil, fmt.Errorf("variables: %w", err)
		}
		return m, nil, nil
	}
	var list []Variable
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, nil, fmt.Errorf("variables: %w", err)
	}
	m := make(map[string]string, len(list))
	sources := make(map[string]VariableSource, len(list))
	for _, v := range list {
		m[v.Key], sources[v.Key] = v.Value, v.Source
	}
	return m, sources, nil
}

// UnmarshalJSON decodes a run stored with its variables as an object and
// one served by the API with upstream's list (what the client reads).
func (r *Run) UnmarshalJSON(b []byte) error {
	type plain Run // without this method
	aux := struct {
		*plain
		Variables json.RawMessage `json:"variables"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	vars, sources, err := decodeVariables(aux.Variables)
	if err != nil {
		return err
	}
	r.Variables, r.VariableSources = vars, sources
	return nil
}

// UnmarshalJSON decodes a task execution in its stored form and in the
// API's (variables as upstream's list, its task as upstream serves one).
func (t *TaskExecution) UnmarshalJSON(b []byte) error {
	type plain TaskExecution // without this method
	aux := struct {
		*plain
		Variables     json.RawMessage `json:"variables"`
		Task          json.RawMessage `json:"task"`
		ConfigVersion int64           `json:"pipeline_config_version"`
	}{plain: (*plain)(t)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	task, err := decodeTask(aux.Task)
	if err != nil {
		return err
	}
	t.Task, t.ConfigVersion = task, aux.ConfigVersion
	vars, sources, err := decodeVariables(aux.Variables)
	if err != nil {
		return err
	}
	t.Variables, t.VariableSources = vars, sources
	if t.State == TaskStateProcessing {
		t.State = TaskStateScheduled
	}
	return nil
}

// RunView is a run as the API serves it: its variables as upstream's list
// of {key, value, source}. The stored and replicated form keeps the
// object, so existing raft logs and snapshots decode unchanged.
type RunView struct {
	*Run
	// Variables shadows Run.Variables in JSON (the shallower field wins).
	Variables []Variable `json:"variables"`
}

// View is the run as the API serves it. A run's variables are the start
// request's (or the retried run's): run_options, unless the run was
// decoded from an answer that named other sources.
func (r *Run) View() RunView {
	return RunView{Run: r, Variables: VariableList(r.Variables, func(k, _ string) VariableSource {
		if s, ok := r.VariableSources[k]; ok {
			return s
		}
		return VariableSourceRunOptions
	})}
}

// RunViews is View of each run.
func RunViews(runs []*Run) []RunView {
	out := make([]RunView, len(runs))
	for i, r := range runs {
		out[i] = r.View()
	}
	return out
}

// TaskExecutionView is a task execution as the API serves it: variables
// as upstream's list, and upstream's created time.
type TaskExecutionView struct {
	*TaskExecution
	// State is upstream's spelling: processing for scheduled.
	State TaskState `json:"state"`
	// Task is the task's config as upstream serves it.
	Task      *TaskView  `json:"task"`
	Variables []Variable `json:"variables"`
	// Created is when the task execution was created: with its run.
	Created int64 `json:"created"`
}

// View is the task execution as the API serves it. run (nil if unknown)
// tells run variables from the config's: the environment a task stores
// when it is scheduled is the system's variables, overlaid with the
// task's config variables, overlaid with the run's, before any secret is
// interpolated.
func (t *TaskExecution) View(run *Run) TaskExecutionView {
	created := t.Created
	if created == 0 && run != nil {
		created = run.Created
	}
	state := t.State
	if state == TaskStateScheduled {
		state = TaskStateProcessing
	}
	var task *TaskView
	if t.Task != nil {
		v := ViewTask(t.Task)
		task = &v
	}
	return TaskExecutionView{TaskExecution: t, State: state, Task: task, Created: created, Variables: VariableList(t.Variables, func(k, v string) VariableSource {
		if s, ok := t.VariableSources[k]; ok {
			return s
		}
		if run != nil {
			if rv, ok := run.Variables[k]; ok && rv == v {
				return VariableSourceRunOptions
			}
		}
		if t.Task != nil {
			if cv, ok := t.Task.Variables[k]; ok && cv == v {
				return VariableSourcePipelineConfig
			}
		}
		if strings.HasPrefix(k, "GOFER_") {
			return VariableSourceSystem
		}
		return VariableSourceUnknown
	})}
}
