package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// canaryPolicyBody is a canary deploy body: half the runs to the canary,
// decided on 2 canary runs, at most 10 points more failures.
const canaryPolicyBody = `{"strategy": "canary", "canary": {"canary_percent": 50, "canary_runs": 2, "canary_duration": "10m", "max_failure_increase": 10}}`

// TestCanary deploys pipeline versions as canaries on a real node with
// real containers: a failing version 2 is rolled back by the leader's
// watcher (version 1 stays live), a healthy one is promoted, and a human
// aborts one; each decision is kept once and recorded in events.
func TestCanary(t *testing.T) {
	rc := runsNewCluster(t, 1)
	t.Run("failing-canary-rolled-back", func(t *testing.T) {
		d := canaryRun(t, rc, "canary-bad", "exit 1")
		if d.Canary.Decision.Outcome != model.CanaryRollback || d.Status != model.DeploymentStatusFailed || d.Canary.Decision.Actor != "canary-watcher" {
			t.Fatalf("decision: %+v, status %s", d.Canary.Decision, d.Status)
		}
		if d.Canary.Canary.Failed == 0 {
			t.Fatalf("rolled back without a failed canary run: %+v", d.Canary)
		}
		canaryWantLive(t, rc, "canary-bad", 1)
		canaryWantEvents(t, rc, "canary-bad", d.DeploymentID, model.CanaryRollback)
	})
	t.Run("healthy-canary-promoted", func(t *testing.T) {
		d := canaryRun(t, rc, "canary-good", "true")
		if d.Canary.Decision.Outcome != model.CanaryPromote || d.Status != model.DeploymentStatusSuccess || d.Canary.Canary.Completed < 2 {
			t.Fatalf("decision: %+v, status %s, canary %+v", d.Canary.Decision, d.Status, d.Canary.Canary)
		}
		canaryWantLive(t, rc, "canary-good", 2)
		canaryWantEvents(t, rc, "canary-good", d.DeploymentID, model.CanaryPromote)
	})
	t.Run("manual-abort", func(t *testing.T) {
		p := "canary-abort"
		canaryTwoVersions(t, rc, p, "true")
		base := canaryPipelineURL(rc, p)
		canaryExpect(t, http.MethodPost, base+"/configs/2", rc.Token, `{"strategy": "canary", "canary": {"canary_percent": 0, "canary_runs": 2, "canary_duration": "10m", "max_failure_increase": 10}}`,
			http.StatusBadRequest, "canary_percent")
		canaryExpect(t, http.MethodPost, base+"/configs/2", rc.Token, `{"strategy": "sideways"}`, http.StatusBadRequest, "strategy")
		started := canaryExpect(t, http.MethodPost, base+"/configs/2", rc.Token, canaryPolicyBody, http.StatusCreated, `"strategy":"canary"`)
		var created struct{ Deployment model.Deployment }
		if err := json.Unmarshal([]byte(started), &created); err != nil {
			t.Fatal(err)
		}
		id := created.Deployment.DeploymentID
		canaryExpect(t, http.MethodPost, base+"/configs/2", rc.Token, canaryPolicyBody, http.StatusConflict, "already has canary deployment")
		canaryWantLive(t, rc, p, 1)
		canaryExpect(t, http.MethodPost, fmt.Sprintf("%s/deployments/%d/abort", base, id), rc.Token, `{"reason": "changed my mind"}`, http.StatusOK, "changed my mind")
		canaryExpect(t, http.MethodPost, fmt.Sprintf("%s/deployments/%d/promote", base, id), rc.Token, "", http.StatusConflict, "already decided")
		canaryWantLive(t, rc, p, 1)
		d, err := rc.cl.GetDeployment(context.Background(), p, id)
		if err != nil || d.Canary.Decision.Outcome != model.CanaryAbort || d.State != model.DeploymentStateComplete {
			t.Fatalf("aborted deployment: %+v %v", d, err)
		}
		canaryWantEvents(t, rc, p, id, model.CanaryAbort)
	})
	rc.noContainersLeft(t, 40*time.Second)
}

func canaryPipelineURL(rc *runsCluster, p string) string {
	return rc.Leader().URL + "/api/namespaces/default/pipelines/" + p
}

// canaryTwoVersions registers version 1 (`true`) and deploys it, then
// registers version 2 running script.
func canaryTwoVersions(t *testing.T, rc *runsCluster, p, script string) {
	t.Helper()
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{runsSh("check", "true")}})
	if _, err := rc.cl.RegisterConfig(context.Background(), &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{runsSh("check", script)}}); err != nil {
		t.Fatalf("register version 2 of %s: %v", p, err)
	}
}

// canaryRun starts a canary of version 2 (running script) and starts runs
// one after another until the watcher decides; it returns the decided
// deployment.
func canaryRun(t *testing.T, rc *runsCluster, p, script string) *model.Deployment {
	t.Helper()
	ctx := context.Background()
	canaryTwoVersions(t, rc, p, script)
	body := canaryExpect(t, http.MethodPost, canaryPipelineURL(rc, p)+"/configs/2", rc.Token, canaryPolicyBody, http.StatusCreated, `"canary_version":2`)
	var created struct{ Deployment model.Deployment }
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	id := created.Deployment.DeploymentID
	canaryWantLive(t, rc, p, 1)
	for i := 0; i < 40; i++ {
		r := rc.start(t, p, nil)
		if r.DeploymentID != id {
			t.Fatalf("run %d of an undecided canary names deployment %d, want %d", r.RunID, r.DeploymentID, id)
		}
		wantVersion := int64(1)
		if r.Canary {
			wantVersion = 2
		}
		if r.ConfigVersion != wantVersion {
			t.Fatalf("run %d: canary %v but version %d", r.RunID, r.Canary, r.ConfigVersion)
		}
		rc.wait(t, p, r.RunID, 60*time.Second)
		// The watcher decides after the run's completion is applied; give
		// it a moment before starting another run.
		deadline := time.Now().Add(3 * time.Second)
		for {
			d, err := rc.cl.GetDeployment(ctx, p, id)
			if err != nil {
				t.Fatal(err)
			}
			if d.Canary.Decision != nil {
				return d
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	d, _ := rc.cl.GetDeployment(ctx, p, id)
	t.Fatalf("no decision after 40 runs: %+v", d.Canary)
	return nil
}

func canaryWantLive(t *testing.T, rc *runsCluster, p string, version int64) {
	t.Helper()
	pl, err := rc.cl.GetPipeline(context.Background(), p)
	if err != nil || pl.LiveVersion != version {
		t.Fatalf("pipeline %s: live version %v (%v), want %d", p, pl, err, version)
	}
}

// canaryWantEvents finds the deployment's steps as events: its start
// (strategy canary, with its split), one counted_canary_run per run the
// deployment counted (the newest carrying the final totals), the
// decision with outcome and the numbers it was taken on, and a
// switched_live_version from the stable to the canary version exactly
// when it was promoted.
func canaryWantEvents(t *testing.T, rc *runsCluster, p string, id int64, outcome string) {
	t.Helper()
	ctx := context.Background()
	d, err := rc.cl.GetDeployment(ctx, p, id)
	if err != nil {
		t.Fatal(err)
	}
	events, err := rc.cl.ListEvents(ctx, client.Page{Limit: 500, Reverse: true})
	if err != nil {
		t.Fatal(err)
	}
	var started, completed bool
	var counted, switched []model.EventDetails
	for _, e := range events {
		if dep, _ := e.Details.Int("deployment_id"); e.PipelineID != p || dep != id {
			continue
		}
		switch e.Kind {
		case model.EventStartedDeployment:
			started = e.Details.String("strategy") == "canary" && canaryDetailIs(e.Details, "canary_percent", 50) &&
				canaryDetailIs(e.Details, "stable_version", 1) && canaryDetailIs(e.Details, "canary_version", 2)
		case model.EventCompletedDeployment:
			completed = e.Details.String("outcome") == outcome && e.Details.String("reason") != "" &&
				canaryDetailIs(e.Details, "canary_completed", int64(d.Canary.Canary.Completed)) &&
				canaryDetailIs(e.Details, "stable_completed", int64(d.Canary.Stable.Completed)) &&
				canaryDetailIs(e.Details, "canary_failed", int64(d.Canary.Canary.Failed))
		case model.EventCountedCanaryRun:
			counted = append(counted, e.Details) // newest first
		case model.EventSwitchedLiveVersion:
			switched = append(switched, e.Details)
		}
	}
	if !started || !completed {
		t.Fatalf("events of deployment %d of %s: started %v, completed (%s) %v", id, p, started, outcome, completed)
	}
	if want := d.Canary.Stable.Completed + d.Canary.Canary.Completed; len(counted) != want {
		t.Fatalf("deployment %d of %s: %d counted_canary_run events for %d counted runs", id, p, len(counted), want)
	}
	if len(counted) > 0 && (!canaryDetailIs(counted[0], "canary_completed", int64(d.Canary.Canary.Completed)) ||
		!canaryDetailIs(counted[0], "stable_failed", int64(d.Canary.Stable.Failed))) {
		t.Fatalf("deployment %d of %s: the last counted run's totals %v; the record %+v", id, p, counted[0], d.Canary)
	}
	wantSwitch := outcome == model.CanaryPromote
	if len(switched) != map[bool]int{true: 1}[wantSwitch] ||
		(wantSwitch && (!canaryDetailIs(switched[0], "from_version", 1) || !canaryDetailIs(switched[0], "to_version", 2))) {
		t.Fatalf("deployment %d of %s (%s): switched_live_version events %v", id, p, outcome, switched)
	}
}

// canaryExpect sends a raw request and wants status and a body holding
// mention; it returns the body.
func canaryExpect(t *testing.T, method, url, token, body string, status int, mention string) string {
	t.Helper()
	resp, err := rawRequest(method, url, token, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || !strings.Contains(string(raw), mention) {
		t.Fatalf("%s %s: %d %s; want %d mentioning %q", method, url, resp.StatusCode, raw, status, mention)
	}
	return string(raw)
}

func canaryDetailIs(d model.EventDetails, key string, want int64) bool {
	n, ok := d.Int(key)
	return ok && n == want
}
