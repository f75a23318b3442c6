package fsm

import (
	"encoding/json"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// TestEventsCarryTheirNamespace: every event an applier emits records the
// namespace (and pipeline) it belongs to, from the applier's arguments;
// cluster-wide events (cluster init, tokens) record none. The API decides
// who may read an event from these fields alone.
func TestEventsCarryTheirNamespace(t *testing.T) {
	f := testFSM(t, t.TempDir())
	for i, r := range f.ApplyBatch(scenario(t)) {
		if res := resultOf(t, r); res.Err != nil {
			t.Fatalf("entry %d: %v", i+1, res.Err)
		}
	}
	want := map[string][2]string{
		model.EventInitializedCluster:  {"", ""},
		model.EventCreatedNamespace:    {"team-a", ""},
		model.EventCreatedPipeline:     {"team-a", "simple"},
		model.EventRegisteredConfig:    {"team-a", "simple"},
		model.EventPrunedConfig:        {"team-a", "simple"},
		model.EventStartedDeployment:   {"team-a", "simple"},
		model.EventCompletedDeployment: {"team-a", "simple"},
		model.EventCreatedToken:        {"", ""},
		model.EventDisabledPipeline:    {"team-a", "simple"},
	}
	seen := map[string]bool{}
	err := f.View(func(tx *bbolt.Tx) error {
		events, err := store.ListEvents(tx, store.Page{Limit: store.MaxLimit}, nil)
		if err != nil {
			return err
		}
		for _, e := range events {
			seen[e.Kind] = true
			scope, ok := want[e.Kind]
			if !ok {
				continue
			}
			if e.NamespaceID != scope[0] || e.PipelineID != scope[1] {
				t.Errorf("event %s is scoped %q/%q, want %q/%q", e.Kind, e.NamespaceID, e.PipelineID, scope[0], scope[1])
			}
			if e.ClusterWide() != (scope[0] == "") {
				t.Errorf("event %s: ClusterWide() = %v", e.Kind, e.ClusterWide())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for kind := range want {
		if !seen[kind] {
			t.Errorf("the scenario emitted no %s event", kind)
		}
	}
}

// TestOldEventsDecodeAsClusterWide: an event stored before the scope
// fields existed decodes with no namespace, so only tokens allowed
// cluster-wide events may read it.
func TestOldEventsDecodeAsClusterWide(t *testing.T) {
	var e model.Event
	old := `{"id":7,"kind":"put_object","details":{"namespace_id":"authB","key":"ro1"},"emitted":1,"actor":"bob"}`
	if err := json.Unmarshal([]byte(old), &e); err != nil {
		t.Fatal(err)
	}
	if !e.ClusterWide() || e.NamespaceID != "" {
		t.Fatalf("old event decoded as %+v; want no namespace (cluster-wide)", e)
	}
}

// TestEventDetailsAreTyped: ids, attempts and exit codes are stored as
// JSON numbers and flags as booleans, byte for byte the same on every
// replica (encoding/json sorts the keys); read back they keep their exact
// value.
func TestEventDetailsAreTyped(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
	a := ref(1, "aaa")
	x.ok(CmdRunStart, RunStart{RunRef: a.RunRef})
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c1"})
	x.ok(CmdTaskRunning, TaskRunning{TaskRef: a, Attempt: 1})
	zero := 0
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 1, Status: model.TaskStatusSuccessful, ExitCode: &zero})
	var done *model.Event
	x.f.View(func(tx *bbolt.Tx) error {
		evs, err := store.ListEvents(tx, store.Page{Limit: store.MaxLimit}, func(e *model.Event) bool { return e.Kind == model.EventCompletedTask })
		if len(evs) == 1 {
			done = evs[0]
		}
		return err
	})
	if done == nil {
		t.Fatal("no completed_task_execution event")
	}
	b, _ := json.Marshal(done.Details)
	want := `{"attempt":1,"exit_code":0,"namespace_id":"default","pipeline_id":"dag","reason":"","run_id":1,"status":"successful","task_id":"aaa"}`
	if string(b) != want {
		t.Errorf("details %s, want %s", b, want)
	}
	if n, ok := done.Details.Int("exit_code"); !ok || n != 0 {
		t.Errorf("exit_code read back as %v (%v)", n, ok)
	}
}
