package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// A run start whose tasks name secrets and objects that are not there is
// refused (409) with every one of them and the command that stores each,
// and nothing starts. Objects of a task with parents (which may store
// them) and run objects (which exist only once the run does) are left to
// the task's start.
func TestRunStartListsEveryMissingValue(t *testing.T) {
	cl, _ := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	task := func(id string, vars map[string]string, parents ...string) *sdk.TaskConfig {
		tc := &sdk.TaskConfig{ID: id, Image: "busybox", Variables: vars, DependsOn: map[string]sdk.RequiredParentStatus{}}
		for _, p := range parents {
			tc.DependsOn[p] = sdk.RequiredParentStatusSuccess
		}
		return tc
	}
	cfg := &sdk.PipelineConfig{ID: "needs", Name: "needs", Tasks: []*sdk.TaskConfig{
		task("first", map[string]string{
			"API_KEY":    sdk.PipelineSecret("api_key"),
			"OVERRIDDEN": sdk.PipelineSecret("overridden"),
			"REGISTRY":   sdk.GlobalSecret("registry_pass"),
			"SETTINGS":   sdk.PipelineObject("settings"),
			"PRESENT":    sdk.PipelineSecret("present"),
			"PLAIN":      "not a marker",
			"BUILD":      sdk.RunObject("build_id"),
		}),
		task("second", map[string]string{"AGAIN": sdk.PipelineSecret("api_key"), "LATER": sdk.PipelineObject("later"),
			"RUN": sdk.RunObject("made")}, "first"),
	}}
	if _, err := cl.RegisterConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeployConfig(ctx, "needs", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutSecret(ctx, client.SecretScope{Pipeline: "needs"}, "present", "here", nil, false); err != nil {
		t.Fatal(err)
	}

	_, err := cl.StartRun(ctx, "needs", nil)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("start: %v; want a 409", err)
	}
	checkMissing(t, apiErr, []model.MissingValue{
		{Kind: "pipeline_secret", Key: "api_key", Problem: "does not exist",
			Fix: "gofer secret pipeline put needs api_key VALUE -n default", UsedBy: []string{"first.API_KEY", "second.AGAIN"}},
		{Kind: "pipeline_secret", Key: "overridden", Problem: "does not exist",
			Fix: "gofer secret pipeline put needs overridden VALUE -n default", UsedBy: []string{"first.OVERRIDDEN"}},
		{Kind: "global_secret", Key: "registry_pass", Problem: "does not exist",
			Fix: "gofer secret global put registry_pass VALUE", UsedBy: []string{"first.REGISTRY"}},
		{Kind: "pipeline_object", Key: "settings", Problem: "does not exist",
			Fix: "gofer pipeline object put needs settings FILE -n default", UsedBy: []string{"first.SETTINGS"}},
	})
	if strings.Contains(apiErr.Message, "\n") || !strings.Contains(apiErr.Message, "4 secrets or objects") ||
		!strings.Contains(apiErr.Message, "gofer secret pipeline put needs api_key VALUE -n default") {
		t.Errorf("message %q: want one line naming all 4 with their fixes", apiErr.Message)
	}
	if runs, err := cl.ListRuns(ctx, "needs", client.Page{}); err != nil || len(runs) != 0 {
		t.Fatalf("runs after a refused start: %d, %v; want none", len(runs), err)
	}

	// Fixed as the answer says, only what is left is listed; a run
	// variable replacing a task's marker (names differ in case only)
	// takes it out.
	if _, err := cl.PutSecret(ctx, client.SecretScope{Pipeline: "needs"}, "api_key", "k", nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutSecret(ctx, client.SecretScope{}, "registry_pass", "p", []string{"prod"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutObject(ctx, client.ObjectScope{Pipeline: "needs"}, "settings", []byte("{}"), false); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"overridden": "given"}
	_, err = cl.StartRun(ctx, "needs", vars)
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("start: %v; want a 409 for the global secret default may not use", err)
	}
	checkMissing(t, apiErr, []model.MissingValue{{Kind: "global_secret", Key: "registry_pass",
		Problem: `may not be used in namespace "default" (it allows prod)`,
		Fix:     "gofer secret global put registry_pass VALUE --force --namespaces 'prod' --namespaces default", UsedBy: []string{"first.REGISTRY"}}})
	if _, err := cl.PutSecret(ctx, client.SecretScope{}, "registry_pass", "p", []string{"prod", "default"}, true); err != nil {
		t.Fatal(err)
	}
	r, err := cl.StartRun(ctx, "needs", vars)
	if err != nil {
		t.Fatalf("start once every value is there: %v", err)
	}
	// A repeat of a start that succeeded answers with its run even when a
	// value went missing since.
	key := "start-once"
	first, err := cl.StartRunWithKey(ctx, "needs", key, vars)
	if err != nil || first.RunID == r.RunID {
		t.Fatalf("keyed start: %+v, %v", first, err)
	}
	if err := cl.DeleteSecret(ctx, client.SecretScope{Pipeline: "needs"}, "api_key"); err != nil {
		t.Fatal(err)
	}
	again, err := cl.StartRunWithKey(ctx, "needs", key, vars)
	if err != nil || again.RunID != first.RunID {
		t.Fatalf("repeat of a keyed start: %+v, %v; want run %d", again, err, first.RunID)
	}
}

// checkMissing compares an error's missing list with want; a want without
// Problem or Fix checks only that one is there.
func checkMissing(t *testing.T, apiErr *client.Error, want []model.MissingValue) {
	t.Helper()
	if len(apiErr.Missing) != len(want) {
		t.Fatalf("missing %+v; want %d entries %+v", apiErr.Missing, len(want), want)
	}
	for i, w := range want {
		g := apiErr.Missing[i]
		if g.Kind != w.Kind || g.Key != w.Key || strings.Join(g.UsedBy, ",") != strings.Join(w.UsedBy, ",") ||
			(w.Problem != "" && g.Problem != w.Problem) || (w.Fix != "" && g.Fix != w.Fix) || g.Problem == "" || g.Fix == "" {
			t.Errorf("missing[%d] = %+v; want %+v", i, g, w)
		}
	}
}

// startRefusal starts a run of pipeline id and returns the API error (the
// test fails when the start succeeds or fails otherwise).
func startRefusal(t *testing.T, cl *client.Client, id string, vars map[string]string) *client.Error {
	t.Helper()
	_, err := cl.StartRun(context.Background(), id, vars)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("start of %s: %v; want an API error", id, err)
	}
	return apiErr
}

// registerLive registers tasks as pipeline id and deploys it.
func registerLive(t *testing.T, cl *client.Client, id string, tasks ...*sdk.TaskConfig) {
	t.Helper()
	ctx := context.Background()
	if _, err := cl.RegisterConfig(ctx, &sdk.PipelineConfig{ID: id, Name: id, Tasks: tasks}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeployConfig(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
}

// The check sees a task's variables as its container gets them: of
// variables whose names differ only in case the last in sorted order
// wins, so a marker another variable replaces is not checked, and the
// run starts although the secret it named is not there.
func TestRunStartChecksTheEnvironmentTheTaskGets(t *testing.T) {
	cl, _ := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	registerLive(t, cl, "cased", &sdk.TaskConfig{ID: "only", Image: "busybox",
		Variables: map[string]string{"API_KEY": sdk.PipelineSecret("a"), "api_key": "x"}})
	if _, err := cl.StartRun(context.Background(), "cased", nil); err != nil {
		t.Fatalf("start: %v; the container gets api_key=x and no marker", err)
	}
	// The other way round the marker is what the container gets.
	registerLive(t, cl, "cased-two", &sdk.TaskConfig{ID: "only", Image: "busybox",
		Variables: map[string]string{"API_KEY": "x", "api_key": sdk.PipelineSecret("a")}})
	apiErr := startRefusal(t, cl, "cased-two", nil)
	checkMissing(t, apiErr, []model.MissingValue{{Kind: "pipeline_secret", Key: "a", UsedBy: []string{"only.api_key"}}})
	// Names match as the executor matches them (strings.EqualFold): a run
	// variable "ſ" (long s, which folds to "s" but does not lower-case
	// to it) replaces the task's "S".
	registerLive(t, cl, "folded", &sdk.TaskConfig{ID: "only", Image: "busybox",
		Variables: map[string]string{"S": sdk.PipelineSecret("a")}})
	if _, err := cl.StartRun(context.Background(), "folded", map[string]string{"ſ": "x"}); err != nil {
		t.Fatalf("start: %v; the run's ſ replaces the task's S in the container", err)
	}
}

// Only tasks that run when every task succeeds are checked: a task that
// runs only after a failure (on its own edge or a parent's) may need a
// secret that is not there without the run being refused.
func TestRunStartSkipsTasksThatRunOnlyAfterAFailure(t *testing.T) {
	cl, _ := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	on := func(parent string, status sdk.RequiredParentStatus) map[string]sdk.RequiredParentStatus {
		return map[string]sdk.RequiredParentStatus{parent: status}
	}
	registerLive(t, cl, "cleanup",
		&sdk.TaskConfig{ID: "build", Image: "busybox"},
		&sdk.TaskConfig{ID: "notify", Image: "busybox", DependsOn: on("build", sdk.RequiredParentStatusFailure),
			Variables: map[string]string{"HOOK": sdk.PipelineSecret("hook")}},
		&sdk.TaskConfig{ID: "after_notify", Image: "busybox", DependsOn: on("notify", sdk.RequiredParentStatusAny),
			Variables: map[string]string{"HOOK": sdk.GlobalSecret("hook")}},
		&sdk.TaskConfig{ID: "report", Image: "busybox", DependsOn: on("build", sdk.RequiredParentStatusAny),
			Variables: map[string]string{"TOKEN": sdk.PipelineSecret("token")}},
	)
	apiErr := startRefusal(t, cl, "cleanup", nil)
	checkMissing(t, apiErr, []model.MissingValue{{Kind: "pipeline_secret", Key: "token", UsedBy: []string{"report.TOKEN"}}})
	if _, err := cl.PutSecret(context.Background(), client.SecretScope{Pipeline: "cleanup"}, "token", "t", nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartRun(context.Background(), "cleanup", nil); err != nil {
		t.Fatalf("start: %v; only failure-path tasks lack their secrets", err)
	}
}

// A start the FSM refuses anyway says that reason, not the missing values:
// a disabled pipeline, and runs paused cluster-wide.
func TestRunStartRefusalsComeBeforeMissingValues(t *testing.T) {
	cl, _ := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	registerLive(t, cl, "needs", &sdk.TaskConfig{ID: "only", Image: "busybox",
		Variables: map[string]string{"KEY": sdk.PipelineSecret("absent")}})
	if _, err := cl.SetPipelineState(ctx, "needs", model.PipelineStateDisabled); err != nil {
		t.Fatal(err)
	}
	if e := startRefusal(t, cl, "needs", nil); e.Status != http.StatusConflict || len(e.Missing) != 0 || !strings.Contains(e.Message, "disabled") {
		t.Errorf("disabled pipeline: %d %q missing %+v; want 409 saying it is disabled", e.Status, e.Message, e.Missing)
	}
	if _, err := cl.SetPipelineState(ctx, "needs", model.PipelineStateActive); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SetEventIngress(ctx, false); err != nil {
		t.Fatal(err)
	}
	if e := startRefusal(t, cl, "needs", nil); e.Status != http.StatusConflict || len(e.Missing) != 0 || !strings.Contains(e.Message, "paused") {
		t.Errorf("runs paused: %d %q missing %+v; want 409 saying runs are paused", e.Status, e.Message, e.Missing)
	}
	if _, err := cl.SetEventIngress(ctx, true); err != nil {
		t.Fatal(err)
	}
	if e := startRefusal(t, cl, "needs", nil); len(e.Missing) != 1 {
		t.Errorf("active pipeline: %q missing %+v; want the missing secret", e.Message, e.Missing)
	}
}

// A canary deploy checks the canary version's markers (the run start
// check looks at the live version only): a canary whose tasks name a
// secret that is not there is refused (409, missing) and nothing starts;
// stored, the canary starts.
func TestCanaryDeployListsMissingValues(t *testing.T) {
	cl, _ := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	for _, vars := range []map[string]string{nil, {"API_KEY": sdk.PipelineSecret("api_key")}} {
		cfg := &sdk.PipelineConfig{ID: "cny", Name: "cny", Tasks: []*sdk.TaskConfig{{ID: "tsk", Image: "busybox", Variables: vars}}}
		if _, err := cl.RegisterConfig(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.DeployConfig(ctx, "cny", 1); err != nil {
		t.Fatal(err)
	}
	opts := client.DeployOptions{Strategy: model.DeploymentStrategyCanary,
		Canary: &model.CanaryPolicy{Percent: 50, Runs: 2, Duration: "10m", MaxFailureIncrease: 10}}
	_, err := cl.DeployConfigWith(ctx, "cny", 2, opts)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || !strings.Contains(apiErr.Message, "did not start a canary of version 2") {
		t.Fatalf("canary deploy with a missing secret: %v; want a 409 naming the canary", err)
	}
	checkMissing(t, apiErr, []model.MissingValue{{Kind: "pipeline_secret", Key: "api_key", Problem: "does not exist",
		Fix: "gofer secret pipeline put cny api_key VALUE -n default", UsedBy: []string{"tsk.API_KEY"}}})
	if p, err := cl.GetPipeline(ctx, "cny"); err != nil || p.ActiveCanary != 0 || p.LiveVersion != 1 {
		t.Fatalf("pipeline after a refused canary: %+v, %v; want no canary, version 1 live", p, err)
	}
	if _, err := cl.PutSecret(ctx, client.SecretScope{Pipeline: "cny"}, "api_key", "k", nil, false); err != nil {
		t.Fatal(err)
	}
	if d, err := cl.DeployConfigWith(ctx, "cny", 2, opts); err != nil || d.Canary == nil || d.Canary.CanaryVersion != 2 {
		t.Fatalf("canary deploy once the secret is there: %+v, %v", d, err)
	}
}
