package model

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	sdk "github.com/goferhq/gofer/sdk/go"
)

// A run stored before the API served lists (and every run in raft logs
// and snapshots) has its variables as an object: it must still decode, and
// re-encoding keeps the stored form.
func TestRunDecodesStoredObjectVariables(t *testing.T) {
	old := []byte(`{"namespace_id":"default","pipeline_id":"p","run_id":3,"state":"complete","variables":{"B":"2","A":"1"},"initiator":{"id":"t","user":"u"}}`)
	var r Run
	if err := json.Unmarshal(old, &r); err != nil {
		t.Fatalf("decode a stored run: %v", err)
	}
	if want := map[string]string{"A": "1", "B": "2"}; !reflect.DeepEqual(r.Variables, want) || r.RunID != 3 || r.Initiator.User != "u" {
		t.Fatalf("decoded %+v, want variables %v and the other fields", r, want)
	}
	if r.VariableSources != nil {
		t.Errorf("a stored run has no sources, got %v", r.VariableSources)
	}
	raw, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if _, ok := back["variables"].(map[string]any); !ok {
		t.Errorf("the stored form must keep variables as an object, got %s", raw)
	}
	// Empty and null stay as they were.
	for in, want := range map[string]map[string]string{`{"variables":{}}`: {}, `{"variables":null}`: nil, `{}`: nil} {
		var r Run
		if err := json.Unmarshal([]byte(in), &r); err != nil || !reflect.DeepEqual(r.Variables, want) {
			t.Errorf("%s: got %#v (%v), want %#v", in, r.Variables, err, want)
		}
	}
	var bad Run
	if err := json.Unmarshal([]byte(`{"variables":"x"}`), &bad); err == nil {
		t.Error("variables that are neither an object nor a list must not decode")
	}
}

// The API serves upstream's sorted list of {key, value, source}; the client
// decodes it back, keeping the sources.
func TestRunViewIsUpstreamsList(t *testing.T) {
	r := &Run{RunID: 1, Variables: map[string]string{"ZED": "z", "ALPHA": "a", "MID": "m"}}
	raw, err := json.Marshal(r.View())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RunID     int64      `json:"run_id"`
		Variables []Variable `json:"variables"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("the view's variables are not a list: %v\n%s", err, raw)
	}
	want := []Variable{{"ALPHA", "a", VariableSourceRunOptions}, {"MID", "m", VariableSourceRunOptions}, {"ZED", "z", VariableSourceRunOptions}}
	if got.RunID != 1 || !reflect.DeepEqual(got.Variables, want) {
		t.Errorf("view: got %+v, want run 1 with %+v", got, want)
	}
	var client Run
	if err := json.Unmarshal(raw, &client); err != nil {
		t.Fatalf("the client cannot decode the view: %v", err)
	}
	if !reflect.DeepEqual(client.Variables, r.Variables) || client.VariableSources["MID"] != VariableSourceRunOptions {
		t.Errorf("client decode: %+v sources %v", client.Variables, client.VariableSources)
	}
	if empty, _ := json.Marshal((&Run{}).View()); !json.Valid(empty) || !strings.Contains(string(empty), `"variables":[]`) {
		t.Errorf("a run without variables must serve an empty list, got %s", empty)
	}
}

// A scheduled task's stored environment mixes the system's, the config's
// and the run's variables; the view names each one's source and spells the
// state as upstream does.
func TestTaskExecutionViewSources(t *testing.T) {
	run := &Run{Created: 42, Variables: map[string]string{"FROM_RUN": "r", "SHARED": "run wins"}}
	te := &TaskExecution{
		State: TaskStateScheduled,
		Task:  &sdk.TaskConfig{ID: "t", Variables: map[string]string{"FROM_CONFIG": "c", "SHARED": "config", "SECRET": "pipeline_secret{{k}}"}},
		Variables: map[string]string{"GOFER_RUN_ID": "1", "FROM_CONFIG": "c", "FROM_RUN": "r", "SHARED": "run wins",
			"SECRET": "pipeline_secret{{k}}", "ODD": "?"},
	}
	v := te.View(run)
	want := []Variable{
		{"FROM_CONFIG", "c", VariableSourcePipelineConfig},
		{"FROM_RUN", "r", VariableSourceRunOptions},
		{"GOFER_RUN_ID", "1", VariableSourceSystem},
		{"ODD", "?", VariableSourceUnknown},
		{"SECRET", "pipeline_secret{{k}}", VariableSourcePipelineConfig},
		{"SHARED", "run wins", VariableSourceRunOptions},
	}
	if !reflect.DeepEqual(v.Variables, want) {
		t.Errorf("variables:\n got %+v\nwant %+v", v.Variables, want)
	}
	if v.State != TaskStateProcessing || v.Created != 42 {
		t.Errorf("state %q created %d, want processing and the run's created time", v.State, v.Created)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back TaskExecution
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.State != TaskStateScheduled || back.VariableSources["GOFER_RUN_ID"] != VariableSourceSystem || back.Created != 42 ||
		!reflect.DeepEqual(back.Variables, te.Variables) {
		t.Errorf("client decode of the view: %+v", back)
	}
	// And a stored task (object form) still decodes.
	var stored TaskExecution
	if err := json.Unmarshal([]byte(`{"task_id":"t","state":"waiting","variables":{"A":"1"}}`), &stored); err != nil ||
		stored.Variables["A"] != "1" || stored.State != TaskStateWaiting {
		t.Errorf("stored task: %+v %v", stored, err)
	}
}

// A config version is stored with its tasks as a list (the SDKs' JSON)
// and served with upstream's map; both decode, in order.
func TestPipelineConfigViewIsUpstreamsMap(t *testing.T) {
	cfg := &PipelineConfig{PipelineID: "p", Version: 2, Tasks: []*sdk.TaskConfig{
		{ID: "zeta", Image: "busybox", Variables: map[string]string{"B": "2", "A": "1"}, DependsOn: map[string]sdk.RequiredParentStatus{}},
		{ID: "alpha", Image: "busybox", Variables: map[string]string{}, DependsOn: map[string]sdk.RequiredParentStatus{"zeta": sdk.RequiredParentStatusSuccess}},
	}}
	stored, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var fromStore PipelineConfig
	if err := json.Unmarshal(stored, &fromStore); err != nil || !reflect.DeepEqual(fromStore.Tasks, cfg.Tasks) {
		t.Fatalf("the stored form must round-trip: %v\n%s", err, stored)
	}
	served, err := json.Marshal(cfg.View())
	if err != nil {
		t.Fatal(err)
	}
	var wire struct {
		Tasks map[string]struct {
			ID          string            `json:"id"`
			Description *string           `json:"description"`
			DependsOn   map[string]string `json:"depends_on"`
			Variables   []Variable        `json:"variables"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(served, &wire); err != nil {
		t.Fatalf("served tasks are not upstream's map: %v\n%s", err, served)
	}
	zeta, alpha := wire.Tasks["zeta"], wire.Tasks["alpha"]
	if zeta.ID != "zeta" || zeta.Description == nil || alpha.DependsOn["zeta"] != "success" ||
		!reflect.DeepEqual(zeta.Variables, []Variable{{"A", "1", VariableSourcePipelineConfig}, {"B", "2", VariableSourcePipelineConfig}}) {
		t.Errorf("served tasks: %+v", wire.Tasks)
	}
	if i, j := strings.Index(string(served), `"zeta":`), strings.Index(string(served), `"alpha":`); i < 0 || j < i {
		t.Errorf("tasks must keep the config's order: %s", served)
	}
	var client PipelineConfig
	if err := json.Unmarshal(served, &client); err != nil {
		t.Fatalf("the client cannot decode the served config: %v", err)
	}
	if !reflect.DeepEqual(client.Tasks, cfg.Tasks) {
		t.Errorf("client decode:\n got %+v %+v\nwant %+v %+v", client.Tasks[0], client.Tasks[1], cfg.Tasks[0], cfg.Tasks[1])
	}
}
