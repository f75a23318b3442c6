package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestCanaryDeployRoutes: the deploy route's canary body is validated
// field by field (400, nothing written), a canary leaves the live version
// alone, a second canary or an immediate deploy meanwhile is a 409, and
// the decision routes keep the first decision (a replay with the same
// Idempotency-Key answers it again; another decision is a 409).
func TestCanaryDeployRoutes(t *testing.T) {
	cl, url := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := cl.RegisterConfig(ctx, sdk.NewPipeline("cny", "cny").Tasks(sdk.NewTask("tsk", "img")).Description(strings.Repeat("v", i+1)).Config()); err != nil {
			t.Fatal(err)
		}
	}
	const p = "/api/namespaces/default/pipelines/cny"
	const good = `"canary_percent": 50, "canary_runs": 2, "canary_duration": "10m", "max_failure_increase": 10`
	for body, field := range map[string]string{
		`{"strategy": "canary", "canary": {` + good + `}}`: "no live version",
		`{"strategy": "canary"}`:                           "canary",
		`{"strategy": "fast"}`:                             "strategy",
		`{"canary": {` + good + `}}`:                       "only with strategy",
		`{"strategy": "canary", "canary": {"canary_percent": 0, "canary_runs": 2, "canary_duration": "10m", "max_failure_increase": 10}}`:      "canary_percent",
		`{"strategy": "canary", "canary": {"canary_percent": 5, "canary_runs": 2, "canary_duration": "soon", "max_failure_increase": 10}}`:     "canary_duration",
		`{"strategy": "canary", "canary": {"canary_percent": 5, "canary_runs": 2, "canary_duration": "1m", "max_failure_increase": 101}}`:      "max_failure_increase",
		`{"strategy": "canary", "canary": {"canary_percent": 5, "canary_runs": 2, "canary_duration": "1m", "max_failure_increase": 1, "x":1}}`: "x",
	} {
		status, answer := send(t, "POST", url+p+"/configs/2", body, "")
		want := 400
		if field == "no live version" {
			want = 409
		}
		if status != want || !strings.Contains(answer, field) {
			t.Errorf("deploy %s: %d %s; want %d naming %s", body, status, answer, want, field)
		}
	}
	if status, body := send(t, "POST", url+p+"/configs/1", "", ""); status != 201 || strings.Contains(body, "strategy") {
		t.Fatalf("immediate deploy with no body: %d %s", status, body)
	}
	if status, body := send(t, "POST", url+p+"/configs/2", `{"strategy": "canary", "canary": {`+good+`}}`, ""); status != 201 || !strings.Contains(body, `"canary_version":2`) {
		t.Fatalf("canary deploy: %d %s", status, body)
	}
	if pl, err := cl.GetPipeline(ctx, "cny"); err != nil || pl.LiveVersion != 1 || pl.ActiveCanary != 2 {
		t.Fatalf("pipeline during the canary: %+v %v", pl, err)
	}
	if status, body := send(t, "POST", url+p+"/configs/2", `{"strategy": "canary", "canary": {`+good+`}}`, ""); status != 409 {
		t.Errorf("second canary: %d %s; want 409", status, body)
	}
	if status, body := send(t, "POST", url+p+"/configs/2", "", ""); status != 409 {
		t.Errorf("immediate deploy during a canary: %d %s; want 409", status, body)
	}
	if status, body := send(t, "POST", url+p+"/deployments/1/promote", "", ""); status != 409 || !strings.Contains(body, "not a canary") {
		t.Errorf("promote an immediate deployment: %d %s; want 409", status, body)
	}
	if status, body := send(t, "POST", url+p+"/deployments/9/abort", "", ""); status != 404 {
		t.Errorf("abort a missing deployment: %d %s; want 404", status, body)
	}
	// One canary run finished (of the two the policy waits for), so the
	// decision's answer has a duration to show.
	for i := 0; ; i++ {
		if _, err := cl.StartRun(ctx, "cny", nil); err != nil {
			t.Fatal(err)
		}
		if d, err := cl.GetDeployment(ctx, "cny", 2); err == nil && d.Canary.Canary.Completed > 0 {
			break
		} else if i == 200 {
			t.Fatalf("no canary run finished after %d runs: %+v %v", i, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	first, firstBody := send(t, "POST", url+p+"/deployments/2/promote", `{"reason": "looks fine"}`, "k-promote")
	if first != 200 || !strings.Contains(firstBody, `"outcome":"promote"`) {
		t.Fatalf("promote: %d %s", first, firstBody)
	}
	if status, body := send(t, "POST", url+p+"/deployments/2/promote", `{"reason": "looks fine"}`, "k-promote"); status != 200 || body != firstBody {
		t.Errorf("replayed promote: %d %s; want the first answer %s", status, body, firstBody)
	}
	if status, body := send(t, "POST", url+p+"/deployments/2/rollback", "", ""); status != 409 || !strings.Contains(body, "already decided") {
		t.Errorf("rollback after promote: %d %s; want 409", status, body)
	}
	d, err := cl.GetDeployment(ctx, "cny", 2)
	if err != nil || d.Canary == nil || d.Canary.Decision == nil || d.Canary.Decision.Reason != "looks fine" || d.Canary.Policy.Percent != 50 {
		t.Fatalf("GET deployment: %+v %v", d, err)
	}
	// The decision answers the shape a GET does, durations included.
	var promoted struct {
		Deployment model.Deployment `json:"deployment"`
	}
	if err := json.Unmarshal([]byte(firstBody), &promoted); err != nil {
		t.Fatal(err)
	}
	if got, want := promoted.Deployment.Canary.Canary.DurationsMillis, d.Canary.Canary.DurationsMillis; len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("promote answered canary durations %v, GET %v; want the same, non-empty", got, want)
	}
	if pl, err := cl.GetPipeline(ctx, "cny"); err != nil || pl.LiveVersion != 2 || pl.ActiveCanary != 0 {
		t.Fatalf("pipeline after promote: %+v %v", pl, err)
	}
}
