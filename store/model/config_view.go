package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	sdk "github.com/goferhq/gofer/sdk/go"
)

// TaskView is a config's task as upstream serves it (in a config version
// and in a task execution): depends_on in snake case (any, success,
// failure), variables as a list whose source is pipeline_config, and a
// description even when empty. The stored form stays the SDKs' JSON.
type TaskView struct {
	*sdk.TaskConfig
	Description string            `json:"description"`
	DependsOn   map[string]string `json:"depends_on"`
	Variables   []Variable        `json:"variables"`
}

// ViewTask is t as upstream serves it.
func ViewTask(t *sdk.TaskConfig) TaskView {
	deps := make(map[string]string, len(t.DependsOn))
	for k, v := range t.DependsOn {
		deps[k] = strings.ToLower(string(v))
	}
	return TaskView{TaskConfig: t, Description: t.Description, DependsOn: deps,
		Variables: VariableList(t.Variables, func(string, string) VariableSource { return VariableSourcePipelineConfig })}
}

// taskMap marshals a config's tasks as upstream does, an object from task
// id to task, with the keys in the config's order (which the client reads
// back, so a diff of two versions keeps the user's order).
type taskMap []*sdk.TaskConfig

// MarshalJSON writes {"id": task, …} in order.
func (m taskMap) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, t := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(t.ID)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(ViewTask(t))
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// PipelineConfigView is a config version as the API serves it: tasks as
// upstream's map from id to task.
type PipelineConfigView struct {
	*PipelineConfig
	Tasks taskMap `json:"tasks"`
}

// View is the config version as the API serves it.
func (c *PipelineConfig) View() PipelineConfigView {
	return PipelineConfigView{PipelineConfig: c, Tasks: taskMap(c.Tasks)}
}

// ConfigViews is View of each version.
func ConfigViews(list []*PipelineConfig) []PipelineConfigView {
	out := make([]PipelineConfigView, len(list))
	for i, c := range list {
		out[i] = c.View()
	}
	return out
}

// UnmarshalJSON decodes a config version stored with its tasks as a list
// and one served by the API with upstream's map (what the client reads;
// the tasks keep the order of the map's keys).
func (c *PipelineConfig) UnmarshalJSON(b []byte) error {
	type plain PipelineConfig // without this method
	aux := struct {
		*plain
		Tasks json.RawMessage `json:"tasks"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	tasks, err := decodeTasks(aux.Tasks)
	if err != nil {
		return err
	}
	c.Tasks = tasks
	return nil
}

// decodeTasks reads a list of tasks (the stored form) or an object from
// id to task (the API's), in order.
func decodeTasks(raw json.RawMessage) ([]*sdk.TaskConfig, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '[' {
		var list []*sdk.TaskConfig
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("tasks: %w", err)
		}
		return list, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("tasks: want a list or an object, got %.20s", raw)
	}
	var out []*sdk.TaskConfig
	for dec.More() {
		if _, err := dec.Token(); err != nil { // the task id; the task repeats it
			return nil, fmt.Errorf("tasks: %w", err)
		}
		var one json.RawMessage
		if err := dec.Decode(&one); err != nil {
			return nil, fmt.Errorf("tasks: %w", err)
		}
		t, err := decodeTask(one)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// decodeTask reads a task in the SDKs' JSON or in upstream's served form
// (depends_on in snake case, variables as a list).
func decodeTask(raw json.RawMessage) (*sdk.TaskConfig, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	t := &sdk.TaskConfig{}
	aux := struct {
		*sdk.TaskConfig
		DependsOn map[string]string `json:"depends_on"`
		Variables json.RawMessage   `json:"variables"`
	}{TaskConfig: t}
	if err := json.Unmarshal(raw, &aux); err != nil {
		return nil, fmt.Errorf("task: %w", err)
	}
	vars, _, err := decodeVariables(aux.Variables)
	if err != nil {
		return nil, fmt.Errorf("task %q: %w", t.ID, err)
	}
	t.Variables = vars
	if aux.DependsOn != nil {
		t.DependsOn = make(map[string]sdk.RequiredParentStatus, len(aux.DependsOn))
		for parent, s := range aux.DependsOn {
			status := sdk.RequiredParentStatus(s)
			for _, known := range []sdk.RequiredParentStatus{sdk.RequiredParentStatusAny, sdk.RequiredParentStatusSuccess, sdk.RequiredParentStatusFailure} {
				if strings.EqualFold(s, string(known)) {
					status = known
				}
			}
			t.DependsOn[parent] = status
		}
	}
	return t, nil
}
