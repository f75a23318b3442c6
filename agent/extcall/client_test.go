package extcall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeExtension plays an extension: handler answers each call, after the
// bearer was checked.
func fakeExtension(t *testing.T, handler http.HandlerFunc) (*Client, *Directory) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := NewDirectory()
	dir.Set("ext", Target{BaseURL: srv.URL, Secret: "s3cret"})
	return NewClient(dir), dir
}

func TestSubscribeSendsUpstreamShape(t *testing.T) {
	var got map[string]any
	var method, path string
	c, _ := fakeExtension(t, func(w http.ResponseWriter, r *http.Request) {
		method, path = r.Method, r.URL.Path
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusNoContent)
	})
	err := c.Subscribe(context.Background(), "ext", Subscription{NamespaceID: "ns", PipelineID: "p", SubscriptionID: "s", Params: map[string]string{"every": "1m"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"namespace_id": "ns", "pipeline_id": "p", "pipeline_subscription_id": "s",
		"pipeline_subscription_params": map[string]any{"every": "1m"}}
	if method != http.MethodPost || path != "/api/subscribe" || !jsonEqual(got, want) {
		t.Fatalf("%s %s %v, want POST /api/subscribe %v", method, path, got, want)
	}
}

func TestUnsubscribeTakesUpstreams201(t *testing.T) {
	var got map[string]any
	c, _ := fakeExtension(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete || r.URL.Path != "/api/subscribe" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusCreated) // upstream's Go SDK
	})
	if err := c.Unsubscribe(context.Background(), "ext", SubscriptionRef{NamespaceID: "ns", PipelineID: "p", SubscriptionID: "s"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"namespace_id": "ns", "pipeline_id": "p", "pipeline_subscription_id": "s"}
	if !jsonEqual(got, want) {
		t.Fatalf("body %v, want %v", got, want)
	}
}

// (The supervisor's own GET /api/info takes text/plain JSON too:
// agent/supervisor's tests.)
func TestDebugTakesJSONLabelledTextPlain(t *testing.T) {
	c, _ := fakeExtension(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8") // upstream's SDK
		switch r.URL.Path {
		case "/api/debug":
			_, _ = io.WriteString(w, `{"info":"{\"subs\":2}"}`)
		}
	})
	info, err := c.Debug(context.Background(), "ext")
	if err != nil || info != `{"subs":2}` {
		t.Fatalf("Debug = %q, %v", info, err)
	}
}

func TestExtensionErrorsCarryStatusAndMessage(t *testing.T) {
	long := strings.Repeat("x", 10000)
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"json", `{"request_id":"","error_code":"bad_request","message":"invalid cron expression: hour 24"}`, 400, "invalid cron expression: hour 24"},
		{"plain", "every: 1s is under the minimum\n", 400, "every: 1s is under the minimum"},
		{"empty", "", 409, "Conflict"},
		{"server", `{"message":"boom"}`, 500, "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := fakeExtension(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			err := c.Subscribe(context.Background(), "ext", Subscription{NamespaceID: "ns", PipelineID: "p", SubscriptionID: "s"})
			var e *Error
			if !errors.As(err, &e) || e.Status != tc.status || e.Message != tc.want || e.ExtensionID != "ext" {
				t.Fatalf("err = %#v, want status %d message %q", err, tc.status, tc.want)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		c, _ := fakeExtension(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, long)
		})
		err := c.Subscribe(context.Background(), "ext", Subscription{})
		var e *Error
		if !errors.As(err, &e) || len(e.Message) > maxMessage+len("…") {
			t.Fatalf("message of %d bytes, want at most %d", len(e.Message), maxMessage)
		}
	})
}

func TestNotRunningAndUnreachable(t *testing.T) {
	c := NewClient(NewDirectory())
	err := c.Subscribe(context.Background(), "cron", Subscription{})
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), `"cron"`) {
		t.Fatalf("err = %v, want not running naming cron", err)
	}

	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	dir := NewDirectory()
	dir.Set("gone", Target{BaseURL: srv.URL, Secret: "s"})
	err = NewClient(dir).Subscribe(context.Background(), "gone", Subscription{})
	var u *UnreachableError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("err = %v, want unreachable", err)
	}
}

func TestOneCallAtATimePerExtension(t *testing.T) {
	var active, most atomic.Int32
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	c, dir := fakeExtension(t, func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		defer active.Add(-1)
		if n > most.Load() {
			most.Store(n)
		}
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	})
	// A second extension at the same address has its own turn.
	other, _ := dir.Target("ext")
	dir.Set("other", other)

	first := make(chan error, 1)
	go func() { first <- c.Subscribe(context.Background(), "ext", Subscription{}) }()
	<-entered

	// The same extension: the second call waits, and gives up with its
	// context without reaching the extension.
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { second <- c.Subscribe(ctx, "ext", Subscription{}) }()
	select {
	case <-entered:
		t.Fatal("a second call reached the extension while the first was running")
	case err := <-second:
		t.Fatalf("second call ended before its context: %v", err)
	case <-time.After(100 * time.Millisecond): // absence check: it is still waiting
	}
	cancel()
	if err := <-second; err == nil || !strings.Contains(err.Error(), "previous call") {
		t.Fatalf("second call: %v, want it to give up waiting", err)
	}

	// Another extension is not held up.
	third := make(chan error, 1)
	go func() { third <- c.Subscribe(context.Background(), "other", Subscription{}) }()
	<-entered
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	// Once the first ended, the extension takes the next call.
	if err := c.Subscribe(context.Background(), "ext", Subscription{}); err != nil {
		t.Fatal(err)
	}
}

func TestCallTimesOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // then net/http notices the client hang up
		<-r.Context().Done()
	}))
	defer srv.Close()
	dir := NewDirectory()
	dir.Set("slow", Target{BaseURL: srv.URL, Secret: "s"})
	c := NewClient(dir, WithTimeouts(50*time.Millisecond, 0))
	err := c.Unsubscribe(context.Background(), "slow", SubscriptionRef{})
	var u *UnreachableError
	if !errors.As(err, &u) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want an unreachable deadline error", err)
	}
}

func TestExternalEventSendsBodyAsByteArray(t *testing.T) {
	body := make([]byte, 70000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	var raw []byte
	var length int64
	c, _ := fakeExtension(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/external-event" || r.Method != http.MethodPost {
			w.WriteHeader(404)
			return
		}
		length = r.ContentLength
		raw, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	hdr := map[string]string{"x-hub-signature-256": "sha256=ab", "content-type": "application/json"}
	if err := c.ExternalEvent(context.Background(), "ext", Event{Headers: hdr, Body: body}); err != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != length {
		t.Fatalf("Content-Length %d, body %d bytes", length, len(raw))
	}
	if !bytes.Contains(raw, []byte(`"body":[0,7,14,`)) {
		t.Fatalf("body is not a JSON array of numbers: %.80s", raw)
	}
	// As upstream's Go SDK decodes it: a number array into []byte.
	var got struct {
		Headers map[string]string `json:"headers"`
		Body    []byte            `json:"body"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, body) || got.Headers["x-hub-signature-256"] != "sha256=ab" {
		t.Fatalf("decoded %d bytes, headers %v", len(got.Body), got.Headers)
	}

	// An empty body is an empty array.
	if err := c.ExternalEvent(context.Background(), "ext", Event{}); err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"headers":{},"body":[]}` || length != int64(len(raw)) {
		t.Fatalf("empty event: %q (Content-Length %d)", raw, length)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
