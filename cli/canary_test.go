package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/goferhq/gofer/store/model"
)

// fakeCanary serves pipeline "can" with version 1 live and canary
// deployment 3 of version 2 running. Each read of the deployment counts
// one more completed run (stable, then canary) until steps runs out; then
// the canary is decided with outcome. Immediate deploys are refused with
// the API's 409 while the canary runs.
type fakeCanary struct {
	mu       sync.Mutex
	reads    int
	steps    []model.DeploymentCanary
	decision *model.CanaryDecision
	requests []string
	bodies   []string
}

const fakeCanaryBase = "/api/namespaces/default/pipelines/can"

func (f *fakeCanary) deployment() *model.Deployment {
	dc := model.DeploymentCanary{Policy: model.CanaryPolicy{Percent: 20, Runs: 2, Duration: "30m0s", MaxFailureIncrease: 5, MaxP95Duration: "2m0s"},
		StableVersion: 1, CanaryVersion: 2, Started: 1}
	if len(f.steps) > 0 {
		i := f.reads
		if i >= len(f.steps) {
			i = len(f.steps) - 1
		}
		dc = f.steps[i]
	}
	d := &model.Deployment{PipelineID: "can", DeploymentID: 3, StartVersion: 1, EndVersion: 2, Started: 1, Actor: "alice",
		State: model.DeploymentStateRunning, Status: model.DeploymentStatusUnknown, Strategy: model.DeploymentStrategyCanary, Canary: &dc}
	if f.decision != nil && (len(f.steps) == 0 || f.reads >= len(f.steps)-1) {
		dc.Decision = f.decision
		d.State, d.Status = model.DeploymentStateComplete, model.DeploymentStatusFailed
		if f.decision.Outcome == model.CanaryPromote {
			d.Status = model.DeploymentStatusSuccess
		}
	}
	return d
}

func (f *fakeCanary) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.bodies = append(f.bodies, string(body))
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == fakeCanaryBase:
		active := int64(3)
		if f.decision != nil {
			active = 0
		}
		reply(http.StatusOK, map[string]any{"pipeline": model.Pipeline{PipelineID: "can", LiveVersion: 1, LatestVersion: 2, LastDeployment: 3, ActiveCanary: active}})
	case r.Method == http.MethodGet && r.URL.Path == fakeCanaryBase+"/configs/1":
		reply(http.StatusOK, map[string]any{"config": model.PipelineConfig{PipelineID: "can", Version: 1, Name: "can"}})
	case r.Method == http.MethodGet && r.URL.Path == fakeCanaryBase+"/deployments/3":
		d := f.deployment()
		f.reads++
		reply(http.StatusOK, map[string]any{"deployment": d})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, fakeCanaryBase+"/configs/"):
		if len(body) == 0 {
			apiError(w, http.StatusConflict, "conflict", `conflict: pipeline "can" has canary deployment 3 running; promote, roll it back or abort it first`)
			return
		}
		reply(http.StatusCreated, map[string]any{"deployment": f.deployment()})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, fakeCanaryBase+"/deployments/3/"):
		var req struct{ Reason string }
		_ = json.Unmarshal(body, &req)
		f.decision = &model.CanaryDecision{Outcome: strings.TrimPrefix(r.URL.Path, fakeCanaryBase+"/deployments/3/"), Reason: req.Reason, Actor: "alice", At: 2}
		reply(http.StatusOK, map[string]any{"deployment": f.deployment()})
	default:
		apiError(w, http.StatusNotFound, "not_found", r.Method+" "+r.URL.Path)
	}
}

func canaryCLI(t *testing.T, f *fakeCanary) func(args ...string) (int, string, string) {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return func(args ...string) (int, string, string) {
		return gofer(t, nil, append([]string{"-a", srv.URL, "-t", "tok"}, args...)...)
	}
}

var canaryArgs = []string{"--strategy", "canary", "--canary-percent", "20", "--canary-runs", "2", "--canary-duration", "30m",
	"--max-failure-increase", "5", "--max-p95", "2m"}

// Strategy and canary flags are checked before anything is sent: an
// unknown strategy, a canary flag without --strategy canary and a canary
// without its policy are usage mistakes (exit 2) naming the flag.
func TestDeployStrategyFlagsAreChecked(t *testing.T) {
	f := &fakeCanary{}
	cli := canaryCLI(t, f)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pipeline", "deploy", "--strategy", "rolling", "can", "2"}, `--strategy "rolling" is not a strategy; use immediate or canary`},
		{[]string{"pipeline", "deploy", "--canary-percent", "20", "can", "2"}, "--canary-percent needs --strategy canary"},
		{[]string{"pipeline", "config", "deploy", "--max-p95", "1m", "can", "2"}, "--max-p95 needs --strategy canary"},
		{[]string{"up", "--max-failure-increase", "3", "does-not-matter.json"}, "--max-failure-increase needs --strategy canary"},
		{[]string{"pipeline", "deploy", "--strategy", "canary", "--canary-percent", "20", "can", "2"},
			"--strategy canary needs --canary-runs, --canary-duration, --max-failure-increase"},
		{[]string{"up", "--strategy", "canary", "does-not-matter.json"}, "--strategy canary needs --canary-percent"},
		{[]string{"pipeline", "deploy", "--strategy", "canary", "--canary-percent", "20", "--canary-runs", "2", "--canary-duration", "30m",
			"--max-failure-increase", "NaN", "can", "2"}, "--max-failure-increase: must be between 0 and 100 percentage points, got NaN"},
		{[]string{"pipeline", "config", "deploy", "--strategy", "canary", "--canary-percent", "100", "--canary-runs", "0", "--canary-duration", "30m",
			"--max-failure-increase", "5", "can", "2"}, "--canary-percent: must be between 1 and 99, got 100\n--canary-runs: must be between 1 and"},
		{[]string{"pipeline", "deploy", "can"}, "deploy takes 2 argument(s), got 1"},
		{[]string{"pipeline", "deployment", "promote"}, "promote takes 1 or 2 argument(s), got 0"},
		{[]string{"pipeline", "deployment", "abort", "can", "x"}, `DEPLOYMENT must be a deployment number, got "x"`},
	} {
		code, _, errs := cli(tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("gofer %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, errs, tc.want)
		}
	}
	if len(f.requests) != 0 {
		t.Fatalf("refused commands sent %v", f.requests)
	}
}

// deploy --strategy canary (and config deploy) sends the policy as the
// API's body, durations as Go duration strings, and says what to do next.
func TestCanaryDeploySendsPolicy(t *testing.T) {
	f := &fakeCanary{}
	cli := canaryCLI(t, f)
	for _, cmd := range [][]string{{"pipeline", "deploy"}, {"pipeline", "config", "deploy"}} {
		code, out, errs := cli(append(append(cmd, "can", "2"), canaryArgs...)...)
		if code != 0 || !strings.Contains(out, "pipeline can: canary of version 2 started (deployment 3): 20% of new runs go to it, version 1 stays live") ||
			!strings.Contains(out, "gofer pipeline deployment watch can 3") {
			t.Fatalf("%v: exit %d\n%s%s", cmd, code, out, errs)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(f.bodies[len(f.bodies)-1]), &got); err != nil {
			t.Fatal(err)
		}
		want := `{"canary":{"canary_duration":"30m0s","canary_percent":20,"canary_runs":2,"max_failure_increase":5,"max_p95_duration":"2m0s"},"strategy":"canary"}`
		if raw, _ := json.Marshal(got); string(raw) != want {
			t.Fatalf("%v sent %s; want %s", cmd, raw, want)
		}
	}
}

// While a canary runs the API refuses immediate deploys and rollbacks with
// a 409; the CLI says which commands end the canary.
func TestImmediateDeployDuringCanaryPointsAtDecisions(t *testing.T) {
	cli := canaryCLI(t, &fakeCanary{})
	for _, args := range [][]string{{"pipeline", "deploy", "can", "2"}, {"pipeline", "config", "deploy", "can", "2"}} {
		code, _, errs := cli(args...)
		if code != 1 || !strings.Contains(errs, "has canary deployment 3 running") ||
			!strings.Contains(errs, "decide the canary first: gofer pipeline deployment promote|rollback|abort can") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

// promote/rollback/abort without DEPLOYMENT decide the pipeline's running
// canary, with the reason given.
func TestDeploymentDecideDefaultsToActiveCanary(t *testing.T) {
	f := &fakeCanary{}
	cli := canaryCLI(t, f)
	code, out, errs := cli("pipeline", "deployment", "rollback", "can", "--reason", "p95 looks bad")
	if code != 0 || !strings.Contains(out, "pipeline can: deployment 3 rolled back; version 1 is live") {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errs)
	}
	last := len(f.requests) - 1
	if f.requests[last] != "POST "+fakeCanaryBase+"/deployments/3/rollback" || f.bodies[last] != `{"reason":"p95 looks bad"}` {
		t.Fatalf("sent %s %s", f.requests[last], f.bodies[last])
	}
	// Decided now, so no canary runs: without an id there is nothing to decide.
	if code, _, errs := cli("pipeline", "deployment", "promote", "can"); code != 1 || !strings.Contains(errs, `pipeline "can" has no canary running; name the deployment`) {
		t.Fatalf("promote with no canary: exit %d, stderr %q", code, errs)
	}
}

// deployment get shows the split, the runs, failures and p95 per version
// and the decision with its reason, in lines of at most 120 columns; -o
// json is the API object.
func TestDeploymentGetShowsCanary(t *testing.T) {
	f := &fakeCanary{steps: []model.DeploymentCanary{{
		Policy:        model.CanaryPolicy{Percent: 20, Runs: 4, Duration: "30m0s", MaxFailureIncrease: 5, MaxP95Duration: "2m0s"},
		StableVersion: 1, CanaryVersion: 2, Started: 1,
		Stable: model.CanaryArm{Completed: 16, Failed: 0},
		Canary: model.CanaryArm{Completed: 4, Failed: 3, DurationsMillis: []int64{1000, 1500, 1200, 90000}},
	}}, decision: &model.CanaryDecision{Outcome: model.CanaryRollback, Actor: "canary-watcher", At: 2,
		Reason: "canary failed 3 of 4 runs so far; even if the other 0 of 4 required runs succeed, 3 of 4 (75%) > stable failed 0 of 16 runs (0%) + 5 points"}}
	cli := canaryCLI(t, f)
	code, out, errs := cli("pipeline", "deployment", "get", "can", "3")
	if code != 0 {
		t.Fatalf("get: exit %d\n%s%s", code, out, errs)
	}
	t.Logf("gofer pipeline deployment get can 3:\n%s", out)
	for _, want := range []string{"strategy:", "canary", "20% of new runs to version 2, the rest to version 1",
		"decide on 4 canary runs or after 30m0s; canary failure rate at most stable + 5 points; p95 at most 2m0s",
		"stable  1        16         0       0%", "canary  2        4          3       75%           1m30s",
		"rollback by canary-watcher", "why:           canary failed 3 of 4 runs so far; even if the other 0 of 4 required runs succeed, 3 of 4 (75%) > stable\n",
		"               failed 0 of 16 runs (0%) + 5 points\n", "live version:  1"} {
		if !strings.Contains(out, want) {
			t.Errorf("deployment get lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if displayWidth(line) > 120 {
			t.Errorf("line wider than 120 columns: %q", line)
		}
	}
	code, out, _ = cli("-o", "json", "pipeline", "deployment", "get", "can", "3")
	var got struct{ Deployment model.Deployment }
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.Deployment.Canary == nil ||
		got.Deployment.Canary.Decision.Outcome != model.CanaryRollback || got.Deployment.Strategy != "canary" {
		t.Fatalf("-o json: exit %d, %v\n%s", code, err, out)
	}
}

// watch prints each change of the counts once, then the decision; exit 1
// when the canary was rolled back, 0 when promoted.
func TestDeploymentWatch(t *testing.T) {
	step := func(stable, canary, failed int) model.DeploymentCanary {
		return model.DeploymentCanary{Policy: model.CanaryPolicy{Percent: 50, Runs: 2, Duration: "10m"}, StableVersion: 1, CanaryVersion: 2,
			Stable: model.CanaryArm{Completed: stable}, Canary: model.CanaryArm{Completed: canary, Failed: failed}}
	}
	for _, tc := range []struct {
		outcome string
		code    int
		verb    string
	}{{model.CanaryRollback, 1, "rolled back"}, {model.CanaryPromote, 0, "promoted"}} {
		f := &fakeCanary{steps: []model.DeploymentCanary{step(0, 0, 0), step(0, 0, 0), step(1, 0, 0), step(1, 0, 0), step(1, 1, 1), step(1, 2, 1)},
			decision: &model.CanaryDecision{Outcome: tc.outcome, Actor: "canary-watcher", Reason: "because " + tc.outcome}}
		code, out, errs := canaryCLI(t, f)("pipeline", "deployment", "watch", "can", "3", "--interval", "5ms")
		want := []string{
			"stable v1: 0 completed, 0 failed | canary v2: 0 completed, 0 failed (of 2 to decide)",
			"stable v1: 1 completed, 0 failed | canary v2: 0 completed, 0 failed (of 2 to decide)",
			"stable v1: 1 completed, 0 failed | canary v2: 1 completed, 1 failed (of 2 to decide)",
			"stable v1: 1 completed, 0 failed | canary v2: 2 completed, 1 failed (of 2 to decide)",
			tc.verb + " by canary-watcher; version " + map[string]string{"rollback": "1", "promote": "2"}[tc.outcome] + " is live",
			"why: because " + tc.outcome,
		}
		if code != tc.code || strings.TrimSpace(out) != strings.Join(want, "\n") {
			t.Errorf("watch (%s): exit %d, want %d\nstdout:\n%s\nstderr: %s", tc.outcome, code, tc.code, out, errs)
		}
	}
}

// pipeline get names the canary's version while one runs.
func TestPipelineGetShowsCanary(t *testing.T) {
	code, out, errs := canaryCLI(t, &fakeCanary{})("pipeline", "get", "can")
	if code != 0 || !strings.Contains(out, "version 2 on 20% of new runs (deployment 3; 0 of 2 canary runs completed)") || !strings.Contains(out, "live version:") {
		t.Fatalf("pipeline get: exit %d\n%s%s", code, out, errs)
	}
}

// pipeline rollback while a canary runs says to end the canary instead
// and sends nothing; after a canary was rolled back it returns to the
// version before the live one, skipping the canary (which changed
// nothing).
func TestRollbackAndCanaries(t *testing.T) {
	f := &fakeCanary{}
	code, _, errs := canaryCLI(t, f)("pipeline", "rollback", "can")
	if code != 1 || !strings.Contains(errs, `pipeline "can" has canary deployment 3 running; end it instead: gofer pipeline deployment rollback|abort can`) {
		t.Fatalf("rollback during a canary: exit %d, stderr %q", code, errs)
	}
	for _, r := range f.requests {
		if strings.HasPrefix(r, "POST") {
			t.Fatalf("rollback during a canary sent %s", r)
		}
	}

	rel := &fakeReleases{live: 2, deployments: []*model.Deployment{
		{PipelineID: "rel", DeploymentID: 1, StartVersion: 0, EndVersion: 1, State: model.DeploymentStateComplete},
		{PipelineID: "rel", DeploymentID: 2, StartVersion: 1, EndVersion: 2, State: model.DeploymentStateComplete},
		{PipelineID: "rel", DeploymentID: 3, StartVersion: 2, EndVersion: 3, State: model.DeploymentStateComplete, Strategy: model.DeploymentStrategyCanary,
			Canary: &model.DeploymentCanary{StableVersion: 2, CanaryVersion: 3, Decision: &model.CanaryDecision{Outcome: model.CanaryRollback}}},
	}}
	srv := httptest.NewServer(rel)
	defer srv.Close()
	code, out, errs := gofer(t, nil, "-a", srv.URL, "-t", "tok", "pipeline", "rollback", "rel")
	if code != 0 || !strings.Contains(out+errs, "pipeline rel: version 2 → 1 (deployment 4)") || rel.live != 1 {
		t.Fatalf("rollback after a rolled-back canary: exit %d, live %d\n%s%s", code, rel.live, out, errs)
	}
}

// deployment list says per row what each deployment tried and what came
// of it: a rolled-back canary of version 2 shows version 1 live after it,
// never reading as if version 2 went live (the FROM/TO columns did).
func TestDeploymentListSaysWhatHappened(t *testing.T) {
	canaryOf := func(id int64, dec *model.CanaryDecision) *model.Deployment {
		d := &model.Deployment{PipelineID: "can", DeploymentID: id, StartVersion: 1, EndVersion: 2, Actor: "alice",
			State: model.DeploymentStateComplete, Status: model.DeploymentStatusFailed, Strategy: model.DeploymentStrategyCanary,
			Canary: &model.DeploymentCanary{Policy: model.CanaryPolicy{Percent: 20, Runs: 2, Duration: "10m"}, StableVersion: 1, CanaryVersion: 2, Decision: dec}}
		switch {
		case dec == nil:
			d.State, d.Status = model.DeploymentStateRunning, model.DeploymentStatusUnknown
		case dec.Outcome == model.CanaryPromote:
			d.Status = model.DeploymentStatusSuccess
		}
		return d
	}
	list := []*model.Deployment{
		canaryOf(6, nil),
		canaryOf(5, &model.CanaryDecision{Outcome: model.CanaryPromote, Actor: "canary-watcher"}),
		canaryOf(4, &model.CanaryDecision{Outcome: model.CanaryAbort, Actor: "bob"}),
		canaryOf(3, &model.CanaryDecision{Outcome: model.CanaryRollback, Actor: "canary-watcher"}),
		{PipelineID: "can", DeploymentID: 2, StartVersion: 2, EndVersion: 1, Actor: "alice", State: model.DeploymentStateComplete, Status: model.DeploymentStatusSuccess},
		{PipelineID: "can", DeploymentID: 1, StartVersion: 0, EndVersion: 2, Actor: "alice", State: model.DeploymentStateComplete, Status: model.DeploymentStatusSuccess},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case fakeCanaryBase + "/deployments":
			_ = json.NewEncoder(w).Encode(map[string]any{"deployments": list})
		case fakeCanaryBase + "/deployments/3":
			_ = json.NewEncoder(w).Encode(map[string]any{"deployment": list[3]})
		case fakeCanaryBase + "/deployments/2":
			_ = json.NewEncoder(w).Encode(map[string]any{"deployment": list[4]})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	code, out, errs := gofer(t, nil, "-a", srv.URL, "-t", "tok", "pipeline", "deployment", "list", "can")
	if code != 0 {
		t.Fatalf("list: exit %d\n%s%s", code, out, errs)
	}
	t.Logf("gofer pipeline deployment list can:\n%s", out)
	want := []string{
		"ID  STRATEGY   LIVE BEFORE  NEW VERSION  OUTCOME           LIVE AFTER  STARTED  BY",
		"6   canary     1            2            in progress (20%)  1 (so far)  never    alice",
		"5   canary     1            2            promoted          2           never    alice",
		"4   canary     1            2            aborted           1           never    alice",
		"3   canary     1            2            rolled back       1           never    alice",
		"2   immediate  2            1            deployed          1           never    alice",
		"1   immediate  -            2            deployed          2           never    alice",
	}
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i := range got {
		got[i] = strings.Join(strings.Fields(got[i]), " ")
	}
	for i := range want {
		want[i] = strings.Join(strings.Fields(want[i]), " ")
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("deployment list:\n%s\nwant (spacing aside):\n%s", out, strings.Join(want, "\n"))
	}
	for id, line := range map[string]string{
		"3": "outcome:     rolled back; version 1 stayed live, version 2 never went live",
		"2": "outcome:     deployed; version 1 made live",
	} {
		code, out, _ := gofer(t, nil, "-a", srv.URL, "-t", "tok", "pipeline", "deployment", "get", "can", id)
		if code != 0 || !strings.Contains(out, line) {
			t.Errorf("deployment get %s: exit %d, lacks %q:\n%s", id, code, line, out)
		}
	}
}
