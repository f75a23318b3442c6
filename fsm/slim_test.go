package fsm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/storetest"
)

// Entries of envelope versions 1 to 5 store, byte for byte, what the
// binary before slim task executions stored for them (its dumps in
// testdata, slim_fixture_test.go): fat task executions, no config
// references. That binary proposed version 4; version 5 (per-stream log
// positions) changes only what a LogAppend carrying stream positions
// stores, which the history has none of, so it stores what version 4 did.
func TestOlderEnvelopesStoreWhatTheyStored(t *testing.T) {
	for v := byte(1); v <= envelopeVersionLogs; v++ {
		dumpOf := min(v, envelopeVersionSteps)
		want, err := os.ReadFile(filepath.Join("testdata", "fat-v"+string('0'+dumpOf)+".dump"))
		if err != nil {
			t.Fatal(err)
		}
		f := testFSM(t, t.TempDir())
		applyAll(t, f, fixtureScenario(&logBuilder{t: t, version: v}))
		if got := dump(t, f); got != string(want) {
			t.Errorf("envelope version %d stores other bytes than before:\n got: %s\nwant: %s", v, got, want)
		}
	}
}

// Version 6 run creation writes slim task executions: the run's config
// version instead of the task's config, no copy of the config's variables
// before the first attempt. The API answers for the same history are
// what the binary before it answered, including for the run whose
// version retention pruned (kept in retained_configs for its records).
func TestVersion6StoresSlimTasksAndAnswersTheSame(t *testing.T) {
	f := testFSM(t, t.TempDir())
	applyAll(t, f, fixtureScenario(&logBuilder{t: t, version: envelopeVersionSlim}))
	state := dump(t, f)
	for _, line := range strings.Split(state, "\n") {
		if !strings.HasPrefix(line, "task_executions ") {
			continue
		}
		if strings.Contains(line, `"task":`) || !strings.Contains(line, `"pipeline_config_version":`) {
			t.Errorf("not a slim record: %s", line)
		}
		if strings.Contains(line, `"attempt":0,`) && !strings.Contains(line, `"variables":null`) {
			t.Errorf("a record before its first attempt stores variables: %s", line)
		}
	}
	if !strings.Contains(state, "\nretained_configs ") {
		t.Errorf("the pruned version 1, which run 1's records name, was not retained:\n%s", state)
	}
	assertAnswers(t, f)
}

// A state file written by the binary before slim records (testdata/fat-v4.state.json)
// reads the same; the migration command rewrites every record it can slim
// (not those of run 1, whose version was pruned before anything referred
// to it), answers stay the same, and repeating it changes nothing.
func TestFatStateReadsTheSameAndMigrates(t *testing.T) {
	f := fixtureFSM(t)
	assertAnswers(t, f)
	before := dump(t, f)

	var refs []store.TaskRecordRef
	if err := f.View(func(tx *bbolt.Tx) (err error) {
		refs, _, err = store.FatTasks(tx, nil, MaxTasksSlim, 1000)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(refs) != 4 {
		t.Fatalf("found %d records to slim, want 4 (runs 2 and 3): %+v", len(refs), refs)
	}
	// Looking at one record at a time and resuming finds the same.
	var stepped []store.TaskRecordRef
	var from []byte
	for looks := 0; ; looks++ {
		var found []store.TaskRecordRef
		if err := f.View(func(tx *bbolt.Tx) (err error) {
			found, from, err = store.FatTasks(tx, from, MaxTasksSlim, 1)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		stepped = append(stepped, found...)
		if from == nil {
			if looks != 5 {
				t.Errorf("%d looks of one record for 6 records", looks+1)
			}
			break
		}
	}
	if fmt.Sprint(stepped) != fmt.Sprint(refs) {
		t.Errorf("resumed looks found %v, one look %v", stepped, refs)
	}
	// Name every record: those that cannot be slim are left alone.
	all := append(refs, store.TaskRecordRef{NamespaceID: "default", PipelineID: "build", RunID: 1, TaskID: "compile"},
		store.TaskRecordRef{NamespaceID: "default", PipelineID: "build", RunID: 1, TaskID: "test"},
		store.TaskRecordRef{NamespaceID: "default", PipelineID: "build", RunID: 9, TaskID: "gone"})
	b := &logBuilder{t: t, index: 100}
	res := applyAll(t, f, []*raft.Log{b.entry(CmdTasksSlim, TasksSlim{Tasks: all})})
	if got := res[0].Value.(*TasksSlimResult).Slimmed; got != 4 {
		t.Fatalf("slimmed %d, want 4", got)
	}
	after := dump(t, f)
	if after == before {
		t.Fatal("the migration changed nothing")
	}
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "task_executions ") {
			continue
		}
		slim := strings.Contains(line, `"pipeline_config_version":2`)
		run1 := strings.Contains(line, `"run_id":1,`)
		if slim == run1 || strings.Contains(line, `"task":`) == slim {
			t.Errorf("run 1 records must stay fat, the others be slim: %s", line)
		}
	}
	assertAnswers(t, f)

	applyAll(t, f, []*raft.Log{b.entry(CmdTasksSlim, TasksSlim{Tasks: all})})
	if again := dump(t, f); stripApplied(again) != stripApplied(after) {
		t.Errorf("a repeated migration changed the state:\n%s\nwas\n%s", again, after)
	}
	if err := f.View(func(tx *bbolt.Tx) (err error) {
		refs, _, err = store.FatTasks(tx, nil, MaxTasksSlim, 1000)
		return err
	}); err != nil || len(refs) != 0 {
		t.Fatalf("after the migration %d records are still to slim (%v)", len(refs), err)
	}
}

// A batch larger than MaxTasksSlim is refused and changes nothing.
func TestTasksSlimBatchIsBounded(t *testing.T) {
	f := fixtureFSM(t)
	before := dump(t, f)
	b := &logBuilder{t: t, index: 100}
	res := applyAll(t, f, []*raft.Log{b.entry(CmdTasksSlim, TasksSlim{Tasks: make([]store.TaskRecordRef, MaxTasksSlim+1)})}, ErrInvalid)
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "tasks") {
		t.Fatalf("got %v, want a refusal naming tasks", res[0].Err)
	}
	if stripApplied(dump(t, f)) != stripApplied(before) {
		t.Fatal("a refused batch changed the state")
	}
}

// fixtureFSM opens a copy of the state file the binary before slim
// records wrote.
func fixtureFSM(t *testing.T) *FSM {
	t.Helper()
	path := storetest.StateFile(t, filepath.Join("testdata", "fat-v4.state.json"))
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(db, store.Options{NoSync: true}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Flush(); db.Close() })
	return f
}

// assertAnswers compares the task answers with what the binary before
// slim records answered for the fixture history.
func assertAnswers(t *testing.T, f *FSM) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "fat-v4.answers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]string
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	got := taskAnswers(t, f)
	if len(got) != len(want) {
		t.Errorf("%d answers, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s answers\n %s\nwant\n %s", k, got[k], w)
		}
	}
}

// applyAll applies entries and fails on any refusal other than allowed.
func applyAll(t *testing.T, f *FSM, logs []*raft.Log, allowed ...error) []*Result {
	t.Helper()
	var out []*Result
	for i, r := range f.ApplyBatch(logs) {
		res := resultOf(t, r)
		if res.Err != nil && len(allowed) == 0 {
			t.Fatalf("entry %d: %v", i+1, res.Err)
		}
		out = append(out, res)
	}
	return out
}

// stripApplied drops the applied index and term, which every entry moves.
func stripApplied(state string) string {
	var keep []string
	for _, line := range strings.Split(state, "\n") {
		if !strings.HasPrefix(line, "meta 6170706c6965645f") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
