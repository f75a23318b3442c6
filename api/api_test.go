package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// devNode runs a real single-node agent in dev mode (auth off) in this
// process: real raft, real bbolt, real HTTP.
func devNode(t *testing.T, mutate ...func(*agent.Config)) (*client.Client, string) {
	t.Helper()
	cl, url, _ := devAgent(t, mutate...)
	return cl, url
}

// devAgent is devNode with the agent itself: tests point its
// ExtensionDirectory at stand-in extensions (its scheduler runs none).
func devAgent(t *testing.T, mutate ...func(*agent.Config)) (*client.Client, string, *agent.Agent) {
	t.Helper()
	cfg := agent.DefaultConfig()
	cfg.Server.DataDir = t.TempDir()
	cfg.Server.APIAddr = freeAddr(t)
	cfg.Server.RaftAddr = freeAddr(t)
	cfg = agent.DevConfig(cfg)
	// No standard extensions: these tests count tokens and sealed run
	// tokens, and the in-process node's executable is this test binary,
	// not a gofer to make extension images of.
	cfg.Extensions.InstallStdExtensions = false
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := agent.New(cfg, model.Metadata{Semver: "test"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with: %v", err)
		}
	})
	url := "http://" + cfg.Server.APIAddr
	cl, err := client.New([]string{url})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := cl.ListNamespaces(context.Background(), client.Page{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dev node never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cl, url, a
}

func ids(list []*model.Namespace) string {
	var out []string
	for _, ns := range list {
		out = append(out, ns.ID)
	}
	return strings.Join(out, ",")
}

func TestPagination(t *testing.T) {
	cl, url := devNode(t)
	ctx := context.Background()
	for i := 1; i <= 6; i++ {
		if _, err := cl.CreateNamespace(ctx, fmt.Sprintf("ns-%d", i), "", ""); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		page client.Page
		want string
	}{
		{client.Page{}, "default,ns-1,ns-2,ns-3,ns-4,ns-5,ns-6"},
		{client.Page{Limit: 2}, "default,ns-1"},
		{client.Page{Limit: 2, Offset: 2}, "ns-2,ns-3"},
		{client.Page{Limit: 3, Reverse: true}, "ns-6,ns-5,ns-4"},
		{client.Page{Limit: 2, Offset: 5, Reverse: true}, "ns-1,default"},
		{client.Page{Offset: 50}, ""},
	}
	for _, tt := range tests {
		got, err := cl.ListNamespaces(ctx, tt.page)
		if err != nil {
			t.Fatal(err)
		}
		if ids(got) != tt.want {
			t.Errorf("page %+v: got %q, want %q", tt.page, ids(got), tt.want)
		}
	}
	for _, q := range []string{"limit=-1", "limit=1001", "offset=x", "reverse=maybe"} {
		resp, err := get(url + "/api/namespaces?" + q)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: status %d, want 400", q, resp.StatusCode)
		}
	}
}

func get(url string) (*http.Response, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("gofer-api-version", "v0")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func pipeline(id string, tasks ...string) *sdk.PipelineConfig {
	cfg := &sdk.PipelineConfig{ID: id, Name: id}
	for _, t := range tasks {
		cfg.Tasks = append(cfg.Tasks, &sdk.TaskConfig{ID: t, Image: "busybox"})
	}
	return cfg
}

// TestVersionRetentionNeverPrunesLive registers more versions than the
// retention keeps: the oldest go, except the live one.
func TestVersionRetentionNeverPrunesLive(t *testing.T) {
	cl, _ := devNode(t, func(c *agent.Config) { c.API.PipelineVersionRetention = 3 })
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := cl.RegisterConfig(ctx, pipeline("keep", "one")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.DeployConfig(ctx, "keep", 1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := cl.RegisterConfig(ctx, pipeline("keep", "one")); err != nil {
			t.Fatal(err)
		}
	}
	list, err := cl.ListConfigs(ctx, "keep", client.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range list {
		got = append(got, fmt.Sprintf("%d:%s", c.Version, c.State))
	}
	if want := "1:live,6:unreleased,7:unreleased"; strings.Join(got, ",") != want {
		t.Fatalf("versions %v, want %s", got, want)
	}
	p, err := cl.GetPipeline(ctx, "keep")
	if err != nil || p.LatestVersion != 7 || p.LiveVersion != 1 {
		t.Fatalf("pipeline %+v, %v", p, err)
	}
	// Rolling back and forth records deployments and deprecates the old version.
	if _, err := cl.DeployConfig(ctx, "keep", 7); err != nil {
		t.Fatal(err)
	}
	old, err := cl.GetConfig(ctx, "keep", 1)
	if err != nil || old.State != model.ConfigStateDeprecated || old.Deprecated == 0 {
		t.Fatalf("version 1 after deploying 7: %+v, %v", old, err)
	}
	deps, err := cl.ListDeployments(ctx, "keep", client.Page{})
	if err != nil || len(deps) != 2 || deps[1].StartVersion != 1 || deps[1].EndVersion != 7 {
		t.Fatalf("deployments %+v, %v", deps, err)
	}
}

// TestIdempotencyKey: the same key twice creates once and answers twice.
func TestIdempotencyKey(t *testing.T) {
	_, url := devNode(t)
	post := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPost, url+"/api/namespaces", strings.NewReader(`{"id":"once"}`))
		req.Header.Set("gofer-api-version", "v0")
		req.Header.Set("Idempotency-Key", "k-123")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if a, b := post(), post(); a.StatusCode != http.StatusCreated || b.StatusCode != http.StatusCreated {
		t.Fatalf("statuses %d, %d; want 201 twice", a.StatusCode, b.StatusCode)
	}
	cl, _ := client.New([]string{url})
	events, err := cl.ListEvents(context.Background(), client.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Kind == model.EventCreatedNamespace && e.Details.String("namespace_id") == "once" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d created_namespace events for one idempotent request, want 1", n)
	}
}

// TestEventStream follows the SSE stream from history, sees a new event
// live, and resumes after a reconnect without repeats.
func TestEventStream(t *testing.T) {
	cl, _ := devNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := make(chan *model.Event, 100)
	go cl.StreamEvents(ctx, true, func(e *model.Event) error {
		seen <- e
		return nil
	})
	next := func() *model.Event {
		select {
		case e := <-seen:
			return e
		case <-ctx.Done():
			t.Fatal("no event arrived")
		}
		return nil
	}
	if first := next(); first.ID != 1 || first.Kind != model.EventInitializedCluster {
		t.Fatalf("history starts with %+v", first)
	}
	if _, err := cl.CreateNamespace(ctx, "live-one", "", ""); err != nil {
		t.Fatal(err)
	}
	for {
		e := next()
		if e.Kind == model.EventCreatedNamespace {
			if e.Details.String("namespace_id") != "live-one" {
				t.Fatalf("unexpected event %+v", e)
			}
			break
		}
	}
}

// TestSSEResumeWithLastEventID checks the raw protocol: the stream
// announces its cursor, and Last-Event-ID resumes strictly after it.
func TestSSEResumeWithLastEventID(t *testing.T) {
	cl, url := devNode(t)
	ctx := context.Background()
	for _, id := range []string{"aaa", "bbb", "ccc"} {
		if _, err := cl.CreateNamespace(ctx, id, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	all, err := cl.ListEvents(ctx, client.Page{})
	if err != nil {
		t.Fatal(err)
	}
	resumeAfter := all[len(all)-2].ID
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/events/stream", nil)
	req.Header.Set("gofer-api-version", "v0")
	req.Header.Set("Last-Event-ID", fmt.Sprint(resumeAfter))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var ids []string
	for sc.Scan() && len(ids) < 2 {
		if line := sc.Text(); strings.HasPrefix(line, "id: ") {
			ids = append(ids, strings.TrimPrefix(line, "id: "))
		}
	}
	want := []string{fmt.Sprint(resumeAfter), fmt.Sprint(all[len(all)-1].ID)}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("stream ids %v, want cursor then the last event %v", ids, want)
	}
}

func TestReadConsistencyParams(t *testing.T) {
	cl, url := devNode(t)
	ctx := context.Background()
	if _, err := cl.CreateNamespace(ctx, "after", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AtLeast(cl.LastIndex()).GetNamespace(ctx, "after"); err != nil {
		t.Fatalf("min_index read of my own write: %v", err)
	}
	if _, err := cl.Consistent().GetNamespace(ctx, "after"); err != nil {
		t.Fatalf("consistent read: %v", err)
	}
	resp, err := get(fmt.Sprintf("%s/api/namespaces/after?min_index=%d&wait=100ms", url, cl.LastIndex()+1000))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("unreachable min_index: status %d Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, h := range []string{"X-Gofer-Index", "X-Gofer-Known-Leader", "X-Gofer-Last-Contact"} {
		if resp, _ := get(url + "/api/namespaces"); resp.Header.Get(h) == "" {
			t.Errorf("read response lacks %s", h)
		}
	}
}

// TestChunkedBodyOverLimit: a body without Content-Length is cut off at
// the limit with a 413, not read into memory.
func TestChunkedBodyOverLimit(t *testing.T) {
	_, url := devNode(t)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"id":"big","description":"`))
		chunk := strings.Repeat("x", 64<<10)
		for i := 0; i < 16; i++ {
			if _, err := pw.Write([]byte(chunk)); err != nil {
				return
			}
		}
		pw.Write([]byte(`"}`))
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, url+"/api/namespaces", pr)
	req.Header.Set("gofer-api-version", "v0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d (%s), want 413", resp.StatusCode, body)
	}
}

// TestEquivalentConfigsHashEqual: a config written by hand ("90s", no
// variables map) and the same config from an SDK ("1m30s", {}) are one
// config, so gofer up can tell a re-registration is not a change.
func TestEquivalentConfigsHashEqual(t *testing.T) {
	cl, _ := devNode(t)
	ctx := context.Background()
	a := pipeline("same", "one")
	a.Tasks[0].Timeout = "90s"
	b := pipeline("same", "one")
	b.Tasks[0].Timeout = "1m30s"
	b.Tasks[0].Variables = map[string]string{}
	b.Tasks[0].DependsOn = map[string]sdk.RequiredParentStatus{}
	first, err := cl.RegisterConfig(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	second, err := cl.RegisterConfig(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if first.Hash != second.Hash || second.Tasks[0].Timeout != "1m30s" {
		t.Fatalf("hashes %s / %s, stored timeout %q", first.Hash, second.Hash, second.Tasks[0].Timeout)
	}
}

// TestRunInputLimits: a cancel's grace and a run's variables are checked
// before anything is replicated, with a 400 that names the field.
func TestRunInputLimits(t *testing.T) {
	cl, url := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	cfg := sdk.NewPipeline("limits", "limits").Tasks(sdk.NewTask("tsk", "img")).Config()
	if _, err := cl.RegisterConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeployConfig(ctx, "limits", 1); err != nil {
		t.Fatal(err)
	}
	r, err := cl.StartRun(ctx, "limits", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"NaN", "Inf", "-1", "1e300", "3601", "x"} {
		req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/api/namespaces/default/pipelines/limits/runs/%d/tasks/tsk?wait_for=%s", url, r.RunID, v), nil)
		req.Header.Set("gofer-api-version", "v0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "wait_for") {
			t.Errorf("wait_for=%s: %d %s; want 400 naming wait_for", v, resp.StatusCode, body)
		}
	}
	big := map[string]string{}
	for i := 0; i < 3; i++ {
		big[fmt.Sprintf("V%d", i)] = strings.Repeat("x", 60<<10)
	}
	if _, err := cl.StartRun(ctx, "limits", big); err == nil || !strings.Contains(err.Error(), "variables") {
		t.Fatalf("180 KiB of run variables: %v; want a 400 naming variables", err)
	}
}

// Bad secret and object requests get a 4xx that names the field and
// change nothing.
func TestSecretAndObjectInputErrors(t *testing.T) {
	cl, url := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop"; c.Objects.MaxObjectBytes = 1024 })
	ctx := context.Background()
	if _, err := cl.RegisterConfig(ctx, sdk.NewPipeline("stores", "stores").Tasks(sdk.NewTask("tsk", "img")).Config()); err != nil {
		t.Fatal(err)
	}
	send := func(method, path, body string) (int, string) { return sendRaw(t, url, method, path, body, "") }
	const p = "/api/namespaces/default/pipelines/stores"
	for _, tc := range []struct {
		method, path, body string
		status             int
		names              string
	}{
		{"POST", p + "/secrets", `{"key":"k!","content":"v"}`, 400, "key"},
		{"POST", p + "/secrets", `{"key":"kkk","content":""}`, 400, "content"},
		{"POST", p + "/secrets", `{"key":"kkk","content":"v","colour":"red"}`, 400, "colour"},
		{"POST", p + "/secrets", `{"key":"kkk","content":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "content"},
		{"GET", p + "/secrets/kkk?include_secret=maybe", "", 400, "include_secret"},
		{"GET", p + "/secrets/kkk", "", 404, "kkk"},
		{"POST", "/api/secrets/global", `{"key":"ggg","content":"v"}`, 400, "namespaces"},
		{"POST", "/api/secrets/global", `{"key":"ggg","content":"v","namespaces":["("]}`, 400, "namespaces[0]"},
		{"POST", "/api/secrets/global", `{"key":"ggg","content":"v","namespaces":["default","prod)|(.*"]}`, 400, "namespaces[1]"},
		{"POST", p + "/objects/obj?force=perhaps", "data", 400, "force"},
		{"POST", p + "/objects/obj", strings.Repeat("x", 1025), 413, "max_object_bytes"},
		{"POST", "/api/namespaces/default/pipelines/nope/objects/obj", "data", 404, "nope"},
		{"POST", p + "/runs/0/objects/obj", "data", 400, "run"},
		{"POST", p + "/runs/9/objects/obj", "data", 404, "run 9"},
		{"DELETE", p + "/objects/obj", "", 404, "obj"},
	} {
		status, body := send(tc.method, tc.path, tc.body)
		if status != tc.status || !strings.Contains(body, tc.names) {
			t.Errorf("%s %s: %d %.200s; want %d naming %q", tc.method, tc.path, status, body, tc.status, tc.names)
		}
	}
	if list, err := cl.ListSecrets(ctx, client.SecretScope{Pipeline: "stores"}, client.Page{}); err != nil || len(list) != 0 {
		t.Errorf("secrets after refused requests: %v %v", list, err)
	}
	if list, err := cl.ListObjects(ctx, client.ObjectScope{Pipeline: "stores"}, client.Page{}); err != nil || len(list) != 0 {
		t.Errorf("objects after refused requests: %v %v", list, err)
	}
}

// TestPublicRoutesDoNotWait: a public route has no token to check before a
// wait, so ?min_index and ?consistent must not hold its connection (or, on
// a follower, a forwarding slot); it answers at once.
func TestPublicRoutesDoNotWait(t *testing.T) {
	cl, url := devNode(t)
	// Health answers 200 once the node leads.
	if _, err := cl.CreateNamespace(context.Background(), "ready", "", ""); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"/api/system/health?min_index=999999999&wait=5s",
		"/api/system/metadata?min_index=999999999&wait=5s",
		"/api/system/health?consistent=true&min_index=999999999&wait=5s",
	} {
		client := &http.Client{Timeout: 3 * time.Second}
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		req.Header.Set("gofer-api-version", "v0")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v (held until the client gave up)", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", path, resp.StatusCode)
		}
		if resp.Header.Get("X-Gofer-Index") == "" {
			t.Errorf("GET %s lacks X-Gofer-Index", path)
		}
	}
}

// sendRaw sends one request with the version header (and the content type,
// when given) and returns the status and body: for tests of what the API
// answers to input the client would never send.
func sendRaw(t *testing.T, url, method, path, body, contentType string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
	req.Header.Set("gofer-api-version", "v0")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
