package fsm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/storetest"
)

// This file is shared with the binary before slim task executions
// (envelope version 6): testdata/fat-v*.{dump,answers.json} and
// fat-v4.db were written by running TestWriteFatStateFixture on that code
// (commit 333f83b, where Encode wrote version 4); fat-v4.state.json holds
// that fat-v4.db's records byte for byte as text (storetest.WriteFixture
// writes it now; no binary database is committed). Rewrite them with
//
//	GOFER_WRITE_SLIM_FIXTURE=$PWD/testdata go test -run TestWriteFatStateFixture ./fsm/
//
// so the tests in slim_test.go compare this code against what that code
// stored and answered, not against itself. Do not regenerate them with a
// newer binary: they stand for the state an upgraded cluster starts from.

// fixtureScenario is a small history: version 1 of a pipeline with two
// tasks (variables, a dependency, retries) runs once (one task finishes
// after a log append, the other waits), version 2 runs once (one task is
// scheduled and running, the other, with empty variables, waits), a run
// starts with variables (its tasks wait, one with config variables), and registering
// version 3 with retention 1 prunes version 1 while its run remains.
func fixtureScenario(b *logBuilder) []*raft.Log {
	ref := func(run int64, task string) TaskRef {
		return TaskRef{RunRef: RunRef{NamespaceID: "default", PipelineID: "build", RunID: run}, TaskID: task}
	}
	v1 := &sdk.PipelineConfig{ID: "build", Name: "Build", Tasks: []*sdk.TaskConfig{
		{ID: "compile", Image: "golang:1.26", Command: []string{"go", "build", "./..."}, Variables: map[string]string{"CGO_ENABLED": "0", "TOKEN": "secret{{token}}"}, Retries: 2},
		{ID: "test", Image: "golang:1.26", Command: []string{"go", "test"}, DependsOn: map[string]sdk.RequiredParentStatus{"compile": sdk.RequiredParentStatusSuccess}},
	}}
	v2 := &sdk.PipelineConfig{ID: "build", Name: "Build", Tasks: []*sdk.TaskConfig{
		{ID: "lint", Image: "golangci/golangci-lint", Entrypoint: []string{"/bin/sh"}, Command: []string{"-c", "golangci-lint run"}, Variables: map[string]string{"LINT_LEVEL": "strict"}},
		{ID: "vet", Image: "golang:1.26", Command: []string{"go", "vet"}, Variables: map[string]string{}},
	}}
	v3 := &sdk.PipelineConfig{ID: "build", Name: "Build", Tasks: []*sdk.TaskConfig{{ID: "noop", Image: "busybox"}}}
	exit := 0
	return []*raft.Log{
		b.entry(CmdClusterInit, ClusterInit{ClusterID: "c", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: "default", Name: "Default"}}),
		b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: v1}),
		b.entry(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "build", Version: 1}),
		b.entry(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "build", Variables: map[string]string{"BRANCH": "main"}}),
		b.entry(CmdRunStart, RunStart{RunRef: ref(1, "").RunRef}),
		b.entry(CmdTaskSchedule, TaskSchedule{TaskRef: ref(1, "compile"), Attempt: 1, Container: "c-1-compile-1",
			Variables: map[string]string{"GOFER_RUN_ID": "1", "GOFER_API_BASE_URL": "http://127.0.0.1:8080", "CGO_ENABLED": "0", "BRANCH": "main", "TOKEN": "secret{{token}}"}}),
		b.entry(CmdTaskRunning, TaskRunning{TaskRef: ref(1, "compile"), Attempt: 1}),
		b.entry(CmdLogAppend, LogAppend{TaskRef: ref(1, "compile"), Attempt: 1, Offset: 0, Data: []byte("building\n"), MaxBytes: 1 << 20}),
		b.entry(CmdTaskFinish, TaskFinish{TaskRef: ref(1, "compile"), Attempt: 1, Status: model.TaskStatusSuccessful, ExitCode: &exit}),
		b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: v2}),
		b.entry(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "build", Version: 2}),
		b.entry(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "build"}),
		b.entry(CmdRunStart, RunStart{RunRef: ref(2, "").RunRef}),
		b.entry(CmdTaskSchedule, TaskSchedule{TaskRef: ref(2, "lint"), Attempt: 1, Container: "c-2-lint-1", Variables: map[string]string{"GOFER_RUN_ID": "2"}}),
		b.entry(CmdTaskRunning, TaskRunning{TaskRef: ref(2, "lint"), Attempt: 1}),
		b.entry(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "build", Variables: map[string]string{"BRANCH": "dev"}}),
		b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: v3, Retention: 1}),
	}
}

// fixtureRuns are the runs fixtureScenario creates.
var fixtureRuns = []int64{1, 2, 3}

// taskAnswers renders what the API answers for each run's task list and
// each task (store.ListTasksPage / GetTask, then View with the run, as
// api/runs.go serves them), keyed "run/N" and "run/N/task".
func taskAnswers(t testing.TB, f *FSM) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := f.View(func(tx *bbolt.Tx) error {
		for _, id := range fixtureRuns {
			r, err := store.GetRun(tx, "default", "build", id)
			if err != nil || r == nil {
				return fmt.Errorf("run %d: %v", id, err)
			}
			list, err := store.ListTasksPage(tx, "default", "build", id, store.Page{Limit: store.MaxLimit})
			if err != nil {
				return err
			}
			views := make([]model.TaskExecutionView, len(list))
			for i, te := range list {
				views[i] = te.View(r)
				one, err := store.GetTask(tx, "default", "build", id, te.TaskID)
				if err != nil {
					return err
				}
				raw, err := json.Marshal(one.View(r))
				if err != nil {
					return err
				}
				out[fmt.Sprintf("run/%d/%s", id, te.TaskID)] = string(raw)
			}
			raw, err := json.Marshal(map[string]any{"task_executions": views})
			if err != nil {
				return err
			}
			out[fmt.Sprintf("run/%d", id)] = string(raw)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWriteFatStateFixture writes the fixtures (see the top of this file);
// it runs only when asked to.
func TestWriteFatStateFixture(t *testing.T) {
	dir := os.Getenv("GOFER_WRITE_SLIM_FIXTURE")
	if dir == "" {
		t.Skip("set GOFER_WRITE_SLIM_FIXTURE to a directory to write the fixtures")
	}
	for v := byte(1); v <= 4; v++ {
		f := testFSM(t, t.TempDir())
		// Each version explicitly, 4 too (what Encode wrote then): a zero
		// version would be today's Encode, which writes slim records.
		b := &logBuilder{t: t, version: v}
		for i, r := range f.ApplyBatch(fixtureScenario(b)) {
			if res := resultOf(t, r); res.Err != nil {
				t.Fatalf("version %d entry %d: %v", v, i+1, res.Err)
			}
		}
		name := filepath.Join(dir, fmt.Sprintf("fat-v%d", v))
		if err := os.WriteFile(name+".dump", []byte(dump(t, f)), 0o644); err != nil {
			t.Fatal(err)
		}
		if v != 4 {
			continue
		}
		answers, err := json.MarshalIndent(taskAnswers(t, f), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name+".answers.json", answers, 0o644); err != nil {
			t.Fatal(err)
		}
		f.Flush()
		if err := f.View(func(tx *bbolt.Tx) error { return storetest.WriteFixture(tx, name+".state.json") }); err != nil {
			t.Fatal(err)
		}
	}
}
