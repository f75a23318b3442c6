package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// fakeConfigs serves what `gofer up` calls for one pipeline, answering a
// repeated Idempotency-Key with the first outcome as the API does; while
// dropDeploy is set it takes deploys and cuts the connection without
// applying them (the outcome is unknown to the CLI).
type fakeConfigs struct {
	mu         sync.Mutex
	configs    []*model.PipelineConfig
	live       int64
	answers    map[string][]byte
	dropDeploy bool
}

func (f *fakeConfigs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	const base = "/api/namespaces/default/pipelines/pup"
	reply := func(status int, v any) {
		raw, _ := json.Marshal(v)
		if k := r.Header.Get("Idempotency-Key"); k != "" {
			f.answers[k] = raw
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(raw)
	}
	if k := r.Header.Get("Idempotency-Key"); k != "" && f.answers[k] != nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.answers[k])
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == base:
		if len(f.configs) == 0 {
			apiError(w, http.StatusNotFound, "not_found", "pipeline not found")
			return
		}
		reply(http.StatusOK, map[string]any{"pipeline": model.Pipeline{PipelineID: "pup", LiveVersion: f.live}})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, base+"/configs/"):
		reply(http.StatusOK, map[string]any{"config": f.configs[f.live-1]})
	case r.Method == http.MethodPost && r.URL.Path == base+"/configs":
		var body struct {
			Config *sdk.PipelineConfig `json:"config"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		hash, _ := configHash(body.Config)
		cfg := &model.PipelineConfig{PipelineID: "pup", Version: int64(len(f.configs) + 1), Hash: hash}
		f.configs = append(f.configs, cfg)
		reply(http.StatusCreated, map[string]any{"pipeline": map[string]any{"config": cfg}})
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, base+"/configs/"):
		if f.dropDeploy {
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
			return
		}
		f.live = int64(len(f.configs))
		reply(http.StatusCreated, map[string]any{"deployment": model.Deployment{PipelineID: "pup", EndVersion: f.live}})
	default:
		apiError(w, http.StatusNotFound, "not_found", r.Method+" "+r.URL.Path)
	}
}

// `gofer up` registers, then deploys. When the deploy's answer is lost,
// running it again with the key the error names must not register the
// config a second time: the key names the command's first write, so the
// register gets its first outcome back.
func TestUpRerunAfterUnknownDeployRegistersOnce(t *testing.T) {
	defer func(d time.Duration) { retryFor = d }(retryFor)
	retryFor = 300 * time.Millisecond
	f := &fakeConfigs{answers: map[string][]byte{}, dropDeploy: true}
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := t.TempDir()
	raw, err := json.Marshal(&sdk.PipelineConfig{ID: "pup", Name: "pup", Tasks: []*sdk.TaskConfig{{ID: "tsk", Image: "busybox"}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pipeline.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	code, _, errs := gofer(t, nil, "-a", srv.URL, "-t", "tok", "up", path)
	m := regexp.MustCompile(`--idempotency-key (\S+):`).FindStringSubmatch(errs)
	if code != 1 || m == nil {
		t.Fatalf("up with the deploy's answer lost: exit %d, %q; want an unknown outcome naming a key", code, errs)
	}
	f.mu.Lock()
	f.dropDeploy = false
	f.mu.Unlock()
	code, _, errs = gofer(t, nil, "-a", srv.URL, "-t", "tok", "--idempotency-key", m[1], "up", path)
	if code != 0 {
		t.Fatalf("up again with --idempotency-key %s: exit %d, %q", m[1], code, errs)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.configs) != 1 || f.live != 1 {
		t.Errorf("after the rerun: %d versions registered, live %d; want 1 version, live", len(f.configs), f.live)
	}
}
