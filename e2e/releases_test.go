package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestReleasesImmediateSwitch: runs started before an immediate
// (blue/green) switch finish on their own version. On a one-node cluster
// with real Docker, version 1's task sleeps then prints "v1"; a run of it
// is running when version 2 (printing "v2") is deployed with the CLI's
// `pipeline deploy --strategy immediate`; a run started after the switch
// uses version 2. Each run records the version it ran and logs that
// version's output. `gofer pipeline rollback` then makes version 1 live
// again in one command, and the next run uses it. `gofer up --strategy
// immediate` switches the same way; a rollback with no earlier version is
// refused without changing anything, and one run again with its
// idempotency key does not switch back.
func TestReleasesImmediateSwitch(t *testing.T) {
	rc := runsNewCluster(t, 1)
	ctx := context.Background()
	url := rc.Leader().URL
	const p = "release"
	version := func(out string) *sdk.PipelineConfig {
		// The v1 task outlives the switch by seconds; the test checks it
		// is still running at the switch rather than trusting the sleep.
		script := "sleep 4; echo " + out
		if out == "v2" {
			script = "echo v2"
		}
		return &sdk.PipelineConfig{ID: p, Name: "release " + out, Tasks: []*sdk.TaskConfig{runsSh("work", script)}}
	}
	rc.deploy(t, version("v1"))

	r1 := rc.start(t, p, nil)
	if r1.ConfigVersion != 1 {
		t.Fatalf("run 1 started on version %d, want 1", r1.ConfigVersion)
	}
	rc.waitTask(t, p, r1.RunID, "work", 60*time.Second, "running", func(te *model.TaskExecution) bool {
		return te.State == model.TaskStateRunning
	})

	v2, err := rc.cl.RegisterConfig(ctx, version("v2"))
	if err != nil || v2.Version != 2 {
		t.Fatalf("register version 2: %+v %v", v2, err)
	}
	out, code := rc.cli(t, url, "pipeline", "deploy", "--strategy", "immediate", p, "2")
	if code != 0 || !strings.Contains(out, "Deployed version 2") {
		t.Fatalf("gofer pipeline deploy --strategy immediate: exit %d\n%s", code, out)
	}
	t.Logf("gofer pipeline deploy --strategy immediate %s 2:\n%s", p, out)
	if r, err := rc.cl.GetRun(ctx, p, r1.RunID); err != nil || r.State == model.RunStateComplete {
		t.Fatalf("run 1 must still be running when version 2 goes live (else this test shows nothing): %+v %v", r, err)
	}
	out, code = rc.cli(t, url, "pipeline", "get", p)
	if code != 0 || !strings.Contains(out, "Live config (version 2)") {
		t.Fatalf("gofer pipeline get after the switch: exit %d\n%s", code, out)
	}

	r2 := rc.start(t, p, nil)
	for _, tc := range []struct {
		run     *model.Run
		version int64
		log     string
		notLog  string
	}{
		{r1, 1, "v1", "v2"},
		{r2, 2, "v2", "v1"},
	} {
		done := rc.wait(t, p, tc.run.RunID, 90*time.Second)
		if done.Status != model.RunStatusSuccessful || done.ConfigVersion != tc.version {
			t.Errorf("run %d: status %s on version %d, want successful on version %d\n%s",
				done.RunID, done.Status, done.ConfigVersion, tc.version, rc.describe(p, done.RunID))
		}
		if logs := runsLogs(t, rc.cl, p, done.RunID, "work"); !strings.Contains(logs, tc.log) || strings.Contains(logs, tc.notLog) {
			t.Errorf("run %d (version %d) logged %q, want %q", done.RunID, tc.version, logs, tc.log)
		}
	}

	out, code = rc.cli(t, url, "pipeline", "rollback", p)
	if code != 0 || !strings.Contains(out, "pipeline release: version 2 → 1 (deployment 3)") {
		t.Fatalf("gofer pipeline rollback: exit %d\n%s", code, out)
	}
	pl, err := rc.cl.GetPipeline(ctx, p)
	if err != nil || pl.LiveVersion != 1 || pl.LastDeployment != 3 {
		t.Fatalf("after the rollback: %+v %v; want version 1 live after deployment 3", pl, err)
	}
	t.Logf("gofer pipeline rollback %s:\n%s", p, out)
	for _, args := range [][]string{{"pipeline", "get", p}, {"pipeline", "deployment", "list", p}, {"pipeline", "deployment", "get", p, "3"}} {
		out, code := rc.cli(t, url, args...)
		if code != 0 {
			t.Errorf("gofer %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		t.Logf("gofer %s:\n%s", strings.Join(args, " "), out)
	}
	deployments, err := rc.cl.ListDeployments(ctx, p, client.Page{})
	if err != nil || len(deployments) != 3 {
		t.Fatalf("deployments: %+v %v", deployments, err)
	}
	for _, d := range deployments {
		if d.DeploymentID == 3 && (d.StartVersion != 2 || d.EndVersion != 1 || d.State != model.DeploymentStateComplete ||
			d.Status != model.DeploymentStatusSuccess) {
			t.Errorf("the rollback's deployment: %+v, want version 2 → 1, complete and successful", d)
		}
	}

	r3 := rc.start(t, p, nil)
	done := rc.wait(t, p, r3.RunID, 90*time.Second)
	if done.Status != model.RunStatusSuccessful || done.ConfigVersion != 1 {
		t.Errorf("run after the rollback: status %s on version %d, want successful on version 1\n%s", done.Status, done.ConfigVersion, rc.describe(p, done.RunID))
	}
	if logs := runsLogs(t, rc.cl, p, done.RunID, "work"); !strings.Contains(logs, "v1") {
		t.Errorf("run after the rollback logged %q, want v1", logs)
	}

	// gofer up takes the same strategy: version 3 replaces version 1 at
	// once, and the hint names the rollback command.
	raw, err := json.Marshal(version("v3"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pipeline.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = rc.cli(t, url, "up", path, "--strategy", "immediate")
	if code != 0 || !strings.Contains(out, "Deployed version 3 (it replaces version 1; roll back with: gofer pipeline rollback release)") {
		t.Errorf("gofer up --strategy immediate: exit %d\n%s", code, out)
	}
	if pl, err := rc.cl.GetPipeline(ctx, p); err != nil || pl.LiveVersion != 3 {
		t.Errorf("after gofer up: %+v %v; want version 3 live", pl, err)
	}

	// A pipeline whose first version is live has nothing to roll back
	// to: refused, nothing written.
	first := &sdk.PipelineConfig{ID: "release-first", Name: "first", Tasks: []*sdk.TaskConfig{runsSh("work", "true")}}
	rc.deploy(t, first)
	out, code = rc.cli(t, url, "pipeline", "rollback", first.ID)
	if code != 1 || !strings.Contains(out, "no version was live before it: nothing to roll back to") {
		t.Errorf("rollback of a first version: exit %d\n%s", code, out)
	}
	if pl, err := rc.cl.GetPipeline(ctx, first.ID); err != nil || pl.LiveVersion != 1 || pl.LastDeployment != 1 {
		t.Errorf("a refused rollback changed the pipeline: %+v %v", pl, err)
	}

	// Run again with the key of a rollback that applied (as after an
	// unknown outcome), a rollback does not roll back the rollback: the
	// key refuses the different deploy and the CLI says why.
	first.Name = "first v2"
	rc.deploy(t, first)
	for i, want := range []string{"pipeline release-first: version 2 → 1 (deployment 3)", "the rollback with this --idempotency-key already applied: version 1 is live now"} {
		out, code := rc.cli(t, url, "--idempotency-key", "rollback-first", "pipeline", "rollback", first.ID)
		if (code == 0) != (i == 0) || !strings.Contains(out, want) {
			t.Errorf("rollback %d with the same key: exit %d\n%s", i+1, code, out)
		}
	}
	if pl, err := rc.cl.GetPipeline(ctx, first.ID); err != nil || pl.LiveVersion != 1 || pl.LastDeployment != 3 {
		t.Errorf("after a rollback rerun with its key: %+v %v; want version 1 live after deployment 3", pl, err)
	}
	rc.noContainersLeft(t, 40*time.Second)
}
