package extension

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const bearer = "Bearer " + testSecret

// Health needs no auth; every other route needs Gofer's bearer: no header
// or not a bearer → 400, a wrong secret → 401 (upstream's rules).
func TestAuthRules(t *testing.T) {
	ts, _ := startExtServer(t, &recExt{})
	if st, _ := callExt(t, ts, http.MethodGet, "/api/health", "", ""); st != http.StatusNoContent {
		t.Fatalf("health without auth = %d, want 204", st)
	}
	routes := []struct{ method, path, body string }{
		{http.MethodGet, "/api/info", ""},
		{http.MethodGet, "/api/debug", ""},
		{http.MethodPost, "/api/subscribe", `{"namespace_id":"n","pipeline_id":"p","pipeline_subscription_id":"s"}`},
		{http.MethodDelete, "/api/subscribe", `{"namespace_id":"n","pipeline_id":"p","pipeline_subscription_id":"s"}`},
		{http.MethodPost, "/api/external-event", `{"headers":{},"body":[]}`},
		{http.MethodPost, "/api/shutdown", ""},
	}
	for _, r := range routes {
		for _, tc := range []struct {
			auth string
			want int
		}{
			{"", http.StatusBadRequest},
			{"Basic " + testSecret, http.StatusBadRequest},
			{"Bearer", http.StatusBadRequest},
			{"Bearer wrong", http.StatusUnauthorized},
			{"Bearer " + testSecret + "x", http.StatusUnauthorized},
			{"Bearer " + testSecret[:len(testSecret)-1], http.StatusUnauthorized},
		} {
			if st, body := callExt(t, ts, r.method, r.path, tc.auth, r.body); st != tc.want {
				t.Errorf("%s %s with %q = %d %s, want %d", r.method, r.path, tc.auth, st, body, tc.want)
			}
		}
	}
	st, body := callExt(t, ts, http.MethodGet, "/api/info", bearer, "")
	if st != http.StatusOK {
		t.Fatalf("info = %d %s", st, body)
	}
	var info struct {
		ExtensionID   string `json:"extension_id"`
		Documentation struct {
			ConfigParams               []Param `json:"config_params"`
			PipelineSubscriptionParams []Param `json:"pipeline_subscription_params"`
			Body                       string  `json:"body"`
		} `json:"documentation"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatal(err)
	}
	if info.ExtensionID != "interval" || info.Documentation.Body != "test extension" ||
		len(info.Documentation.PipelineSubscriptionParams) != 1 || info.Documentation.PipelineSubscriptionParams[0].Key != "every" {
		t.Fatalf("info = %s", body)
	}
	// Absent lists are [] rather than null.
	if !strings.Contains(body, `"config_params":[]`) {
		t.Fatalf("config_params not an empty list: %s", body)
	}
}

// The SDK calls into the extension one call at a time.
func TestOneCallAtATime(t *testing.T) {
	var active, most atomic.Int32
	ext := &recExt{onSubscribe: func(Subscription) {
		n := active.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond) // widen the window for an overlap
		active.Add(-1)
	}}
	ts, _ := startExtServer(t, ext)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"namespace_id":"n","pipeline_id":"p","pipeline_subscription_id":"s%d","pipeline_subscription_params":{}}`, i)
			if st, b := callExt(t, ts, http.MethodPost, "/api/subscribe", bearer, body); st != http.StatusNoContent {
				t.Errorf("subscribe = %d %s", st, b)
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Fatalf("%d calls were in the extension at once, want 1", m)
	}
	if subs, _, _, _ := ext.snapshot(); len(subs) != 8 {
		t.Fatalf("%d subscriptions, want 8", len(subs))
	}
}

func TestSubscribeRoundTrip(t *testing.T) {
	ext := &recExt{refuse: map[string]error{
		"bad":      fmt.Errorf("every: %q is under the minimum of 1m", "1s"),
		"conflict": Errorf(http.StatusConflict, "already taken"),
	}}
	ts, _ := startExtServer(t, ext)

	st, body := callExt(t, ts, http.MethodPost, "/api/subscribe", bearer,
		`{"namespace_id":"ns1","pipeline_id":"p1","pipeline_subscription_id":"every5","pipeline_subscription_params":{"every":"5m"},"a_newer_field":1}`)
	if st != http.StatusNoContent || body != "" {
		t.Fatalf("subscribe = %d %q, want 204", st, body)
	}
	subs, _, _, _ := ext.snapshot()
	want := Subscription{NamespaceID: "ns1", PipelineID: "p1", ID: "every5", Params: map[string]string{"every": "5m"}}
	if len(subs) != 1 || !reflect.DeepEqual(subs[0], want) {
		t.Fatalf("extension got %+v, want %+v", subs, want)
	}

	// A refusal is a 400 carrying the extension's message, as JSON.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/subscribe",
		strings.NewReader(`{"namespace_id":"ns1","pipeline_id":"p1","pipeline_subscription_id":"bad","pipeline_subscription_params":{"every":"1s"}}`))
	req.Header.Set("Authorization", bearer)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e errorResponse
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Message, "under the minimum") ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("refusal = %d %s %+v", resp.StatusCode, resp.Header.Get("Content-Type"), e)
	}
	// An *Error picks its status.
	if st, body := callExt(t, ts, http.MethodPost, "/api/subscribe", bearer,
		`{"namespace_id":"ns1","pipeline_id":"p1","pipeline_subscription_id":"conflict"}`); st != http.StatusConflict || !strings.Contains(body, "already taken") {
		t.Fatalf("conflict = %d %s", st, body)
	}
	// Bad input names the field and never reaches the extension.
	for body, field := range map[string]string{
		`{"pipeline_id":"p1","pipeline_subscription_id":"x"}`: "namespace_id",
		`{"namespace_id":"n","pipeline_subscription_id":"x"}`: "pipeline_id",
		`{"namespace_id":"n","pipeline_id":"p1"}`:             "pipeline_subscription_id",
		`{"namespace_id":"n",`:                                "parse",
		`{"namespace_id":"n","pipeline_id":"p","pipeline_subscription_id":"s","pipeline_subscription_params":{"every":5}}`: "parse",
	} {
		if st, b := callExt(t, ts, http.MethodPost, "/api/subscribe", bearer, body); st != http.StatusBadRequest || !strings.Contains(b, field) {
			t.Errorf("subscribe %s = %d %s, want 400 naming %s", body, st, b, field)
		}
	}
	if subs, _, _, _ := ext.snapshot(); len(subs) != 1 {
		t.Fatalf("bad requests reached the extension: %+v", subs)
	}

	st, body = callExt(t, ts, http.MethodDelete, "/api/subscribe", bearer,
		`{"namespace_id":"ns1","pipeline_id":"p1","pipeline_subscription_id":"every5"}`)
	if st != http.StatusNoContent {
		t.Fatalf("unsubscribe = %d %s", st, body)
	}
	if _, unsubs, _, _ := ext.snapshot(); len(unsubs) != 1 ||
		!reflect.DeepEqual(unsubs[0], Subscription{NamespaceID: "ns1", PipelineID: "p1", ID: "every5"}) {
		t.Fatalf("unsubscribe got %+v", unsubs)
	}
	if st, b := callExt(t, ts, http.MethodDelete, "/api/subscribe", bearer, `{"namespace_id":"ns1"}`); st != http.StatusBadRequest || !strings.Contains(b, "pipeline_id") {
		t.Fatalf("unsubscribe without pipeline = %d %s", st, b)
	}
}

// The event body arrives as upstream's array of numbers or as base64.
func TestExternalEventRoundTrip(t *testing.T) {
	ext := &eventExt{}
	ts, _ := startExtServer(t, ext)
	payload := []byte(`{"ref":"refs/heads/main"}` + "\x00\xff")
	arr, _ := json.Marshal(toInts(payload))
	for _, body := range []string{
		`{"headers":{"X-GitHub-Event":"push"},"body":` + string(arr) + `}`,
		`{"headers":{"X-GitHub-Event":"push"},"body":"` + base64.StdEncoding.EncodeToString(payload) + `"}`,
	} {
		if st, b := callExt(t, ts, http.MethodPost, "/api/external-event", bearer, body); st != http.StatusNoContent {
			t.Fatalf("external event = %d %s", st, b)
		}
	}
	_, _, events, _ := ext.snapshot()
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	for _, ev := range events {
		if !bytes.Equal(ev.Body, payload) || ev.Headers["X-GitHub-Event"] != "push" {
			t.Fatalf("event = %q %v", ev.Body, ev.Headers)
		}
	}
	for _, body := range []string{
		`{"headers":{},"body":[256]}`,
		`{"headers":{},"body":[-1]}`,
		`{"headers":{},"body":[1.5]}`,
		`{"headers":{},"body":["a"]}`,
		`{"headers":{},"body":"not base64!"}`,
		`{"headers":{},"body":{}}`,
	} {
		if st, b := callExt(t, ts, http.MethodPost, "/api/external-event", bearer, body); st != http.StatusBadRequest || !strings.Contains(b, "body") {
			t.Errorf("external event %s = %d %s, want 400 naming body", body, st, b)
		}
	}
	if _, _, events, _ := ext.snapshot(); len(events) != 2 {
		t.Fatalf("bad events reached the extension")
	}

	// Debug is the extension's text; without Debugger it is empty.
	if st, b := callExt(t, ts, http.MethodGet, "/api/debug", bearer, ""); st != http.StatusOK || strings.TrimSpace(b) != `{"info":"state: fine"}` {
		t.Fatalf("debug = %d %s", st, b)
	}
	plain, _ := startExtServer(t, &recExt{})
	if st, b := callExt(t, plain, http.MethodGet, "/api/debug", bearer, ""); st != http.StatusOK || strings.TrimSpace(b) != `{"info":""}` {
		t.Fatalf("debug without Debugger = %d %s", st, b)
	}
	// An extension that takes no events says so.
	if st, b := callExt(t, plain, http.MethodPost, "/api/external-event", bearer, `{"headers":{},"body":[]}`); st != http.StatusBadRequest || !strings.Contains(b, "no external events") {
		t.Fatalf("event to a plain extension = %d %s", st, b)
	}
}

func toInts(b []byte) []int {
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

func TestShutdownRoundTrip(t *testing.T) {
	ext := &recExt{}
	ts, s := startExtServer(t, ext)
	if st, b := callExt(t, ts, http.MethodPost, "/api/shutdown", bearer, ""); st != http.StatusNoContent {
		t.Fatalf("shutdown = %d %s", st, b)
	}
	select {
	case <-s.shutdownCalled:
	default:
		t.Fatal("shutdown did not signal the server to stop")
	}
	// A second shutdown does not call the extension again; calls after it
	// are refused.
	if st, b := callExt(t, ts, http.MethodPost, "/api/shutdown", bearer, ""); st != http.StatusNoContent {
		t.Fatalf("second shutdown = %d %s", st, b)
	}
	if st, b := callExt(t, ts, http.MethodPost, "/api/subscribe", bearer,
		`{"namespace_id":"n","pipeline_id":"p","pipeline_subscription_id":"s"}`); st != http.StatusServiceUnavailable {
		t.Fatalf("subscribe after shutdown = %d %s", st, b)
	}
	if subs, _, _, n := ext.snapshot(); n != 1 || len(subs) != 0 {
		t.Fatalf("shutdowns = %d, subs = %v", n, subs)
	}
}

// Bodies over the limits are 413 and never reach the extension.
func TestBodyLimits(t *testing.T) {
	ext := &eventExt{}
	ts, _ := startExtServer(t, ext)

	big := `{"namespace_id":"n","pipeline_id":"p","pipeline_subscription_id":"s","pipeline_subscription_params":{"x":"` +
		strings.Repeat("a", maxRequest) + `"}}`
	if st, b := callExt(t, ts, http.MethodPost, "/api/subscribe", bearer, big); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("big subscribe = %d %s", st, b)
	}

	// An event body of exactly MaxEventBody is taken; one byte more is 413.
	at := bytes.Repeat([]byte{'x'}, MaxEventBody)
	ok := `{"headers":{},"body":"` + base64.StdEncoding.EncodeToString(at) + `"}`
	if st, b := callExt(t, ts, http.MethodPost, "/api/external-event", bearer, ok); st != http.StatusNoContent {
		t.Fatalf("event at the limit = %d %s", st, b)
	}
	over := `{"headers":{},"body":"` + base64.StdEncoding.EncodeToString(append(at, 'x')) + `"}`
	if st, b := callExt(t, ts, http.MethodPost, "/api/external-event", bearer, over); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("event over the limit = %d %s", st, b)
	}
	if _, _, events, _ := ext.snapshot(); len(events) != 1 || len(events[0].Body) != MaxEventBody {
		t.Fatalf("events = %d", len(events))
	}
}

// The array form counts decoded bytes against the limit too, and a request
// over the request limit is cut off before it is parsed.
func TestBodyLimitsArrayForm(t *testing.T) {
	ext := &eventExt{}
	ts, s := startExtServer(t, ext)
	s.maxEvent, s.maxEventRequest = 4, 64
	if st, b := callExt(t, ts, http.MethodPost, "/api/external-event", bearer, `{"headers":{},"body":[1,2,3,4]}`); st != http.StatusNoContent {
		t.Fatalf("event at the limit = %d %s", st, b)
	}
	if st, b := callExt(t, ts, http.MethodPost, "/api/external-event", bearer, `{"headers":{},"body":[1,2,3,4,5]}`); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("event over the limit = %d %s", st, b)
	}
	long := `{"headers":{"a":"` + strings.Repeat("b", 64) + `"},"body":[]}`
	if st, b := callExt(t, ts, http.MethodPost, "/api/external-event", bearer, long); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("request over the limit = %d %s", st, b)
	}
}

// A call waiting for the one in progress gives up when its request ends.
func TestWaitingCallGivesUp(t *testing.T) {
	_, s := startExtServer(t, &recExt{})
	if err := s.enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.enter(ctx); err == nil {
		t.Fatal("enter succeeded while another call held the extension")
	}
	s.leave()
}

// A call that panics gives back the right to call in: later calls still
// get through.
func TestPanickingCallDoesNotWedge(t *testing.T) {
	ext := &recExt{onSubscribe: func(s Subscription) {
		if s.ID == "boom" {
			panic("extension bug")
		}
	}}
	ts, _ := startExtServer(t, ext)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/subscribe",
		strings.NewReader(`{"namespace_id":"n","pipeline_id":"p","pipeline_subscription_id":"boom"}`))
	req.Header.Set("Authorization", bearer)
	if resp, err := ts.Client().Do(req); err == nil {
		resp.Body.Close()
	}
	client := &http.Client{Timeout: 5 * time.Second}
	req, _ = http.NewRequest(http.MethodPost, ts.URL+"/api/subscribe",
		strings.NewReader(`{"namespace_id":"n","pipeline_id":"p","pipeline_subscription_id":"fine"}`))
	req.Header.Set("Authorization", bearer)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("the call after a panic: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("the call after a panic = %d", resp.StatusCode)
	}
}

// Gofer may send shutdown more than once at a time.
func TestConcurrentShutdowns(t *testing.T) {
	ext := &recExt{}
	ts, _ := startExtServer(t, ext)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, b := callExt(t, ts, http.MethodPost, "/api/shutdown", bearer, ""); st != http.StatusNoContent {
				t.Errorf("shutdown = %d %s", st, b)
			}
		}()
	}
	wg.Wait()
	if _, _, _, n := ext.snapshot(); n != 1 {
		t.Fatalf("%d shutdowns, want 1", n)
	}
}
