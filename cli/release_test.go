package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/goferhq/gofer/store/model"
)

// fakeReleases serves one pipeline ("rel") with its deployments the way
// the API does, and records every request it gets.
type fakeReleases struct {
	mu          sync.Mutex
	live        int64
	deployments []*model.Deployment
	requests    []string
	keys        []string
	keyPaths    map[string]string
	// interloper, when set, is deployed by "someone else" just before
	// the next deploy applies.
	interloper int64
}

func (f *fakeReleases) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	const base = "/api/namespaces/default/pipelines/rel"
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == base:
		reply(http.StatusOK, map[string]any{"pipeline": model.Pipeline{PipelineID: "rel", LiveVersion: f.live,
			LastDeployment: int64(len(f.deployments))}})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, base+"/deployments/"):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, base+"/deployments/"))
		if id < 1 || id > len(f.deployments) {
			apiError(w, http.StatusNotFound, "not_found", "no such deployment")
			return
		}
		reply(http.StatusOK, map[string]any{"deployment": f.deployments[id-1]})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, base+"/configs/"):
		key := r.Header.Get("Idempotency-Key")
		f.keys = append(f.keys, key)
		// The API binds a key to its first request.
		if first, ok := f.keyPaths[key]; ok && first != r.URL.Path {
			apiError(w, http.StatusUnprocessableEntity, "idempotency_mismatch", "Idempotency-Key was already used for a different request")
			return
		}
		if f.keyPaths == nil {
			f.keyPaths = map[string]string{}
		}
		f.keyPaths[key] = r.URL.Path
		v, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, base+"/configs/"), 10, 64)
		if f.interloper != 0 {
			f.deployments = append(f.deployments, &model.Deployment{PipelineID: "rel", DeploymentID: int64(len(f.deployments) + 1),
				StartVersion: f.live, EndVersion: f.interloper, State: model.DeploymentStateComplete, Status: model.DeploymentStatusSuccess})
			f.live, f.interloper = f.interloper, 0
		}
		d := &model.Deployment{PipelineID: "rel", DeploymentID: int64(len(f.deployments) + 1), StartVersion: f.live, EndVersion: v,
			State: model.DeploymentStateComplete, Status: model.DeploymentStatusSuccess}
		f.deployments = append(f.deployments, d)
		f.live = v
		reply(http.StatusCreated, map[string]any{"deployment": d})
	default:
		apiError(w, http.StatusNotFound, "not_found", r.Method+" "+r.URL.Path)
	}
}

func (f *fakeReleases) posts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.keys)
}

// deploy --strategy immediate makes the version live; rollback returns to
// the version the newest deployment replaced, as a write carrying an
// idempotency key, and says what it did; with no earlier version it is
// refused and writes nothing.
func TestDeployAndRollback(t *testing.T) {
	f := &fakeReleases{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cli := func(args ...string) (int, string, string) {
		return gofer(t, nil, append([]string{"-a", srv.URL, "-t", "tok"}, args...)...)
	}

	if code, _, errs := cli("pipeline", "rollback", "rel"); code != 1 || !strings.Contains(errs, `pipeline "rel" has no live version: nothing to roll back to`) {
		t.Fatalf("rollback with nothing live: exit %d, stderr %q", code, errs)
	}
	if code, out, errs := cli("pipeline", "deploy", "--strategy", "immediate", "rel", "1"); code != 0 || !strings.Contains(out+errs, "Deployed version 1") {
		t.Fatalf("deploy 1: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := cli("pipeline", "rollback", "rel"); code != 1 ||
		!strings.Contains(errs, `pipeline "rel": version 1 is the first version made live, no version was live before it: nothing to roll back to`) {
		t.Fatalf("rollback of the first version: exit %d, stderr %q", code, errs)
	}
	if n := f.posts(); n != 1 {
		t.Fatalf("refused rollbacks wrote: %d deploys, want 1", n)
	}
	if code, out, errs := cli("pipeline", "deploy", "rel", "2"); code != 0 || !strings.Contains(out+errs, "Deployed version 2") {
		t.Fatalf("deploy 2: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := cli("pipeline", "rollback", "rel")
	if code != 0 || !strings.Contains(out+errs, "pipeline rel: version 2 → 1 (deployment 3)") {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errs)
	}
	if f.live != 1 || f.requests[len(f.requests)-1] != "POST /api/namespaces/default/pipelines/rel/configs/1" {
		t.Fatalf("rollback made version %d live; requests %v", f.live, f.requests)
	}
	for i, k := range f.keys {
		if k == "" {
			t.Errorf("deploy %d carried no Idempotency-Key", i+1)
		}
	}
	// A rollback is a deployment too: the next one returns to version 2.
	if code, out, errs := cli("pipeline", "rollback", "rel"); code != 0 || !strings.Contains(out+errs, "pipeline rel: version 1 → 2 (deployment 4)") {
		t.Fatalf("second rollback: exit %d\n%s%s", code, out, errs)
	}
}

// A deploy by someone else between the rollback's reads and its deploy
// cannot be prevented from the client; the rollback says so.
func TestRollbackWarnsWhenAnotherDeployCameInBetween(t *testing.T) {
	f := &fakeReleases{live: 2, deployments: []*model.Deployment{
		{PipelineID: "rel", DeploymentID: 1, StartVersion: 0, EndVersion: 1, State: model.DeploymentStateComplete},
		{PipelineID: "rel", DeploymentID: 2, StartVersion: 1, EndVersion: 2, State: model.DeploymentStateComplete},
	}, interloper: 3}
	srv := httptest.NewServer(f)
	defer srv.Close()
	code, out, errs := gofer(t, nil, "-a", srv.URL, "-t", "tok", "pipeline", "rollback", "rel")
	if code != 0 || !strings.Contains(errs, `warning: pipeline "rel": version 3 was live when the rollback applied, not version 2: another deploy came in between`) ||
		!strings.Contains(out+errs, "pipeline rel: version 3 → 1 (deployment 4)") {
		t.Fatalf("rollback raced by a deploy: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
}

// A rollback whose answer was lost and that is run again with the key its
// error named must not roll back a second time (back to where it
// started): the key refuses the different deploy, and the CLI says the
// first rollback applied.
func TestRollbackRerunWithItsKeyDoesNotToggleBack(t *testing.T) {
	f := &fakeReleases{live: 2, deployments: []*model.Deployment{
		{PipelineID: "rel", DeploymentID: 1, StartVersion: 0, EndVersion: 1, State: model.DeploymentStateComplete},
		{PipelineID: "rel", DeploymentID: 2, StartVersion: 1, EndVersion: 2, State: model.DeploymentStateComplete},
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	for i, want := range []string{"pipeline rel: version 2 → 1 (deployment 3)", "the rollback with this --idempotency-key already applied: version 1 is live now"} {
		code, out, errs := gofer(t, nil, "-a", srv.URL, "-t", "tok", "--idempotency-key", "rb-1", "pipeline", "rollback", "rel")
		if (code == 0) != (i == 0) || !strings.Contains(out+errs, want) {
			t.Fatalf("rollback %d with the same key: exit %d\nstdout %s\nstderr %s", i+1, code, out, errs)
		}
	}
	if f.live != 1 || len(f.deployments) != 3 {
		t.Fatalf("after a rerun with the same key: version %d live, %d deployments; want version 1 and 3", f.live, len(f.deployments))
	}
}
