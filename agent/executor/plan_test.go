package executor

import (
	"strings"
	"testing"
	"time"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

func te(id string, status model.TaskStatus, deps map[string]sdk.RequiredParentStatus) *model.TaskExecution {
	state := model.TaskStateComplete
	if status == model.TaskStatusUnknown {
		state = model.TaskStateWaiting
	}
	return &model.TaskExecution{TaskID: id, State: state, Status: status, Task: &sdk.TaskConfig{ID: id, DependsOn: deps}}
}

func TestCheckDependencies(t *testing.T) {
	any, succ, fail := sdk.RequiredParentStatusAny, sdk.RequiredParentStatusSuccess, sdk.RequiredParentStatusFailure
	tests := []struct {
		name   string
		parent model.TaskStatus
		cond   sdk.RequiredParentStatus
		want   dependencyVerdict
	}{
		{"running parent", model.TaskStatusUnknown, any, depsPending},
		{"any after success", model.TaskStatusSuccessful, any, depsMet},
		{"any after failure", model.TaskStatusFailed, any, depsMet},
		{"any after skip", model.TaskStatusSkipped, any, depsMet},
		{"any after cancel", model.TaskStatusCancelled, any, depsUnmet},
		{"success after success", model.TaskStatusSuccessful, succ, depsMet},
		{"success after failure", model.TaskStatusFailed, succ, depsUnmet},
		{"success after skip", model.TaskStatusSkipped, succ, depsUnmet},
		{"failure after failure", model.TaskStatusFailed, fail, depsMet},
		{"failure after success", model.TaskStatusSuccessful, fail, depsUnmet},
	}
	for _, tt := range tests {
		parent := te("parent", tt.parent, nil)
		child := te("child", model.TaskStatusUnknown, map[string]sdk.RequiredParentStatus{"parent": tt.cond})
		got, why := checkDependencies(child, map[string]*model.TaskExecution{"parent": parent, "child": child})
		if got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		if got == depsUnmet && !strings.Contains(why, `"parent"`) {
			t.Errorf("%s: reason %q does not name the parent", tt.name, why)
		}
	}
}

func TestRunOutcome(t *testing.T) {
	ok := te("aaa", model.TaskStatusSuccessful, nil)
	skipped := te("bbb", model.TaskStatusSkipped, nil)
	failed := te("ccc", model.TaskStatusFailed, nil)
	failed.StatusReason = &model.StatusReason{Reason: model.ReasonTimeout, Description: "exceeded its 1s timeout"}
	cancelled := te("ddd", model.TaskStatusCancelled, nil)
	tests := []struct {
		name   string
		run    *model.Run
		tasks  []*model.TaskExecution
		status model.RunStatus
		reason string
	}{
		{"all good", &model.Run{}, []*model.TaskExecution{ok, skipped}, model.RunStatusSuccessful, ""},
		{"a failure", &model.Run{}, []*model.TaskExecution{ok, failed}, model.RunStatusFailed, model.ReasonTimeout},
		{"a cancelled task", &model.Run{}, []*model.TaskExecution{ok, cancelled}, model.RunStatusCancelled, model.ReasonUserCancelled},
		{"run cancelled", &model.Run{Cancel: &model.Cancellation{Reason: model.ReasonUserCancelled, By: "alice"}}, []*model.TaskExecution{failed}, model.RunStatusCancelled, model.ReasonUserCancelled},
		{"run timed out", &model.Run{TimeoutMillis: 1000, Cancel: &model.Cancellation{Reason: model.ReasonTimeout}}, nil, model.RunStatusCancelled, model.ReasonTimeout},
	}
	for _, tt := range tests {
		status, reason := runOutcome(tt.run, tt.tasks)
		if status != tt.status || reason.Reason != tt.reason {
			t.Errorf("%s: got %s/%s, want %s/%s", tt.name, status, reason.Reason, tt.status, tt.reason)
		}
	}
}

func TestRetryAt(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	task := &model.TaskExecution{Task: &sdk.TaskConfig{Retries: 2, RetryBackoff: "1s"}}
	if got := retryAt(task, 1, now); got != now.Add(time.Second).UnixMilli()+1 {
		t.Fatalf("first retry at %d", got)
	}
	if got := retryAt(task, 2, now); got != now.Add(2*time.Second).UnixMilli()+1 {
		t.Fatalf("second retry at %d, want double the backoff", got)
	}
	if got := retryAt(task, 3, now); got != 0 {
		t.Fatalf("a third retry was granted (%d) with retries: 2", got)
	}
	if got := retryAt(&model.TaskExecution{Task: &sdk.TaskConfig{}}, 1, now); got != 0 {
		t.Fatal("a task without retries was retried")
	}
}

func TestEnvironmentPrecedence(t *testing.T) {
	run := &model.Run{NamespaceID: "default", PipelineID: "simple", RunID: 7, Variables: map[string]string{"gofer_task_id": "from-run", "SHARED": "run"}}
	task := &model.TaskExecution{TaskID: "hello", Task: &sdk.TaskConfig{ID: "hello", Image: "busybox", Variables: map[string]string{"SHARED": "task", "ONLY_TASK": "x"}}}
	env := environment(run, task, []string{"http://a:1", "http://b:2"})
	want := map[string]string{
		"GOFER_NAMESPACE_ID": "default", "GOFER_PIPELINE_ID": "simple", "GOFER_RUN_ID": "7", "GOFER_TASK_IMAGE": "busybox",
		"GOFER_API_BASE_URL": "http://a:1,http://b:2", "SHARED": "run", "ONLY_TASK": "x", "gofer_task_id": "from-run",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, still := env["GOFER_TASK_ID"]; still {
		t.Error("a run variable differing only in case did not replace the system one")
	}
}

func TestContainerNamesNeverCollide(t *testing.T) {
	te := func(ns, p string, run int64, task string, uid uint64) *model.TaskExecution {
		return &model.TaskExecution{NamespaceID: ns, PipelineID: p, RunID: run, TaskID: task, RunUID: uid}
	}
	a := ContainerName("c0ffee", te("a-b", "c", 1, "t", 5), 1)
	b := ContainerName("c0ffee", te("a", "b-c", 1, "t", 5), 1)
	if a == b {
		t.Fatalf("%q names two attempts", a)
	}
	if x, y := ContainerName("0123456789abcdef", te("ns", "p", 1, "t", 5), 1), ContainerName("local-fedcba987654", te("ns", "p", 1, "t", 5), 1); x == y || x != "gofer.89abcdef.5.ns.p.1.t.1" {
		t.Fatalf("two clusters share a name, or the tag is wrong: %q %q", x, y)
	}
	// Run 1 of a pipeline deleted and created again is another run.
	if x, y := ContainerName("c0ffee", te("ns", "p", 1, "t", 5), 1), ContainerName("c0ffee", te("ns", "p", 1, "t", 90), 1); x == y {
		t.Fatalf("two incarnations of run 1 share the name %q", x)
	}
	ns, p, run, task, attempt, ok := attemptFromLabels(containerLabels("cl", &model.TaskExecution{NamespaceID: "a-b", PipelineID: "c", RunID: 3, TaskID: "t_1"}, 2, 9))
	if !ok || ns != "a-b" || p != "c" || run != 3 || task != "t_1" || attempt != 2 {
		t.Fatalf("labels round trip: %v %v %v %v %v %v", ns, p, run, task, attempt, ok)
	}
}
