package extension

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testSecret = "s3cret-token"

// recExt records every call the SDK makes into it.
type recExt struct {
	mu          sync.Mutex
	inits       int
	subs        []Subscription
	unsubs      []Subscription
	events      []Event
	shutdowns   int
	refuse      map[string]error // subscription id -> error
	onSubscribe func(Subscription)
	gofer       *Client
}

func (e *recExt) Init(_ context.Context, g *Client) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inits++
	e.gofer = g
	return nil
}

func (e *recExt) Info() Documentation {
	return Documentation{
		PipelineSubscriptionParams: []Param{{Key: "every", Required: true, Documentation: "time between runs"}},
		Body:                       "test extension",
	}
}

func (e *recExt) Subscribe(_ context.Context, s Subscription) error {
	if e.onSubscribe != nil {
		e.onSubscribe(s)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.refuse[s.ID]; err != nil {
		return err
	}
	e.subs = append(e.subs, s)
	return nil
}

func (e *recExt) Unsubscribe(_ context.Context, s Subscription) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unsubs = append(e.unsubs, s)
	return nil
}

func (e *recExt) Shutdown(context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdowns++
}

func (e *recExt) snapshot() (subs, unsubs []Subscription, events []Event, shutdowns int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Subscription(nil), e.subs...), append([]Subscription(nil), e.unsubs...),
		append([]Event(nil), e.events...), e.shutdowns
}

// eventExt also takes external events and has a debug page.
type eventExt struct{ recExt }

func (e *eventExt) ExternalEvent(_ context.Context, ev Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ev)
	return nil
}

func (e *eventExt) Debug(context.Context) string { return "state: fine" }

func testConfig(goferURLs ...string) SystemConfig {
	return SystemConfig{ID: "interval", Secret: testSecret, GoferHosts: goferURLs, BindAddress: "127.0.0.1:0"}
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startExtServer serves ext's API on a test server.
func startExtServer(t *testing.T, ext Extension) (*httptest.Server, *server) {
	t.Helper()
	s := newServer(testConfig(), ext, testLogger(t))
	ts := httptest.NewServer(s.handler())
	t.Cleanup(ts.Close)
	return ts, s
}

// callExt sends one request to the extension's API.
func callExt(t *testing.T, ts *httptest.Server, method, path, auth, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// fakeGofer is Gofer's API as an extension sees it: the subscription list
// and run starts, recorded.
type fakeGofer struct {
	t  *testing.T
	mu sync.Mutex
	// subscriptions is the stored list; listStatus, when not empty, is
	// answered (and popped) before the list.
	subscriptions []StoredSubscription
	listStatus    []int
	listCalls     int
	// runStatus is answered (and popped) before a 201.
	runStatus []int
	runs      []*http.Request
	runBodies []string
	nextRunID int64
}

func newFakeGofer(t *testing.T) (*fakeGofer, *httptest.Server) {
	g := &fakeGofer{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/extensions/{id}/subscriptions", g.list)
	mux.HandleFunc("POST /api/namespaces/{ns}/pipelines/{p}/runs", g.startRun)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return g, ts
}

func (g *fakeGofer) list(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.listCalls++
	if r.Header.Get("Authorization") != "Bearer "+testSecret || r.Header.Get("gofer-api-version") != "v0" {
		http.Error(w, `{"message":"bad headers"}`, http.StatusUnauthorized)
		return
	}
	if len(g.listStatus) > 0 {
		st := g.listStatus[0]
		g.listStatus = g.listStatus[1:]
		w.WriteHeader(st)
		return
	}
	// Labelled text/plain, as upstream labels some JSON.
	w.Header().Set("Content-Type", "text/plain")
	_ = json.NewEncoder(w).Encode(map[string]any{"subscriptions": g.subscriptions})
}

func (g *fakeGofer) startRun(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runs = append(g.runs, r)
	g.runBodies = append(g.runBodies, string(body))
	if len(g.runStatus) > 0 {
		st := g.runStatus[0]
		g.runStatus = g.runStatus[1:]
		if st == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(st)
		_, _ = io.WriteString(w, `{"code":"unavailable","message":"no leader"}`)
		return
	}
	g.nextRunID++
	var req struct {
		Variables map[string]string `json:"variables"`
	}
	_ = json.Unmarshal(body, &req)
	vars := []map[string]string{}
	for k, v := range req.Variables {
		vars = append(vars, map[string]string{"key": k, "value": v, "source": "run_options"})
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"run": map[string]any{
		"namespace_id": r.PathValue("ns"), "pipeline_id": r.PathValue("p"), "run_id": g.nextRunID,
		"state": "pending", "status": "unknown", "variables": vars, "some_new_field": true,
	}})
}

func (g *fakeGofer) runRequests() ([]*http.Request, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*http.Request(nil), g.runs...), append([]string(nil), g.runBodies...)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fastRetry makes the client retry quickly in tests.
func fastRetry() ClientOption { return WithRetry(5*time.Second, time.Millisecond, 10*time.Millisecond) }
