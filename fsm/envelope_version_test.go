package fsm

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestEnvelopeVersionDecidesStoredFormat: the bytes an entry leaves in
// state follow the entry's envelope version, not the binary applying it.
// Entries of versions 1 and 2 (written by binaries that stored event
// details as strings and deployment states PascalCase) store exactly what
// those binaries stored, so a new follower behind an old leader, or a new
// node replaying an old log after a crash, agrees byte for byte with the
// nodes that applied them first; version 3 entries store typed details
// and lower-case states, and version 4 entries add the release step
// events (switched_live_version, the deployment's strategy and live
// version).
func TestEnvelopeVersionDecidesStoredFormat(t *testing.T) {
	oldDeployment := `{"namespace_id":"default","pipeline_id":"dag","deployment_id":1,"start_version":0,"end_version":1,"started":1003,"ended":1003,"state":"Complete","status":"Successful","actor":"test"}`
	newDeployment := strings.NewReplacer(`"Complete"`, `"complete"`, `"Successful"`, `"successful"`).Replace(oldDeployment)
	cases := []struct {
		version byte
		want    []string
	}{
		{envelopeVersion, []string{
			oldDeployment,
			`"kind":"started_deployment","details":{"deployment_id":"1","end_version":"1","namespace_id":"default","pipeline_id":"dag","start_version":"0"}`,
			`"kind":"queued_run","details":{"config_version":"1","namespace_id":"default","pipeline_id":"dag","run_id":"1"}`,
			`"kind":"scheduled_task_execution","details":{"attempt":"1","container":"c1","namespace_id":"default","pipeline_id":"dag","run_id":"1","task_id":"aaa"}`,
			`"kind":"completed_task_execution","details":{"attempt":"1","exit_code":"","namespace_id":"default","pipeline_id":"dag","reason":"","run_id":"1","status":"cancelled","task_id":"aaa"}`,
			`"kind":"updated_system","details":{"ignore_pipeline_run_events":"true"}`,
		}},
		{envelopeVersionHash, nil}, // same as version 1: filled in below
		{envelopeVersionTyped, []string{
			newDeployment,
			`"kind":"started_deployment","details":{"deployment_id":1,"end_version":1,"namespace_id":"default","pipeline_id":"dag","start_version":0}`,
			`"kind":"queued_run","details":{"config_version":1,"namespace_id":"default","pipeline_id":"dag","run_id":1}`,
			`"kind":"scheduled_task_execution","details":{"attempt":1,"container":"c1","namespace_id":"default","pipeline_id":"dag","run_id":1,"task_id":"aaa"}`,
			`"kind":"completed_task_execution","details":{"attempt":1,"namespace_id":"default","pipeline_id":"dag","reason":"","run_id":1,"status":"cancelled","task_id":"aaa"}`,
			`"kind":"updated_system","details":{"ignore_pipeline_run_events":true}`,
		}},
		{envelopeVersionSteps, []string{
			newDeployment,
			`"kind":"started_deployment","details":{"deployment_id":1,"end_version":1,"namespace_id":"default","pipeline_id":"dag","start_version":0,"strategy":"immediate"}`,
			`"kind":"switched_live_version","details":{"deployment_id":1,"from_version":0,"namespace_id":"default","pipeline_id":"dag","strategy":"immediate","to_version":1}`,
			`"kind":"completed_deployment","details":{"deployment_id":1,"end_version":1,"live_version":1,"namespace_id":"default","pipeline_id":"dag","start_version":0,"strategy":"immediate"}`,
			`"kind":"queued_run","details":{"config_version":1,"namespace_id":"default","pipeline_id":"dag","run_id":1}`,
		}},
	}
	cases[1].want = cases[0].want
	for _, c := range cases {
		state := applyAtVersion(t, c.version)
		for _, w := range c.want {
			if !strings.Contains(state, w) {
				t.Errorf("envelope version %d: state lacks %s\nstate:\n%s", c.version, w, state)
			}
		}
		// The release step events and fields came with version 4.
		if c.version < envelopeVersionSteps && (strings.Contains(state, model.EventSwitchedLiveVersion) || strings.Contains(state, `"strategy":"immediate"`)) {
			t.Errorf("envelope version %d: state holds version 4 release events:\n%s", c.version, state)
		}
	}
}

// applyAtVersion applies a pipeline deploy, a run and a task's end, and a
// system update, all written at envelope version v, and returns the state.
func applyAtVersion(t *testing.T, v byte) string {
	t.Helper()
	f := testFSM(t, t.TempDir())
	b := &logBuilder{t: t, version: v}
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox"}}}
	yes := true
	a := TaskRef{RunRef: RunRef{NamespaceID: "default", PipelineID: "dag", RunID: 1}, TaskID: "aaa"}
	logs := []*raft.Log{
		b.entry(CmdClusterInit, ClusterInit{ClusterID: "c", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: "default"}}),
		b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg}),
		b.entry(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 1}),
		b.entry(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"}),
		b.entry(CmdRunStart, RunStart{RunRef: a.RunRef}),
		b.entry(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c1"}),
		b.entry(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 1, Status: model.TaskStatusCancelled}),
		b.entry(CmdSystemUpdate, SystemUpdate{IgnorePipelineRunEvents: &yes}),
	}
	if v == envelopeVersionHash {
		// A version 2 entry is one that carried a request hash.
		for i, l := range logs {
			typ, env, err := decode(l.Data)
			if err != nil {
				t.Fatal(err)
			}
			env.Meta.RequestHash = "h"
			if logs[i].Data, err = encodeAt(v, typ, env.Meta, json.RawMessage(env.Body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, r := range f.ApplyBatch(logs) {
		if res := resultOf(t, r); res.Err != nil {
			t.Fatalf("version %d entry %d: %v", v, i+1, res.Err)
		}
	}
	return dump(t, f)
}
