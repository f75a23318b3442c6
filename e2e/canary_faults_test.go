package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/canary"
	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestCanaryLeaderSIGKILLDecidesOnce: a canary of a failing version 2 on
// three nodes spans a SIGKILL of the leader — two canary runs completed
// and a third one running when the leader dies, no decision yet. The new
// leader's watcher carries on from committed state: runs keep being
// started (each with its own idempotency key, retried until acknowledged)
// until the canary is decided. Afterwards:
//   - exactly one decision: one completed_deployment event for the
//     deployment in the whole event log, made by the canary watcher, the
//     record's status and the live version agreeing with its outcome, and
//     every node (the killed one restarted) serving that same decision;
//   - the record's counts are the committed run results: per arm, the
//     completed_run events of the deployment's runs before the decision
//     event, each run finished once (none counted twice after the
//     failover), cancelled runs nowhere;
//   - every acknowledged start is one run, and each run of the deployment
//     ran the version of the arm canary.Assign gives it.
func TestCanaryLeaderSIGKILLDecidesOnce(t *testing.T) {
	rc := runsNewCluster(t, 3, "GOFER_WEB_SERVER__LOG_LEVEL=debug")
	ctx := context.Background()
	const p = "canary-failover"
	// Runs take two seconds, so one is still running when the leader dies.
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{runsSh("check", "sleep 2")}})
	if _, err := rc.cl.RegisterConfig(ctx, &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{runsSh("check", "sleep 2; exit 1")}}); err != nil {
		t.Fatalf("register version 2: %v", err)
	}
	// Decided on 4 canary runs. Every canary run fails and the stable
	// ones succeed; with 90 points allowed, even the early rollback needs
	// all 4 to have failed (3 of 4 is 75%), so nothing is decided before
	// the fourth canary run completes.
	const canaryRuns = 4
	policy := fmt.Sprintf(`{"strategy": "canary", "canary": {"canary_percent": 50, "canary_runs": %d, "canary_duration": "30m", "max_failure_increase": 90}}`, canaryRuns)
	body := canaryExpect(t, http.MethodPost, canaryPipelineURL(rc, p)+"/configs/2", rc.Token, policy, http.StatusCreated, `"canary_version":2`)
	var created struct{ Deployment model.Deployment }
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	id := created.Deployment.DeploymentID

	// Every start carries its own key and is retried with it until
	// acknowledged (the failover client moves to another node).
	acked := map[string]int64{}
	start := func() *model.Run {
		t.Helper()
		key := fmt.Sprintf("canary-failover-%d", len(acked)+1)
		var r *model.Run
		WaitFor(t, 60*time.Second, func() (err error) {
			r, err = rc.cl.StartRunWithKey(ctx, p, key, nil)
			return err
		})
		acked[key] = r.RunID
		return r
	}
	deployment := func() *model.Deployment {
		t.Helper()
		var d *model.Deployment
		WaitFor(t, 60*time.Second, func() (err error) {
			d, err = rc.cl.GetDeployment(ctx, p, id)
			return err
		})
		return d
	}

	// Before the kill: runs one after another until two canary runs
	// completed (a third would leave too few for a canary in flight).
	for deployment().Canary.Canary.Completed < 2 {
		if len(acked) >= 30 {
			t.Fatalf("30 runs and fewer than 2 canary runs completed: %+v", deployment().Canary)
		}
		r := start()
		rc.wait(t, p, r.RunID, 90*time.Second)
	}
	inFlight := start()
	// (Under load the task may be over by the time it is seen: the kill
	// then lands before its run's result is recorded, or just after.)
	rc.waitTask(t, p, inFlight.RunID, "check", 60*time.Second, "running", func(te *model.TaskExecution) bool {
		return te.State == model.TaskStateRunning || te.Terminal()
	})
	before := deployment()
	if before.Canary.Decision != nil {
		t.Fatalf("the canary was decided before the kill: %+v", before.Canary)
	}
	old := rc.Leader()
	old.Kill()
	leader := rc.Leader(old)
	t.Logf("SIGKILLed leader %s with run %d (canary %v) running and counts stable %+v, canary %+v; %s took over",
		old.Name, inFlight.RunID, inFlight.Canary, before.Canary.Stable, before.Canary.Canary, leader.Name)
	old.Start()

	// After it: the run in flight completes under the new leader, then
	// runs one after another until the decision is due (the fourth canary
	// run completed); the watcher must then record it.
	rc.wait(t, p, inFlight.RunID, 90*time.Second)
	for d := deployment(); d.Canary.Decision == nil && d.Canary.Canary.Completed < canaryRuns; d = deployment() {
		if len(acked) >= 40 {
			t.Fatalf("40 runs and the canary is neither decided nor due: %+v", d.Canary)
		}
		r := start()
		rc.wait(t, p, r.RunID, 90*time.Second)
	}
	var d *model.Deployment
	WaitFor(t, 60*time.Second, func() error {
		if d = deployment(); d.Canary.Decision == nil {
			return fmt.Errorf("%d canary runs completed and no decision yet: %+v", d.Canary.Canary.Completed, d.Canary)
		}
		return nil
	})
	rc.WaitForMembers(3)

	// The outcome follows the rule from the counts it was taken on: the
	// canary fails every run, so it is rolled back unless the stable
	// version failed too (a run lost in the failover), by 10 points or
	// more.
	dec := d.Canary.Decision
	wantOutcome, wantStatus, wantLive := model.CanaryRollback, model.DeploymentStatusFailed, int64(1)
	if st := d.Canary.Stable; st.Completed > 0 && 100*st.Failed >= 10*st.Completed {
		wantOutcome, wantStatus, wantLive = model.CanaryPromote, model.DeploymentStatusSuccess, 2
	}
	if dec.Outcome != wantOutcome || dec.Actor != "canary-watcher" || d.Status != wantStatus || d.State != model.DeploymentStateComplete {
		t.Fatalf("decision %+v, state %s, status %s; want %s by canary-watcher (counts stable %+v, canary %+v)",
			dec, d.State, d.Status, wantOutcome, d.Canary.Stable, d.Canary.Canary)
	}
	if d.Canary.Canary.Completed != canaryRuns || d.Canary.Canary.Failed != canaryRuns {
		t.Errorf("canary arm %+v: decided on %d failed canary runs, want %d of %d", d.Canary.Canary, d.Canary.Canary.Failed, canaryRuns, canaryRuns)
	}
	canaryWantLive(t, rc, p, wantLive)
	t.Logf("decided %s by %s: %s", dec.Outcome, dec.Actor, dec.Reason)

	l := readCanaryLedger(t, rc.cl, p, id)
	l.checkOneDecision(t, d)
	l.checkCounts(t, d)
	runs := map[int64]bool{}
	for key, run := range acked {
		if runs[run] {
			t.Errorf("run %d was acknowledged for two keys", run)
		}
		runs[run] = true
		if r := l.runs[run]; r == nil || r.IdempotencyKey != key {
			t.Errorf("run %d (key %s): %+v", run, key, r)
		}
	}
	if len(l.runs) != len(acked) {
		t.Errorf("%d runs for %d acknowledged starts", len(l.runs), len(acked))
	}

	// Every node serves the one decision, the restarted one included.
	for _, n := range rc.Nodes {
		ncl := n.Client(rc.Token)
		WaitFor(t, 60*time.Second, func() error {
			nd, err := ncl.GetDeployment(ctx, p, id)
			if err != nil {
				return err
			}
			if nd.Canary == nil || nd.Canary.Decision == nil || *nd.Canary.Decision != *dec || nd.Canary.Canary.Completed != d.Canary.Canary.Completed ||
				nd.Canary.Stable.Completed != d.Canary.Stable.Completed {
				return fmt.Errorf("%s serves deployment %d as %+v", n.Name, id, nd.Canary)
			}
			return nil
		})
	}
	// A refused second decision is "done" for the watcher, never an error
	// it retries (agent/canary/DESIGN.md, "Exactly once").
	for _, n := range rc.Nodes {
		raw, err := os.ReadFile(n.logPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.Contains(line, "canary-watcher") && strings.Contains(line, "[ERROR]") && strings.Contains(line, "already decided") {
				t.Errorf("%s: %s", n.Name, line)
			}
		}
	}
	rc.noContainersLeft(t, 60*time.Second)
}

// TestCanaryIntervalTrigger: a pipeline triggered every 2 s by the
// interval extension (a host process) gets a canary of a healthy version
// 2 at 50%. The subscription keeps firing through the canary and its
// decision:
//   - one run per tick: every tick up to the watermark started exactly one
//     run (its GOFER_EXTENSION_SCHEDULED_TIME) or, had the extension
//     stalled, was recorded as skipped once — never two runs;
//   - the runs before the canary ran version 1; the canary's runs landed
//     on both arms, each on the arm canary.Assign gives it and running
//     that arm's version; the watcher promoted version 2, on counts that
//     are the committed results of those runs; and every run created
//     after the decision ran version 2 outside any deployment.
func TestCanaryIntervalTrigger(t *testing.T) {
	// Nothing calls the extension: it is the host process below.
	rc := runsNewCluster(t, 1, "GOFER_WEB_EXTENSIONS__CALL_EXTENSIONS=false")
	ctx := context.Background()
	admin := rc.Client()
	const p, every = "canary-ticks", 2 * time.Second
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{runsSh("check", "true")}})
	if _, err := rc.cl.RegisterConfig(ctx, &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{runsSh("check", "echo v2")}}); err != nil {
		t.Fatalf("register version 2: %v", err)
	}
	settings := map[string]string{"MIN_INTERVAL": "1s"}
	inst, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "interval", Image: hostProcessImage, Settings: settings})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if _, err := admin.Subscribe(ctx, p, "interval", "tick", map[string]string{"every": every.String()}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	ext := startBuiltinExtension(t, rc.Cluster, "interval", inst.Token.Secret, settings)
	waitWatermark(t, admin, p, time.Now().Add(2*every), 60*time.Second)

	// Decided on 7 canary runs: the split of deployment 2's run ids never
	// puts more than 6 in a row on one arm (canary.Assign is a hash of the
	// two ids), so the stable arm gets runs before the decision wherever
	// the canary's first run falls.
	const canaryRuns = 7
	policy := fmt.Sprintf(`{"strategy": "canary", "canary": {"canary_percent": 50, "canary_runs": %d, "canary_duration": "30m", "max_failure_increase": 10}}`, canaryRuns)
	body := canaryExpect(t, http.MethodPost, canaryPipelineURL(rc, p)+"/configs/2", rc.Token, policy, http.StatusCreated, `"canary_version":2`)
	var created struct{ Deployment model.Deployment }
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	id := created.Deployment.DeploymentID
	var d *model.Deployment
	WaitFor(t, 3*time.Minute, func() (err error) {
		if d, err = rc.cl.GetDeployment(ctx, p, id); err != nil {
			return err
		}
		if d.Canary.Decision == nil {
			return fmt.Errorf("canary undecided: stable %+v, canary %+v", d.Canary.Stable, d.Canary.Canary)
		}
		return nil
	})
	dec := d.Canary.Decision
	if dec.Outcome != model.CanaryPromote || dec.Actor != "canary-watcher" || d.Status != model.DeploymentStatusSuccess {
		t.Fatalf("decision %+v, status %s; want promote by canary-watcher (stable %+v, canary %+v)", dec, d.Status, d.Canary.Stable, d.Canary.Canary)
	}
	canaryWantLive(t, rc, p, 2)
	// Three runs outside the canary after the decision, then the
	// extension stops so the ledger no longer moves.
	WaitFor(t, 90*time.Second, func() error {
		runs, err := rc.cl.ListRuns(ctx, p, client.Page{Limit: 10, Reverse: true})
		if err != nil {
			return err
		}
		n := 0
		for _, r := range runs {
			if r.DeploymentID == 0 && r.ConfigVersion == 2 {
				n++
			}
		}
		if n < 3 {
			return fmt.Errorf("%d runs of version 2 after the promotion", n)
		}
		return nil
	})
	ext.Stop()

	tl := readLedger(t, admin, p, "interval", "tick", every)
	// Exactly once per tick. A tick is skipped only when the extension
	// fell a whole interval behind (a stall of the machine, not something
	// the canary does); then it is recorded and the newest tick fires.
	fired, skipped := tl.check(t)
	tl.checkLatest(t)
	// Every run completes, the canary's and those after it included.
	for _, r := range tl.runs {
		if r = rc.wait(t, p, r.RunID, 90*time.Second); r.Status != model.RunStatusSuccessful {
			t.Errorf("run %d (version %d) ended %s", r.RunID, r.ConfigVersion, r.Status)
		}
	}

	l := readCanaryLedger(t, rc.cl, p, id)
	l.checkOneDecision(t, d)
	l.checkCounts(t, d)
	// The phases, in run id (creation) order: before the canary, its
	// runs, after its decision.
	var ids []int64
	for run := range l.runs {
		ids = append(ids, run)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var before, stable, onCanary, after int
	phase := 0
	for _, run := range ids {
		r := l.runs[run]
		switch {
		case r.DeploymentID == id:
			if phase > 1 {
				t.Errorf("run %d of the canary was created after a run outside it", run)
			}
			phase = 1
			if r.Canary != canary.Assign(canary.Policy{Percent: 50}, id, run) {
				t.Errorf("run %d: canary %v, but the split sends it to the other arm", run, r.Canary)
			}
			if want := map[bool]int64{false: 1, true: 2}[r.Canary]; r.ConfigVersion != want {
				t.Errorf("run %d on the canary %v arm ran version %d, want %d", run, r.Canary, r.ConfigVersion, want)
			}
			if r.Canary {
				onCanary++
			} else {
				stable++
			}
		case r.DeploymentID != 0:
			t.Errorf("run %d names deployment %d", run, r.DeploymentID)
		case phase == 0:
			before++
			if r.ConfigVersion != 1 || r.Canary {
				t.Errorf("run %d before the canary: version %d, canary %v", run, r.ConfigVersion, r.Canary)
			}
		default:
			phase = 2
			after++
			if r.ConfigVersion != 2 || r.Canary {
				t.Errorf("run %d after the promotion: version %d, canary %v; want version 2", run, r.ConfigVersion, r.Canary)
			}
			if q := l.queued[run]; q < l.decision {
				t.Errorf("run %d outside the canary was queued (event %d) before the decision (event %d)", run, q, l.decision)
			}
		}
	}
	if before < 1 || stable < 1 || onCanary < canaryRuns || after < 3 {
		t.Errorf("runs: %d before the canary, %d on the stable arm, %d on the canary arm, %d after the decision; want ≥1, ≥1, ≥%d, ≥3",
			before, stable, onCanary, after, canaryRuns)
	}
	t.Logf("%d ticks fired (%d skipped): %d runs before the canary, %d stable and %d canary runs, %d after the promotion",
		fired, skipped, before, stable, onCanary, after)
}

// canaryLedger is what the cluster committed about one canary
// deployment, in apply order: its events and the pipeline's runs.
type canaryLedger struct {
	runs map[int64]*model.Run
	// started and completed are the deployment's started_deployment and
	// completed_deployment events.
	started, completed []*model.Event
	// decision is the id of the (first) completed_deployment event.
	decision uint64
	// finished lists each run's completed_run events; queued the id of
	// its queued_run event.
	finished map[int64][]*model.Event
	queued   map[int64]uint64
}

// readCanaryLedger reads every event (oldest first) and every run of
// pipeline p with linearizable reads.
func readCanaryLedger(t *testing.T, cl *client.Client, p string, id int64) *canaryLedger {
	t.Helper()
	ctx := context.Background()
	l := &canaryLedger{runs: map[int64]*model.Run{}, finished: map[int64][]*model.Event{}, queued: map[int64]uint64{}}
	for offset := 0; ; offset += 500 {
		runs, err := cl.ListRuns(ctx, p, client.Page{Limit: 500, Offset: offset})
		if err != nil {
			t.Fatalf("list runs: %v", err)
		}
		for _, r := range runs {
			l.runs[r.RunID] = r
		}
		if len(runs) < 500 {
			break
		}
	}
	var events []*model.Event
	for offset := 0; ; offset += 500 {
		page, err := cl.ListEvents(ctx, client.Page{Limit: 500, Offset: offset})
		if err != nil {
			t.Fatalf("list events: %v", err)
		}
		events = append(events, page...)
		if len(page) < 500 {
			break
		}
	}
	sort.Slice(events, func(i, j int) bool { return events[i].ID < events[j].ID })
	for _, e := range events {
		if e.PipelineID != p {
			continue
		}
		run, _ := e.Details.Int("run_id")
		dep, _ := e.Details.Int("deployment_id")
		switch {
		case e.Kind == model.EventStartedDeployment && dep == id:
			l.started = append(l.started, e)
		case e.Kind == model.EventCompletedDeployment && dep == id:
			l.completed = append(l.completed, e)
			if l.decision == 0 {
				l.decision = e.ID
			}
		case e.Kind == model.EventCompletedRun:
			l.finished[run] = append(l.finished[run], e)
		case e.Kind == model.EventQueuedRun:
			l.queued[run] = e.ID
		}
	}
	return l
}

// checkOneDecision wants one start and one completion of the deployment,
// the completion naming the record's decision.
func (l *canaryLedger) checkOneDecision(t *testing.T, d *model.Deployment) {
	t.Helper()
	if len(l.started) != 1 || l.started[0].Details.String("strategy") != model.DeploymentStrategyCanary {
		t.Errorf("deployment %d: %d started_deployment events, want 1 with strategy canary: %s", d.DeploymentID, len(l.started), canaryEventsString(l.started))
	}
	if len(l.completed) != 1 {
		t.Fatalf("deployment %d: %d completed_deployment events, want exactly 1: %s", d.DeploymentID, len(l.completed), canaryEventsString(l.completed))
	}
	e, dec := l.completed[0], d.Canary.Decision
	if live, _ := e.Details.Int("live_version"); e.Details.String("outcome") != dec.Outcome || e.Details.String("decided_by") != dec.Actor ||
		e.Details.String("reason") != dec.Reason || live != map[bool]int64{false: d.Canary.StableVersion, true: d.Canary.CanaryVersion}[dec.Outcome == model.CanaryPromote] {
		t.Errorf("completed_deployment event %s does not match the decision %+v", canaryEventsString(l.completed), dec)
	}
}

// checkCounts wants the record's per-arm counts to be the results the
// FSM committed before the decision: the completed_run events (before the
// completed_deployment event) of the deployment's runs, cancelled ones
// aside. No run may have completed twice.
func (l *canaryLedger) checkCounts(t *testing.T, d *model.Deployment) {
	t.Helper()
	var stable, canaryArm model.CanaryArm
	for run, evs := range l.finished {
		if len(evs) != 1 {
			t.Errorf("run %d completed %d times: %s", run, len(evs), canaryEventsString(evs))
		}
		r := l.runs[run]
		if r == nil {
			t.Errorf("run %d completed but does not exist", run)
			continue
		}
		if r.DeploymentID != d.DeploymentID || evs[0].ID > l.decision {
			continue
		}
		status := evs[0].Details.String("status")
		if status != string(r.Status) {
			t.Errorf("run %d completed %s in its event, %s in its record", run, status, r.Status)
		}
		if status == string(model.RunStatusCancelled) {
			continue
		}
		arm := &stable
		if r.Canary {
			arm = &canaryArm
		}
		arm.Completed++
		if status == string(model.RunStatusFailed) {
			arm.Failed++
		}
	}
	got := d.Canary
	if got.Stable.Completed != stable.Completed || got.Stable.Failed != stable.Failed ||
		got.Canary.Completed != canaryArm.Completed || got.Canary.Failed != canaryArm.Failed {
		t.Errorf("deployment %d counts stable %d/%d failed, canary %d/%d failed; its runs completed before the decision: stable %d/%d, canary %d/%d",
			d.DeploymentID, got.Stable.Completed, got.Stable.Failed, got.Canary.Completed, got.Canary.Failed,
			stable.Completed, stable.Failed, canaryArm.Completed, canaryArm.Failed)
	}
	if len(got.Canary.DurationsMillis) != min(got.Canary.Completed, canary.MaxRuns) || len(got.Stable.DurationsMillis) != 0 {
		t.Errorf("deployment %d keeps %d canary and %d stable durations for %d completed canary runs", d.DeploymentID,
			len(got.Canary.DurationsMillis), len(got.Stable.DurationsMillis), got.Canary.Completed)
	}
}

func canaryEventsString(evs []*model.Event) string {
	var out []string
	for _, e := range evs {
		b, _ := json.Marshal(e)
		out = append(out, string(b))
	}
	return strings.Join(out, "; ")
}
