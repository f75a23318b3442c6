package fsm

import (
	"errors"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/canary"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

var testCanaryPolicy = model.CanaryPolicy{Percent: 50, Runs: 2, Duration: "10m", MaxFailureIncrease: 10}

// newCanaryFixture is runFixture with version 2 registered and a canary
// deployment (id 2) of it started over live version 1.
func newCanaryFixture(t *testing.T) *runFixture {
	x := newRunFixture(t)
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG v2", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox"}}}
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg})
	pol := testCanaryPolicy
	d := x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2,
		Strategy: model.DeploymentStrategyCanary, Canary: &pol}).(*model.Deployment)
	if d.DeploymentID != 2 || d.State != model.DeploymentStateRunning || d.Canary.StableVersion != 1 || d.Canary.CanaryVersion != 2 {
		t.Fatalf("canary deployment: %+v %+v", d, d.Canary)
	}
	return x
}

func (x *runFixture) pipeline() *model.Pipeline {
	x.t.Helper()
	var p *model.Pipeline
	x.f.View(func(tx *bbolt.Tx) (err error) { p, err = store.GetPipeline(tx, "default", "dag"); return err })
	return p
}

// deployment reads a deployment as the API answers it: its canary
// durations gathered from the per-run keys.
func (x *runFixture) deployment(id int64) *model.Deployment {
	x.t.Helper()
	var d *model.Deployment
	x.f.View(func(tx *bbolt.Tx) (err error) {
		d, err = store.GetDeployment(tx, "default", "dag", id)
		store.WithCanaryDurations(tx, d)
		return err
	})
	return d
}

// record reads a deployment record as stored.
func (x *runFixture) record(id int64) *model.Deployment {
	x.t.Helper()
	var d *model.Deployment
	x.f.View(func(tx *bbolt.Tx) (err error) { d, err = store.GetDeployment(tx, "default", "dag", id); return err })
	return d
}

func (x *runFixture) newRun() *model.Run {
	x.t.Helper()
	return x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"}).(*RunCreated).Run
}

// endRun takes every task of run r to status and the run to the
// matching run status.
func (x *runFixture) endRun(r *model.Run, status model.RunStatus) {
	x.t.Helper()
	ts := model.TaskStatusSuccessful
	switch status {
	case model.RunStatusFailed:
		ts = model.TaskStatusFailed
	case model.RunStatusCancelled:
		ts = model.TaskStatusCancelled
	}
	x.ok(CmdRunStart, RunStart{RunRef: ref(r.RunID, "").RunRef})
	var tasks []*model.TaskExecution
	x.f.View(func(tx *bbolt.Tx) (err error) {
		tasks, err = store.ListTasks(tx, "default", "dag", r.RunID)
		return err
	})
	for _, t := range tasks {
		x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: ref(r.RunID, t.TaskID), Attempt: 1, Container: "c"})
		x.ok(CmdTaskFinish, TaskFinish{TaskRef: ref(r.RunID, t.TaskID), Attempt: 1, Status: ts})
	}
	x.ok(CmdRunFinish, RunFinish{RunRef: ref(r.RunID, "").RunRef, Status: status})
}

func TestCanaryStartKeepsLiveVersionAndSplitsRunsDeterministically(t *testing.T) {
	x := newCanaryFixture(t)
	if p := x.pipeline(); p.LiveVersion != 1 || p.ActiveCanary != 2 {
		t.Fatalf("pipeline after canary start: live %d, active canary %d; want 1, 2", p.LiveVersion, p.ActiveCanary)
	}
	pol, err := CanaryPolicy(&testCanaryPolicy)
	if err != nil {
		t.Fatal(err)
	}
	var arms [2]int
	for range 20 {
		r := x.newRun()
		want := canary.Assign(pol, 2, r.RunID)
		wantVersion := int64(1)
		if want {
			wantVersion = 2
			arms[1]++
		} else {
			arms[0]++
		}
		if r.DeploymentID != 2 || r.Canary != want || r.ConfigVersion != wantVersion {
			t.Fatalf("run %d: deployment %d canary %v version %d; want 2 %v %d", r.RunID, r.DeploymentID, r.Canary, r.ConfigVersion, want, wantVersion)
		}
		if n := len(x.tasksOf(r.RunID)); (want && n != 1) || (!want && n != 2) {
			t.Fatalf("run %d (canary %v) has %d tasks: not the assigned version's", r.RunID, want, n)
		}
	}
	if arms[0] == 0 || arms[1] == 0 {
		t.Fatalf("20 runs at 50%% all went one way: %v", arms)
	}
}

func (x *runFixture) tasksOf(run int64) []*model.TaskExecution {
	x.t.Helper()
	var tasks []*model.TaskExecution
	x.f.View(func(tx *bbolt.Tx) (err error) { tasks, err = store.ListTasks(tx, "default", "dag", run); return err })
	return tasks
}

func TestCanaryCountsFinishedRunsPerArm(t *testing.T) {
	x := newCanaryFixture(t)
	var want model.DeploymentCanary
	for i := range 12 {
		r := x.newRun()
		status := []model.RunStatus{model.RunStatusSuccessful, model.RunStatusFailed, model.RunStatusCancelled}[i%3]
		x.endRun(r, status)
		arm := &want.Stable
		if r.Canary {
			arm = &want.Canary
		}
		if status != model.RunStatusCancelled {
			arm.Completed++
			if status == model.RunStatusFailed {
				arm.Failed++
			}
		}
	}
	got := x.deployment(2).Canary
	if got.Stable.Completed != want.Stable.Completed || got.Stable.Failed != want.Stable.Failed ||
		got.Canary.Completed != want.Canary.Completed || got.Canary.Failed != want.Canary.Failed {
		t.Fatalf("counts: stable %+v canary %+v; want stable %+v canary %+v", got.Stable, got.Canary, want.Stable, want.Canary)
	}
	if len(got.Canary.DurationsMillis) != got.Canary.Completed || len(got.Stable.DurationsMillis) != 0 {
		t.Fatalf("durations: canary %v for %d runs, stable %v", got.Canary.DurationsMillis, got.Canary.Completed, got.Stable.DurationsMillis)
	}
	// The record itself keeps counts only: durations are under per-run
	// keys, so a run finish does not rewrite them all.
	if rec := x.record(2).Canary; len(rec.Canary.DurationsMillis) != 0 || rec.Canary.Completed != got.Canary.Completed {
		t.Fatalf("record: %+v; want the counts without durations", rec.Canary)
	}
	if want.Canary.Completed+want.Stable.Completed != 8 {
		t.Fatalf("cancelled runs counted: %+v", want)
	}
}

func TestCanaryPromoteMakesCanaryLiveAndSecondDecisionIsRefused(t *testing.T) {
	x := newCanaryFixture(t)
	decide := DeploymentDecide{NamespaceID: "default", PipelineID: "dag", DeploymentID: 2, Outcome: model.CanaryPromote, Reason: "healthy", At: 5}
	d := x.ok(CmdDeploymentDecide, decide).(*model.Deployment)
	if d.State != model.DeploymentStateComplete || d.Status != model.DeploymentStatusSuccess || d.Canary.Decision.Outcome != model.CanaryPromote ||
		d.Canary.Decision.Actor != "test" || d.Canary.Decision.At != 5 {
		t.Fatalf("decided deployment: %+v %+v", d, d.Canary.Decision)
	}
	if p := x.pipeline(); p.LiveVersion != 2 || p.ActiveCanary != 0 {
		t.Fatalf("after promote: live %d, active canary %d", p.LiveVersion, p.ActiveCanary)
	}
	for _, outcome := range []string{model.CanaryRollback, model.CanaryPromote, model.CanaryAbort} {
		decide.Outcome = outcome
		res := x.apply(CmdDeploymentDecide, decide)
		if !errors.Is(res.Err, ErrAlreadyDecided) || !errors.Is(res.Err, ErrConflict) {
			t.Fatalf("second decision %s: %v, want ErrAlreadyDecided", outcome, res.Err)
		}
	}
	if r := x.newRun(); r.DeploymentID != 0 || r.Canary || r.ConfigVersion != 2 {
		t.Fatalf("run after promote: %+v", r)
	}
}

func TestCanaryRollbackAndAbortKeepStableLive(t *testing.T) {
	for _, outcome := range []string{model.CanaryRollback, model.CanaryAbort} {
		x := newCanaryFixture(t)
		d := x.ok(CmdDeploymentDecide, DeploymentDecide{NamespaceID: "default", PipelineID: "dag", DeploymentID: 2, Outcome: outcome, Reason: "r", Actor: "alice"}).(*model.Deployment)
		if d.Status != model.DeploymentStatusFailed || d.Canary.Decision.Actor != "alice" {
			t.Fatalf("%s: %+v %+v", outcome, d, d.Canary.Decision)
		}
		if p := x.pipeline(); p.LiveVersion != 1 || p.ActiveCanary != 0 {
			t.Fatalf("%s: live %d, active canary %d", outcome, p.LiveVersion, p.ActiveCanary)
		}
		// A run finishing after the decision counts nowhere.
		if r := x.newRun(); r.DeploymentID != 0 || r.ConfigVersion != 1 {
			t.Fatalf("%s: run after decision: %+v", outcome, r)
		}
	}
}

func TestCanaryRefusals(t *testing.T) {
	x := newCanaryFixture(t)
	pol := testCanaryPolicy
	x.refused(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2, Strategy: "canary", Canary: &pol}, ErrConflict)
	x.refused(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2}, ErrConflict)
	x.refused(CmdConfigDelete, ConfigDelete{NamespaceID: "default", PipelineID: "dag", Version: 2}, ErrConflict)
	x.refused(CmdDeploymentDecide, DeploymentDecide{NamespaceID: "default", PipelineID: "dag", DeploymentID: 2, Outcome: "maybe"}, ErrInvalid)
	x.refused(CmdDeploymentDecide, DeploymentDecide{NamespaceID: "default", PipelineID: "dag", DeploymentID: 1, Outcome: "promote"}, ErrConflict)
	x.refused(CmdDeploymentDecide, DeploymentDecide{NamespaceID: "default", PipelineID: "dag", DeploymentID: 9, Outcome: "promote"}, ErrNotFound)

	y := newRunFixture(t)
	y.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: &sdk.PipelineConfig{ID: "dag", Name: "v2", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox"}}}})
	bad := model.CanaryPolicy{Percent: 100, Runs: 0, Duration: "soon", MaxFailureIncrease: 10}
	res := y.apply(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2, Strategy: "canary", Canary: &bad})
	if !errors.Is(res.Err, ErrInvalid) || !strings.Contains(res.Err.Error(), "canary_duration") {
		t.Fatalf("bad duration: %v", res.Err)
	}
	bad.Duration = "1m"
	res = y.apply(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2, Strategy: "canary", Canary: &bad})
	if !errors.Is(res.Err, ErrInvalid) || !strings.Contains(res.Err.Error(), "canary_percent") || !strings.Contains(res.Err.Error(), "canary_runs") {
		t.Fatalf("bad policy: %v", res.Err)
	}
	y.refused(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2, Strategy: "blue-green"}, ErrInvalid)
	y.refused(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2, Strategy: "canary"}, ErrInvalid)
	if p := y.pipeline(); p.LiveVersion != 1 || p.ActiveCanary != 0 || p.LastDeployment != 1 {
		t.Fatalf("refused deploys changed the pipeline: %+v", p)
	}
}

// Entries written before canaries existed (and immediate deployments)
// store exactly what they did: no strategy, canary or run split fields.
func TestCanaryFieldsAbsentFromOldAndImmediateRecords(t *testing.T) {
	for _, v := range []byte{envelopeVersion, envelopeVersionHash, envelopeVersionTyped} {
		state := applyAtVersion(t, v)
		for _, field := range []string{`"strategy"`, `"canary"`, `"active_canary"`} {
			if strings.Contains(state, field) {
				t.Fatalf("version %d: state holds %s:\n%s", v, field, state)
			}
		}
	}
}

// Registering a version with retention must not prune the active
// canary's version: runs split to it read its config, and a promote makes
// it live.
func TestCanaryVersionSurvivesRetentionPruning(t *testing.T) {
	x := newCanaryFixture(t)
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG v3", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox"}}}
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg, Retention: 2})
	var kept []int64
	x.f.View(func(tx *bbolt.Tx) error { kept = store.ConfigVersions(tx, "default", "dag"); return nil })
	if len(kept) != 3 || kept[0] != 1 || kept[1] != 2 || kept[2] != 3 {
		t.Fatalf("versions after registering v3 with retention 2 during a canary of v2 over v1: %v; want [1 2 3]", kept)
	}
	var sawCanary bool
	for range 10 {
		r := x.newRun()
		sawCanary = sawCanary || r.ConfigVersion == 2
	}
	if !sawCanary {
		t.Fatal("10 runs at 50% never took the canary version")
	}
	x.ok(CmdDeploymentDecide, DeploymentDecide{NamespaceID: "default", PipelineID: "dag", DeploymentID: 2, Outcome: model.CanaryPromote})
	if p := x.pipeline(); p.LiveVersion != 2 {
		t.Fatalf("live version after promote: %d; want 2", p.LiveVersion)
	}
}

// corruptCanaryPolicy stores deployment id's policy with a duration that
// CanaryPolicy refuses, standing in for a policy a later, stricter
// Validate would refuse.
func (x *runFixture) corruptCanaryPolicy(id int64) {
	x.t.Helper()
	x.f.Flush()
	if err := x.f.DB().Update(func(tx *bbolt.Tx) error {
		d, err := store.GetDeployment(tx, "default", "dag", id)
		if err != nil {
			return err
		}
		d.Canary.Policy.Duration = "forever"
		return store.PutDeployment(tx, d)
	}); err != nil {
		x.t.Fatal(err)
	}
}

// Run creation splits on the stored percent, validated when the canary
// started; it does not validate the policy again, so a stricter Validate
// in a later version cannot change what replaying a run creation does.
func TestCanaryRunCreationDoesNotRevalidateThePolicy(t *testing.T) {
	x := newCanaryFixture(t)
	x.corruptCanaryPolicy(2)
	pol := canary.Policy{Percent: testCanaryPolicy.Percent}
	for range 10 {
		r := x.newRun()
		if want := canary.Assign(pol, 2, r.RunID); r.DeploymentID != 2 || r.Canary != want {
			t.Fatalf("run %d: deployment %d canary %v; want 2 %v", r.RunID, r.DeploymentID, r.Canary, want)
		}
	}
}

// A retry of a run of the active canary deployment keeps the original's
// arm, version and deployment, whatever its own run id would hash to,
// and counts as that arm's evidence. A retry of a run from before the
// canary is split like any new run.
func TestCanaryRetryKeepsTheOriginalArm(t *testing.T) {
	x := newRunFixture(t)
	before := x.newRun() // version 1, no canary yet
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG v2", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox"}}}
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg})
	pol := testCanaryPolicy
	x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2,
		Strategy: model.DeploymentStrategyCanary, Canary: &pol})
	split := canary.Policy{Percent: pol.Percent}
	originals := map[bool]*model.Run{}
	for len(originals) < 2 {
		r := x.newRun()
		originals[r.Canary] = r
	}
	retry := func(of int64) *model.Run {
		t.Helper()
		return x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", RetryOf: of}).(*RunCreated).Run
	}
	for _, arm := range []bool{false, true} {
		orig := originals[arm]
		x.endRun(orig, model.RunStatusFailed)
		// Retry until one retry's own id would have been split the
		// other way.
		for crossed := false; !crossed; {
			r := retry(orig.RunID)
			crossed = canary.Assign(split, 2, r.RunID) != arm
			if r.DeploymentID != 2 || r.Canary != arm || r.ConfigVersion != orig.ConfigVersion || r.RetryOf != orig.RunID {
				t.Fatalf("retry %d of run %d (canary %v, version %d): deployment %d canary %v version %d",
					r.RunID, orig.RunID, arm, orig.ConfigVersion, r.DeploymentID, r.Canary, r.ConfigVersion)
			}
			if n := len(x.tasksOf(r.RunID)); n != len(x.tasksOf(orig.RunID)) {
				t.Fatalf("retry %d has %d tasks, the original %d: not the original's version", r.RunID, n, len(x.tasksOf(orig.RunID)))
			}
			x.endRun(r, model.RunStatusSuccessful)
		}
	}
	d := x.deployment(2)
	if d.Canary.Canary.Failed != 1 || d.Canary.Stable.Failed != 1 || d.Canary.Canary.Completed < 2 || d.Canary.Stable.Completed < 2 {
		t.Fatalf("evidence: stable %+v canary %+v; want each arm's failed original and its successful retries", d.Canary.Stable, d.Canary.Canary)
	}
	r := retry(before.RunID)
	if want := canary.Assign(split, 2, r.RunID); r.DeploymentID != 2 || r.Canary != want {
		t.Fatalf("retry %d of pre-canary run %d: deployment %d canary %v; want a fresh split (2, %v)", r.RunID, before.RunID, r.DeploymentID, r.Canary, want)
	}
}
