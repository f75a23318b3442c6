package executor

import (
	"strings"
	"testing"
	"time"

	sdk "github.com/goferhq/gofer/sdk/go"
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
