package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/agent/extcall"
	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
)

// standIn plays a running extension, as upstream's SDK serves it: it
// records every call and refuses the settings refuse names.
type standIn struct {
	srv    *httptest.Server
	calls  chan standInCall
	mu     sync.Mutex
	refuse map[string]string // setting value → message of the 400
	status int               // answer to external events; 0: 204
}

type standInCall struct {
	method, path string
	body         map[string]any
	raw          []byte
}

func newStandIn(t *testing.T) *standIn {
	s := &standIn{calls: make(chan standInCall, 64), refuse: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer ext-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		s.calls <- standInCall{method: r.Method, path: r.URL.Path, body: body, raw: raw}
		w.Header().Set("Content-Type", "text/plain") // as upstream's SDK labels its JSON
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.URL.Path {
		case "/api/subscribe":
			if params, ok := body["pipeline_subscription_params"].(map[string]any); ok {
				for _, v := range params {
					if msg, bad := s.refuse[v.(string)]; bad {
						w.WriteHeader(http.StatusBadRequest)
						_, _ = io.WriteString(w, `{"request_id":"","error_code":"bad_request","message":`+quote(msg)+`}`)
						return
					}
				}
			}
			if r.Method == http.MethodDelete {
				w.WriteHeader(http.StatusCreated) // upstream's Go SDK
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case "/api/debug":
			_, _ = io.WriteString(w, `{"info":"{\"subscriptions\":1}"}`)
		case "/api/external-event":
			if s.status != 0 {
				w.WriteHeader(s.status)
				_, _ = io.WriteString(w, `{"message":"signature mismatch"}`)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func (s *standIn) target() extcall.Target {
	return extcall.Target{BaseURL: s.srv.URL, Secret: "ext-secret"}
}

// next waits for the stand-in's next call.
func (s *standIn) next(t *testing.T) standInCall {
	t.Helper()
	select {
	case c := <-s.calls:
		return c
	case <-time.After(35 * time.Second):
		// Some calls (the DELETE after a disable) are made after the
		// answer, bounded by the server's 30 s unsubscribe timeout: wait past it.
		t.Fatal("the extension was not called")
		return standInCall{}
	}
}

// none checks no call is pending (the calls it checks are synchronous).
func (s *standIn) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-s.calls:
		t.Fatalf("unexpected call %s %s %s", c.method, c.path, c.raw)
	default:
	}
}

// The leader asks the running extension to validate a subscription
// (POST /api/subscribe with the secret markers resolved) before storing
// it; a refusal is a 400 with the extension's message and stores nothing;
// an extension that is not running is a 503 naming it; a disable, an
// enable and a delete follow to the extension.
func TestSubscriptionsGoThroughTheExtension(t *testing.T) {
	cl, url, a := devAgent(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	if _, err := cl.RegisterConfig(ctx, sdk.NewPipeline("subs", "subs").Tasks(sdk.NewTask("tsk", "img")).Config()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ext", "interval"} {
		if _, err := cl.InstallExtension(ctx, client.InstallRequest{ID: id, Image: "example/" + id + ":1"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.PutSecret(ctx, client.SecretScope{Pipeline: "subs"}, "tok", "hunter2", nil, false); err != nil {
		t.Fatal(err)
	}
	ext := newStandIn(t)
	ext.refuse["0 24 * * * *"] = `invalid cron expression: hour field "24": 24 is out of range 0-23`
	send := func(method, path, body string) (int, string) { return sendRaw(t, url, method, path, body, "") }
	const p = "/api/namespaces/default/pipelines/subs/subscriptions"
	stored := func(id string) bool {
		_, err := cl.GetSubscription(ctx, "subs", "ext", id)
		return err == nil
	}

	// Not running yet: 503 naming it, with Retry-After; nothing stored.
	req, _ := http.NewRequest("POST", url+p, strings.NewReader(`{"extension_id":"ext","subscription_id":"sub1","settings":{"every":"5m"}}`))
	req.Header.Set("gofer-api-version", "v0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `extension \"ext\" is not running`) {
		t.Fatalf("subscribe to an extension not running: %d %s (Retry-After %q)", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	if stored("sub1") {
		t.Fatal("a subscription was stored while its extension was not running")
	}
	// The built-in check still answers first while the extension is down.
	if status, body := send("POST", p, `{"extension_id":"interval","subscription_id":"sub1","settings":{"every":"30s"}}`); status != 400 || !strings.Contains(body, "below the minimum") {
		t.Fatalf("interval under its minimum while not running: %d %s", status, body)
	}

	a.ExtensionDirectory().Set("ext", ext.target())

	// Refused by the extension: 400 with its message, nothing stored.
	status, body := send("POST", p, `{"extension_id":"ext","subscription_id":"sub1","settings":{"expression":"0 24 * * * *"}}`)
	if status != 400 || !strings.Contains(body, `hour field \"24\": 24 is out of range 0-23`) || !strings.Contains(body, `extension \"ext\"`) {
		t.Fatalf("refused subscription: %d %s", status, body)
	}
	if c := ext.next(t); c.method != "POST" || c.path != "/api/subscribe" {
		t.Fatalf("call %s %s", c.method, c.path)
	}
	if stored("sub1") {
		t.Fatal("a refused subscription was stored")
	}

	// A missing secret is named; the extension is not asked.
	if status, body := send("POST", p, `{"extension_id":"ext","subscription_id":"sub1","settings":{"token":"pipeline_secret{{nope}}"}}`); status != 400 || !strings.Contains(body, "settings.token") || !strings.Contains(body, "nope") {
		t.Fatalf("missing secret: %d %s", status, body)
	}
	ext.none(t)

	// Accepted: the extension gets the marker resolved, the cluster keeps
	// the marker.
	sub, err := cl.Subscribe(ctx, "subs", "ext", "sub1", map[string]string{"token": "pipeline_secret{{tok}}", "expression": "0 0 * * * *"})
	if err != nil {
		t.Fatal(err)
	}
	c := ext.next(t)
	want := map[string]any{"namespace_id": "default", "pipeline_id": "subs", "pipeline_subscription_id": "sub1",
		"pipeline_subscription_params": map[string]any{"token": "hunter2", "expression": "0 0 * * * *"}}
	if c.method != "POST" || !jsonEq(c.body, want) {
		t.Fatalf("subscribe call %s %v, want %v", c.method, c.body, want)
	}
	if sub.Settings["token"] != "pipeline_secret{{tok}}" {
		t.Fatalf("stored settings %v: the marker must be kept", sub.Settings)
	}
	// A duplicate is the cluster's 409; the extension is not asked again.
	if status, body := send("POST", p, `{"extension_id":"ext","subscription_id":"sub1","settings":{}}`); status != 409 {
		t.Fatalf("duplicate: %d %s", status, body)
	}
	ext.none(t)

	// Disable: DELETE /api/subscribe follows (upstream's 201 is fine).
	if _, err := cl.SetSubscriptionStatus(ctx, "subs", "ext", "sub1", "disabled"); err != nil {
		t.Fatal(err)
	}
	ref := map[string]any{"namespace_id": "default", "pipeline_id": "subs", "pipeline_subscription_id": "sub1"}
	if c := ext.next(t); c.method != "DELETE" || c.path != "/api/subscribe" || !jsonEq(c.body, ref) {
		t.Fatalf("after disable: %s %s %v", c.method, c.path, c.body)
	}
	// Enable again while the extension refuses: 400, still disabled.
	ext.mu.Lock()
	ext.refuse["0 0 * * * *"] = "not today"
	ext.mu.Unlock()
	if status, body := send("PATCH", p+"/ext/sub1", `{"status":"active"}`); status != 400 || !strings.Contains(body, "not today") {
		t.Fatalf("enable refused: %d %s", status, body)
	}
	ext.next(t)
	if s, _ := cl.GetSubscription(ctx, "subs", "ext", "sub1"); s.Status != "disabled" {
		t.Fatalf("status %q after a refused enable", s.Status)
	}
	ext.mu.Lock()
	delete(ext.refuse, "0 0 * * * *")
	ext.mu.Unlock()
	if _, err := cl.SetSubscriptionStatus(ctx, "subs", "ext", "sub1", "active"); err != nil {
		t.Fatal(err)
	}
	if c := ext.next(t); c.method != "POST" || !jsonEq(c.body, want) {
		t.Fatalf("enable: %s %v", c.method, c.body)
	}

	// Delete: committed, then DELETE /api/subscribe.
	if err := cl.Unsubscribe(ctx, "subs", "ext", "sub1"); err != nil {
		t.Fatal(err)
	}
	if c := ext.next(t); c.method != "DELETE" || !jsonEq(c.body, ref) {
		t.Fatalf("after delete: %s %v", c.method, c.body)
	}
	// An extension that is gone does not block a delete.
	if _, err := cl.Subscribe(ctx, "subs", "ext", "sub2", nil); err != nil {
		t.Fatal(err)
	}
	ext.next(t)
	a.ExtensionDirectory().Delete("ext")
	if err := cl.Unsubscribe(ctx, "subs", "ext", "sub2"); err != nil {
		t.Fatalf("delete while the extension is gone: %v", err)
	}
	if stored("sub2") {
		t.Fatal("s2 still stored")
	}
}

// GET /api/extensions/{id}/debug answers the running extension's dump.
func TestExtensionDebug(t *testing.T) {
	cl, url, a := devAgent(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	if _, err := cl.InstallExtension(context.Background(), client.InstallRequest{ID: "ext", Image: "example/ext:1"}); err != nil {
		t.Fatal(err)
	}
	if status, body := sendRaw(t, url, "GET", "/api/extensions/ghost/debug", "", ""); status != 404 || !strings.Contains(body, "ghost") {
		t.Fatalf("unknown: %d %s", status, body)
	}
	if status, body := sendRaw(t, url, "GET", "/api/extensions/ext/debug", "", ""); status != 503 || !strings.Contains(body, "not running") {
		t.Fatalf("not running: %d %s", status, body)
	}
	ext := newStandIn(t)
	a.ExtensionDirectory().Set("ext", ext.target())
	status, body := sendRaw(t, url, "GET", "/api/extensions/ext/debug", "", "")
	if status != 200 || strings.TrimSpace(body) != `{"info":"{\"subscriptions\":1}"}` {
		t.Fatalf("debug: %d %s", status, body)
	}
}

// The external-events listener passes a webhook's headers and raw body to
// the extension (204), and answers 404, 413, 502 and 503 as documented.
func TestExternalEventsListener(t *testing.T) {
	evAddr := freeAddr(t)
	cl, _, a := devAgent(t, func(c *agent.Config) {
		c.Scheduler.Engine = "noop"
		c.ExternalEvents.Enable = true
		c.ExternalEvents.BindAddress = evAddr
	})
	if a.ExternalEventsAddr() != evAddr {
		t.Fatalf("listening on %q, want %q", a.ExternalEventsAddr(), evAddr)
	}
	if _, err := cl.InstallExtension(context.Background(), client.InstallRequest{ID: "github", Image: "example/github:1"}); err != nil {
		t.Fatal(err)
	}
	base := "http://" + evAddr
	post := func(path string, body []byte, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	payload := []byte(`{"ref":"refs/heads/main","bin":"` + "\x00\xff" + `"}`)
	hdr := map[string]string{"X-Hub-Signature-256": "sha256=abc", "X-GitHub-Delivery": "d-1", "Content-Type": "application/json"}

	if status, body := post("/api/external/github", payload, hdr); status != 503 || !strings.Contains(body, "not running") {
		t.Fatalf("not running: %d %s", status, body)
	}
	if status, body := post("/api/external/ghost", payload, hdr); status != 404 || !strings.Contains(body, "ghost") {
		t.Fatalf("unknown extension: %d %s", status, body)
	}
	ext := newStandIn(t)
	a.ExtensionDirectory().Set("github", ext.target())
	for _, path := range []string{"/api/external/github", "/external/github"} {
		if status, body := post(path, payload, hdr); status != 204 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		c := ext.next(t)
		var got struct {
			Headers map[string]string `json:"headers"`
			Body    []byte            `json:"body"`
		}
		if err := json.Unmarshal(c.raw, &got); err != nil || c.path != "/api/external-event" {
			t.Fatalf("%s %s: %v", c.path, c.raw, err)
		}
		if !bytes.Equal(got.Body, payload) || got.Headers["x-hub-signature-256"] != "sha256=abc" || got.Headers["x-github-delivery"] != "d-1" {
			t.Fatalf("event %q headers %v", got.Body, got.Headers)
		}
		if !bytes.Contains(c.raw, []byte(`"body":[123,34,`)) {
			t.Fatalf("the body is not sent as a byte array: %.60s", c.raw)
		}
	}
	// The extension refuses it (a bad signature): its own 401 and
	// message, not Gofer's credentials.
	ext.mu.Lock()
	ext.status = http.StatusUnauthorized
	ext.mu.Unlock()
	if status, body := post("/api/external/github", payload, hdr); status != 401 || !strings.Contains(body, "signature mismatch") || strings.Contains(body, "credentials") {
		t.Fatalf("refused: %d %s", status, body)
	}
	ext.next(t)
	// It fails: 502 with its status and message.
	ext.mu.Lock()
	ext.status = http.StatusInternalServerError
	ext.mu.Unlock()
	if status, body := post("/api/external/github", payload, hdr); status != 502 || !strings.Contains(body, "answered 500") {
		t.Fatalf("failed: %d %s", status, body)
	}
	ext.next(t)
	// It does not answer: 503 naming it, never its address.
	ext.srv.Close()
	if status, body := post("/api/external/github", payload, hdr); status != 503 || !strings.Contains(body, `\"github\" is not reachable`) ||
		strings.Contains(body, strings.TrimPrefix(ext.srv.URL, "http://")) {
		t.Fatalf("unreachable: %d %s", status, body)
	}
	ext = newStandIn(t)
	a.ExtensionDirectory().Set("github", ext.target())
	// Over 25 MiB: 413, and the extension never sees it.
	if status, body := post("/api/external/github", make([]byte, 25<<20+1), nil); status != 413 || !strings.Contains(body, "25 MiB") {
		t.Fatalf("oversize: %d %.200s", status, body)
	}
	ext.none(t)
	// Not a route of this listener.
	if status, _ := post("/api/namespaces", nil, nil); status != 404 {
		t.Fatalf("other path: %d", status)
	}
	// Request headers are capped at 64 KiB (a webhook's are a few KiB).
	if status, _ := post("/api/external/github", payload, map[string]string{"X-Big": strings.Repeat("h", 80<<10)}); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %d", status)
	}
	ext.none(t)
}

func jsonEq(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
