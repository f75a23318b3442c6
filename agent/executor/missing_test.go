package executor

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// Values that went missing after the run started (the API checks them at
// start) fail the task with a reason that names every one and its fix,
// not just the first.
func TestMissingValuesAreAllNamedInTheTaskReason(t *testing.T) {
	t.Parallel()
	task := shTask("needs-all", "true").Variables(map[string]string{
		"API_KEY":  sdk.PipelineSecret("api_key"),
		"AGAIN":    sdk.PipelineSecret("api_key"),
		"REGISTRY": sdk.GlobalSecret("registry_pass"),
		"SETTINGS": sdk.PipelineObject("settings"),
		"BUILD":    sdk.RunObject("build_id"),
	})
	h, sched := newFakeHarness(t, pipeline("missing-all", task), nil)
	h.startExecutor(sched)
	r := h.waitRun(time.Minute)
	te := h.task("needs-all")
	if r.Status != model.RunStatusFailed || te.Status != model.TaskStatusFailed || te.StatusReason == nil ||
		te.StatusReason.Reason != model.ReasonFailedPrecondition {
		t.Fatalf("run %s, task %s %+v; want failed_precondition", r.Status, te.Status, te.StatusReason)
	}
	desc := te.StatusReason.Description
	for _, want := range []string{
		"4 secrets or objects are not there: ",
		`variables AGAIN, API_KEY: pipeline_secret "api_key" does not exist (fix: gofer secret pipeline put missing-all api_key VALUE -n default)`,
		`variable REGISTRY: global_secret "registry_pass" does not exist (fix: gofer secret global put registry_pass VALUE)`,
		`variable SETTINGS: pipeline_object "settings" does not exist (fix: gofer pipeline object put missing-all settings FILE -n default)`,
		`variable BUILD: run_object "build_id" does not exist (fix: gofer run object put missing-all 1 build_id FILE -n default)`,
	} {
		if !strings.Contains(desc, want) {
			t.Errorf("reason %q\nlacks %q", desc, want)
		}
	}
	if strings.Contains(desc, "\n") {
		t.Errorf("reason %q spans lines", desc)
	}
}

// A slim record whose config version cannot be read (a state damaged
// outside the FSM's rules) fails that task alone, with a reason; the
// executor's reads do not fail, so the run's other task runs and the run
// ends.
func TestUnresolvableTaskFailsAloneAndTheRunEnds(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("half-broken", shTask("fine", "true"), shTask("broken", "true")), nil)
	h.f.Flush()
	if err := h.f.DB().Update(func(tx *bbolt.Tx) error {
		var key, val []byte
		if err := store.ForEachTaskRaw(tx, h.ref.NamespaceID, h.ref.PipelineID, h.ref.RunID, func(k, v []byte) error {
			if strings.HasSuffix(string(k), "broken") {
				key, val = bytes.Clone(k), bytes.Clone(v)
			}
			return nil
		}); err != nil {
			return err
		}
		damaged := strings.Replace(string(val), `"pipeline_config_version":1}`, `"pipeline_config_version":99}`, 1)
		if damaged == string(val) {
			t.Fatalf("not a slim record of version 1: %s", val)
		}
		return tx.Bucket([]byte("task_executions")).Put(key, []byte(damaged))
	}); err != nil {
		t.Fatal(err)
	}
	h.startExecutor(sched)
	r := h.waitRun(time.Minute)
	var fine, broken *model.TaskExecution
	_ = h.f.View(func(tx *bbolt.Tx) error {
		tasks, err := store.ListTaskRecords(tx, h.ref.NamespaceID, h.ref.PipelineID, h.ref.RunID)
		for _, te := range tasks {
			if te.TaskID == "fine" {
				fine = te
			} else {
				broken = te
			}
		}
		return err
	})
	if r.Status != model.RunStatusFailed || fine.Status != model.TaskStatusSuccessful || broken.Status != model.TaskStatusFailed ||
		broken.StatusReason == nil || !strings.Contains(broken.StatusReason.Description, "version 99") {
		t.Fatalf("run %s, fine %s, broken %s %+v", r.Status, fine.Status, broken.Status, broken.StatusReason)
	}
}
