package fsm

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/canary"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// events returns the events of kind, oldest first.
func (x *runFixture) events(kind string) []*model.Event {
	x.t.Helper()
	var evs []*model.Event
	if err := x.f.View(func(tx *bbolt.Tx) (err error) {
		evs, err = store.ListEvents(tx, store.Page{Limit: store.MaxLimit}, func(e *model.Event) bool { return e.Kind == kind })
		return err
	}); err != nil {
		x.t.Fatal(err)
	}
	return evs
}

// detailsJSON is an event's details as stored.
func detailsJSON(t *testing.T, e *model.Event) string {
	t.Helper()
	b, err := json.Marshal(e.Details)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReleaseStepEvents: every step of a release is an event with the
// numbers it was taken on: an immediate deploy (started, switched,
// completed), a canary's start with its policy, each counted run with the
// running totals, and the decision with the evidence and the switch.
func TestReleaseStepEvents(t *testing.T) {
	x := newRunFixture(t) // deploys version 1 immediately
	if got := x.events(model.EventSwitchedLiveVersion); len(got) != 1 ||
		detailsJSON(t, got[0]) != `{"deployment_id":1,"from_version":0,"namespace_id":"default","pipeline_id":"dag","strategy":"immediate","to_version":1}` {
		t.Fatalf("immediate deploy's switch events: %v", got)
	}
	if got := x.events(model.EventCompletedDeployment); len(got) != 1 || got[0].Details.String("live_version") != "1" ||
		got[0].Details.String("strategy") != "immediate" {
		t.Fatalf("immediate deploy's completed_deployment: %v", got)
	}

	x = newCanaryFixture(t)
	started := x.events(model.EventStartedDeployment)
	if len(started) != 2 || detailsJSON(t, started[1]) != `{"canary_duration":"10m0s","canary_percent":50,"canary_runs":2,"canary_version":2,`+
		`"deployment_id":2,"end_version":2,"max_failure_increase":"10","namespace_id":"default","pipeline_id":"dag","stable_version":1,"start_version":1,"strategy":"canary"}` {
		t.Fatalf("canary start events: %v", started)
	}
	var stable, canaryArm [2]int64 // completed, failed
	for i := range 6 {
		r := x.newRun()
		status := []model.RunStatus{model.RunStatusSuccessful, model.RunStatusFailed, model.RunStatusCancelled}[i%3]
		before := len(x.events(model.EventCountedCanaryRun))
		x.endRun(r, status)
		arm, name := &stable, "stable"
		if r.Canary {
			arm, name = &canaryArm, "canary"
		}
		counted := x.events(model.EventCountedCanaryRun)
		if status == model.RunStatusCancelled {
			if len(counted) != before {
				t.Fatalf("cancelled run %d was counted: %v", r.RunID, counted[len(counted)-1].Details)
			}
			continue
		}
		if len(counted) != before+1 {
			t.Fatalf("run %d (%s): %d counted_canary_run events, want one more than %d", r.RunID, status, len(counted), before)
		}
		arm[0]++
		if status == model.RunStatusFailed {
			arm[1]++
		}
		e := counted[len(counted)-1]
		d := e.Details
		for k, want := range map[string]int64{"run_id": r.RunID, "deployment_id": 2, "version": r.ConfigVersion, "canary_runs": 2,
			"stable_completed": stable[0], "stable_failed": stable[1], "canary_completed": canaryArm[0], "canary_failed": canaryArm[1]} {
			if got, ok := d.Int(k); !ok || got != want {
				t.Fatalf("run %d: counted_canary_run %s = %v, want %d (%v)", r.RunID, k, d[k], want, d)
			}
		}
		if d.String("arm") != name || d.String("status") != string(status) || e.PipelineID != "dag" || e.NamespaceID != "default" {
			t.Fatalf("run %d (%s, %s): counted_canary_run %v", r.RunID, name, status, d)
		}
		if _, ok := d.Int("duration_ms"); !ok {
			t.Fatalf("run %d: counted_canary_run without duration_ms: %v", r.RunID, d)
		}
	}
	if n := len(x.events(model.EventCountedCanaryRun)); n != 4 {
		t.Fatalf("%d counted_canary_run events for 4 counted runs", n)
	}

	x.ok(CmdDeploymentDecide, DeploymentDecide{NamespaceID: "default", PipelineID: "dag", DeploymentID: 2,
		Outcome: model.CanaryPromote, Reason: "healthy", Actor: "canary-watcher", At: 5})
	dec := x.events(model.EventCompletedDeployment)
	d := dec[len(dec)-1].Details
	for k, want := range map[string]int64{"stable_completed": stable[0], "stable_failed": stable[1], "canary_completed": canaryArm[0],
		"canary_failed": canaryArm[1], "live_version": 2, "stable_version": 1, "canary_version": 2} {
		if got, ok := d.Int(k); !ok || got != want {
			t.Fatalf("decision event %s = %v, want %d (%v)", k, d[k], want, d)
		}
	}
	if d.String("outcome") != model.CanaryPromote || d.String("decided_by") != "canary-watcher" || d.String("reason") != "healthy" {
		t.Fatalf("decision event: %v", d)
	}
	if _, ok := d.Int("canary_p95_ms"); canaryArm[0] > 0 && !ok {
		t.Fatalf("decision event lacks the canary p95: %v", d)
	}
	sw := x.events(model.EventSwitchedLiveVersion)
	if last := sw[len(sw)-1]; len(sw) != 2 ||
		detailsJSON(t, last) != `{"deployment_id":2,"from_version":1,"namespace_id":"default","pipeline_id":"dag","strategy":"canary","to_version":2}` {
		t.Fatalf("promotion's switch events: %v", sw)
	}
}

// A canary rolled back or aborted changes nothing live: no switch event.
func TestCanaryRollbackEmitsNoSwitch(t *testing.T) {
	for _, outcome := range []string{model.CanaryRollback, model.CanaryAbort} {
		x := newCanaryFixture(t)
		x.ok(CmdDeploymentDecide, DeploymentDecide{NamespaceID: "default", PipelineID: "dag", DeploymentID: 2, Outcome: outcome, At: 5})
		if sw := x.events(model.EventSwitchedLiveVersion); len(sw) != 1 {
			t.Fatalf("%s: switch events %v; want only the first deploy's", outcome, sw)
		}
		dec := x.events(model.EventCompletedDeployment)
		if d := dec[len(dec)-1].Details; d.String("outcome") != outcome || d.String("live_version") != "1" || d.String("canary_completed") != "0" {
			t.Fatalf("%s: decision event %v", outcome, d)
		}
	}
}

// TestCanaryEvidenceFollowsEnvelopeVersion: a canary's run finishes
// written at envelope version 3 (by the binaries that kept durations in
// the record) store what those binaries stored — the duration appended to
// the record, no counted_canary_run event — so replaying them agrees with
// the nodes that applied them first; version 4 finishes of the same
// deployment keep theirs under per-run keys, and every reader (the API's
// view, the decision's p95) sees both.
func TestCanaryEvidenceFollowsEnvelopeVersion(t *testing.T) {
	x := newRunFixture(t)
	x.b.version = envelopeVersionTyped
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default",
		Config: &sdk.PipelineConfig{ID: "dag", Name: "DAG v2", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox"}}}})
	pol := model.CanaryPolicy{Percent: 99, Runs: 100, Duration: "10m", MaxFailureIncrease: 10}
	x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2, Strategy: model.DeploymentStrategyCanary, Canary: &pol})
	if s := x.events(model.EventStartedDeployment); s[len(s)-1].Details.String("stable_version") != "" {
		t.Fatalf("version 3 canary start carries version 4 fields: %v", s[len(s)-1].Details)
	}
	finish := func(n int) (canaryRuns int) {
		for range n {
			r := x.newRun()
			x.endRun(r, model.RunStatusSuccessful)
			if r.Canary {
				canaryRuns++
			}
		}
		return canaryRuns
	}
	old := finish(4)
	rec := x.record(2).Canary
	if len(rec.Canary.DurationsMillis) != old || old == 0 {
		t.Fatalf("version 3: record holds %d durations for %d canary runs", len(rec.Canary.DurationsMillis), old)
	}
	if n := len(x.keyedDurations(2)); n != 0 {
		t.Fatalf("version 3 finishes wrote %d per-run keys", n)
	}
	if n := len(x.events(model.EventCountedCanaryRun)); n != 0 {
		t.Fatalf("version 3 finishes emitted %d counted_canary_run events", n)
	}

	x.b.version = 0 // the current version
	fresh := finish(4)
	rec = x.record(2).Canary
	if len(rec.Canary.DurationsMillis) != old || rec.Canary.Completed != old+fresh {
		t.Fatalf("version 4: record %+v; want its %d old durations and %d counted", rec.Canary, old, old+fresh)
	}
	keyed := x.keyedDurations(2)
	if len(keyed) != fresh {
		t.Fatalf("version 4: %d per-run keys for %d canary runs", len(keyed), fresh)
	}
	all := x.deployment(2).Canary.Canary.DurationsMillis
	if want := append(slices.Clone(rec.Canary.DurationsMillis), keyed...); !slices.Equal(all, want) {
		t.Fatalf("durations read %v; want the record's then the keyed ones %v", all, want)
	}
	x.ok(CmdDeploymentDecide, DeploymentDecide{NamespaceID: "default", PipelineID: "dag", DeploymentID: 2, Outcome: model.CanaryRollback, At: 5})
	ds := make([]time.Duration, len(all))
	for i, ms := range all {
		ds[i] = time.Duration(ms) * time.Millisecond
	}
	dec := x.events(model.EventCompletedDeployment)
	if got, _ := dec[len(dec)-1].Details.Int("canary_p95_ms"); got != canary.P95(ds).Milliseconds() {
		t.Fatalf("decision p95 %d ms; want %d over all %d durations", got, canary.P95(ds).Milliseconds(), len(ds))
	}
}

// TestCanaryKeepsTheFirstMaxRunsDurations: past MaxRuns counted canary
// runs a run finish still counts but keeps no duration, as before (the
// count then says how many durations exist, wherever they are).
func TestCanaryKeepsTheFirstMaxRunsDurations(t *testing.T) {
	x := newCanaryFixture(t)
	x.f.Flush()
	if err := x.f.DB().Update(func(tx *bbolt.Tx) error {
		d, err := store.GetDeployment(tx, "default", "dag", 2)
		if err != nil {
			return err
		}
		d.Canary.Policy.Runs = canary.MaxRuns
		d.Canary.Canary.Completed = canary.MaxRuns - 1
		return store.PutDeployment(tx, d)
	}); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for counted := 0; counted < 2; {
		r := x.newRun()
		x.endRun(r, model.RunStatusSuccessful)
		if !r.Canary {
			continue
		}
		counted++
		if n := len(x.keyedDurations(2)); n != 1 {
			t.Fatalf("after canary run %d of %d: %d durations kept; want 1 (the MaxRuns-th)", canary.MaxRuns-1+counted, canary.MaxRuns, n)
		}
		kept++
	}
	if c := x.record(2).Canary.Canary.Completed; c != canary.MaxRuns+1 || kept != 2 {
		t.Fatalf("counted %d canary runs; want %d", c, canary.MaxRuns+1)
	}
}

func (x *runFixture) keyedDurations(id int64) []int64 {
	x.t.Helper()
	var out []int64
	x.f.View(func(tx *bbolt.Tx) error { out = store.CanaryDurations(tx, "default", "dag", id); return nil })
	return out
}
