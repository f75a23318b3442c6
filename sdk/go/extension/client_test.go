package extension

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// StartRun sends the extension's token, the API version and the
// idempotency key, and retries a 503 with the SAME key.
func TestStartRunRetriesWithTheSameKey(t *testing.T) {
	g, ts := newFakeGofer(t)
	g.runStatus = []int{http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusServiceUnavailable}
	c := NewClient(testConfig(ts.URL), fastRetry(), WithLogger(testLogger(t)))

	run, err := c.StartRun(context.Background(), "ns 1", "nightly", map[string]string{"A": "1"}, "interval:every5:1700000000")
	if err != nil {
		t.Fatal(err)
	}
	reqs, bodies := g.runRequests()
	if len(reqs) != 4 {
		t.Fatalf("%d attempts, want 4", len(reqs))
	}
	for i, r := range reqs {
		if got := r.Header.Get("Idempotency-Key"); got != "interval:every5:1700000000" {
			t.Fatalf("attempt %d key = %q", i, got)
		}
		if r.Header.Get("Authorization") != "Bearer "+testSecret || r.Header.Get("gofer-api-version") != "v0" {
			t.Fatalf("attempt %d headers = %v", i, r.Header)
		}
		if r.URL.EscapedPath() != "/api/namespaces/ns%201/pipelines/nightly/runs" {
			t.Fatalf("path = %s", r.URL.EscapedPath())
		}
		if bodies[i] != `{"variables":{"A":"1"}}` {
			t.Fatalf("body = %s", bodies[i])
		}
	}
	// The answer is labelled text/plain, has variables as a list and a
	// field the client does not know.
	if run.RunID != 1 || run.NamespaceID != "ns 1" || run.PipelineID != "nightly" || run.State != "pending" || run.Variables["A"] != "1" {
		t.Fatalf("run = %+v", run)
	}
}

func TestStartRunRules(t *testing.T) {
	g, ts := newFakeGofer(t)
	c := NewClient(testConfig(ts.URL), fastRetry())
	ctx := context.Background()
	if _, err := c.StartRun(ctx, "ns", "p", nil, ""); !errors.Is(err, ErrNoIdempotencyKey) {
		t.Fatalf("no key: %v", err)
	}
	if _, err := c.StartRun(ctx, "ns", "p", nil, strings.Repeat("k", MaxIdempotencyKey+1)); err == nil {
		t.Fatal("a key over the limit was sent")
	}
	if reqs, _ := g.runRequests(); len(reqs) != 0 {
		t.Fatalf("%d requests sent for invalid calls", len(reqs))
	}
	// No variables is an empty object, not null.
	if _, err := c.StartRun(ctx, "ns", "p", nil, "k1"); err != nil {
		t.Fatal(err)
	}
	if _, bodies := g.runRequests(); bodies[0] != `{"variables":{}}` {
		t.Fatalf("body = %s", bodies[0])
	}

	// A client error is not retried and carries Gofer's message.
	g.mu.Lock()
	g.runStatus = []int{http.StatusNotFound}
	g.mu.Unlock()
	_, err := c.StartRun(ctx, "ns", "p", nil, "k2")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Message != "no leader" {
		t.Fatalf("404: %v", err)
	}
	if reqs, _ := g.runRequests(); len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (no retry of a 404)", len(reqs))
	}

	// Retries stop when retryFor has passed.
	g.mu.Lock()
	g.runStatus = []int{503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503}
	g.mu.Unlock()
	short := NewClient(testConfig(ts.URL), WithRetry(30*time.Millisecond, 5*time.Millisecond, 5*time.Millisecond))
	_, err = short.StartRun(ctx, "ns", "p", nil, "k3")
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
		t.Fatalf("exhausted retries: %v (want ErrUnavailable wrapping the 503)", err)
	}
}

// A host that refuses connections is skipped for the next one in
// GOFER_HOST's list, with the same key.
func TestStartRunFailsOverOnConnectionError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	g, ts := newFakeGofer(t)
	c := NewClient(testConfig(dead, ts.URL), fastRetry())
	if _, err := c.StartRun(context.Background(), "ns", "p", nil, "cron:nightly:1700000000"); err != nil {
		t.Fatal(err)
	}
	reqs, _ := g.runRequests()
	if len(reqs) != 1 || reqs[0].Header.Get("Idempotency-Key") != "cron:nightly:1700000000" {
		t.Fatalf("requests = %d", len(reqs))
	}
	// The host that answered is tried first next time.
	if _, err := c.StartRun(context.Background(), "ns", "p", nil, "cron:nightly:1700000060"); err != nil {
		t.Fatal(err)
	}
}

// A 2xx whose body cannot be read still counts as started.
func TestStartRunUnreadableAnswer(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("run started"))
	}))
	defer ts.Close()
	c := NewClient(testConfig(ts.URL), fastRetry(), WithLogger(testLogger(t)))
	run, err := c.StartRun(context.Background(), "ns", "p", nil, "github:abc")
	if err != nil || run.NamespaceID != "ns" || run.PipelineID != "p" || run.RunID != 0 {
		t.Fatalf("run = %+v, err = %v", run, err)
	}
}

func TestDecodeRunVariablesForms(t *testing.T) {
	for _, body := range []string{
		`{"run":{"run_id":3,"variables":[{"key":"A","value":"1","source":"run_options"}]}}`,
		`{"run":{"run_id":3,"variables":{"A":"1"}}}`,
	} {
		run, err := decodeRun([]byte(body))
		if err != nil || run.RunID != 3 || run.Variables["A"] != "1" {
			t.Fatalf("%s: %+v %v", body, run, err)
		}
	}
	if _, err := decodeRun([]byte(`{"pipeline":{}}`)); err == nil {
		t.Fatal("an answer without run decoded")
	}
}

// Subscriptions retries while Gofer is unavailable and stops paging when a
// server ignores limit/offset (upstream answers the whole list each time).
func TestSubscriptionsListing(t *testing.T) {
	g, ts := newFakeGofer(t)
	g.listStatus = []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable}
	for i := range subscriptionsPage {
		g.subscriptions = append(g.subscriptions, StoredSubscription{NamespaceID: "ns", PipelineID: "p",
			ExtensionID: "interval", SubscriptionID: fmt.Sprintf("s%d", i), Settings: map[string]string{"every": "1m"}, Status: "active"})
	}
	c := NewClient(testConfig(ts.URL), fastRetry())
	subs, err := c.Subscriptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != subscriptionsPage || subs[0].Settings["every"] != "1m" || subs[0].Status != "active" {
		t.Fatalf("%d subscriptions, first %+v", len(subs), subs[0])
	}
	g.mu.Lock()
	calls := g.listCalls
	g.mu.Unlock()
	// Two 503s, the first page, and the repeated page that ended it.
	if calls != 4 {
		t.Fatalf("%d list calls, want 4", calls)
	}

	// An auth failure is not retried.
	bad := NewClient(SystemConfig{ID: "interval", Secret: "wrong", GoferHosts: []string{ts.URL}}, fastRetry())
	var apiErr *APIError
	if _, err := bad.Subscriptions(context.Background()); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %v", err)
	}
}

// The stored subscription shape as upstream answers it decodes.
func TestStoredSubscriptionShape(t *testing.T) {
	var page struct {
		Subscriptions []StoredSubscription `json:"subscriptions"`
	}
	body := `{"subscriptions":[{"namespace_id":"default","pipeline_id":"simple","extension_id":"interval",
		"subscription_id":"every_minute","settings":{"every":"1m"},"status":"active",
		"status_reason":{"reason":"unknown","description":""}}]}`
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	s := page.Subscriptions[0]
	if s.SubscriptionID != "every_minute" || s.Settings["every"] != "1m" || !strings.Contains(string(s.StatusReason), "unknown") {
		t.Fatalf("%+v", s)
	}
}

// A refused start's missing values reach the caller (a redelivery or a
// later tick may pass once they are stored), with a compact summary.
func TestStartRunRefusalCarriesMissingValues(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"code":"conflict","message":"2 secrets or objects it names are not there",
			"missing":[{"kind":"pipeline_secret","key":"a","problem":"does not exist","fix":"gofer secret pipeline put p a VALUE","used_by":["t.A"]},
			{"kind":"global_secret","key":"b","problem":"does not exist","fix":"gofer secret global put b VALUE","used_by":["t.B"]}]}`))
	}))
	defer ts.Close()
	c := NewClient(testConfig(ts.URL), fastRetry(), WithLogger(testLogger(t)))
	_, err := c.StartRun(context.Background(), "ns", "p", nil, "github:abc")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || len(apiErr.Missing) != 2 || apiErr.Missing[1].UsedBy[0] != "t.B" {
		t.Fatalf("err = %#v", err)
	}
	if got, want := apiErr.MissingSummary(), "missing: pipeline_secret a, global_secret b"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}
