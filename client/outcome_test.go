package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// seen records the headers of the requests a test server got.
type seen struct {
	mu      sync.Mutex
	keys    []string
	reqIDs  []string
	answers int
}

func (s *seen) add(r *http.Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, r.Header.Get(headerIdempotency))
	s.reqIDs = append(s.reqIDs, r.Header.Get(headerRequestID))
	return len(s.keys)
}

// dropConnection reads the request and closes the connection without an
// answer: the request arrived, its outcome is lost.
func dropConnection(t *testing.T, w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// lostThenAnswer is a node that loses the answer to the first request
// (when loseFirst) and answers every request after it with status and
// body; s records what it saw.
func lostThenAnswer(t *testing.T, s *seen, loseFirst bool, status int, body string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.add(r) == 1 && loseFirst {
			dropConnection(t, w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
}

const namespaceAnswer = `{"namespace":{"id":"x","name":"x"}}`

// A write whose first answer is lost is sent again with the same
// Idempotency-Key and X-Request-Id, and succeeds.
func TestRetryAfterLostAnswerReusesKey(t *testing.T) {
	var s seen
	srv := lostThenAnswer(t, &s, true, http.StatusCreated, namespaceAnswer)
	defer srv.Close()
	cl, err := New([]string{srv.URL}, WithRetryFor(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cl.CreateNamespace(context.Background(), "x", "", "")
	if err != nil || ns == nil || ns.ID != "x" {
		t.Fatalf("CreateNamespace after a lost answer: %v, %v; want the namespace", ns, err)
	}
	if len(s.keys) < 2 || s.keys[0] == "" || s.reqIDs[0] == "" {
		t.Fatalf("requests: keys %q, request ids %q; want two or more, with a key and an id", s.keys, s.reqIDs)
	}
	for i := range s.keys {
		if s.keys[i] != s.keys[0] || s.reqIDs[i] != s.reqIDs[0] {
			t.Errorf("attempt %d carried key %q id %q; the first carried %q %q", i+1, s.keys[i], s.reqIDs[i], s.keys[0], s.reqIDs[0])
		}
	}
}

const haproxy503 = `<html><body><h1>503 Service Unavailable</h1>
No server is available to handle this request.
</body></html>
`

// A proxy's HTML 503 to a write, until the budget runs out: the outcome
// is unknown, the error is one line with the page's heading, not the page.
func TestProxyHTML503IsUnknownAndSummarised(t *testing.T) {
	var s seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, haproxy503)
	}))
	defer srv.Close()
	cl, _ := New([]string{srv.URL}, WithRetryFor(400*time.Millisecond))
	_, err := cl.CreateNamespace(context.Background(), "x", "", "")
	var ce *CallError
	if !errors.As(err, &ce) || !ce.Unknown || ce.Unreachable {
		t.Fatalf("CreateNamespace through an HTML 503: %#v; want a *CallError with an unknown outcome", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Contains(msg, "<") || !strings.Contains(msg, "503") ||
		!strings.Contains(msg, ce.RequestID) || ce.RequestID != s.reqIDs[0] || ce.IdempotencyKey != s.keys[0] {
		t.Errorf("error %q (id %q, key %q); want one line naming 503 and the request id %q, key %q", msg, ce.RequestID, ce.IdempotencyKey, s.reqIDs[0], s.keys[0])
	}
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.FromAPI || !strings.Contains(apiErr.Message, `text/html: "503 Service Unavailable"`) {
		t.Errorf("the proxy's answer: %#v; want an *Error not from the API summarising the page", apiErr)
	}
	// A read through the same proxy is just an error: nothing to apply.
	_, err = cl.ListNamespaces(context.Background(), Page{})
	if IsUnknownOutcome(err) || err == nil || strings.Contains(err.Error(), "<") {
		t.Errorf("ListNamespaces through an HTML 503: %v; want a one-line error, not an unknown outcome", err)
	}
}

// The API's own answers are definite: a 409 after a lost answer is the
// outcome (not unknown), and a 503 "no leader" means not applied.
func TestAPIAnswersAreDefinite(t *testing.T) {
	var s seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.add(r)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/namespaces") && n == 1:
			dropConnection(t, w, r)
		case strings.HasSuffix(r.URL.Path, "/namespaces"):
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"request_id":"a","code":"conflict","message":"namespace x exists"}`)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"request_id":"b","code":"unavailable","message":"no cluster leader; retry shortly"}`)
		}
	}))
	defer srv.Close()
	cl, _ := New([]string{srv.URL}, WithRetryFor(400*time.Millisecond))
	_, err := cl.CreateNamespace(context.Background(), "x", "", "")
	if IsUnknownOutcome(err) || !IsStatus(err, http.StatusConflict) || err.Error() != "namespace x exists" {
		t.Errorf("409 after a lost answer: %v; want the API's 409 as it is", err)
	}
	_, err = cl.CreateRole(context.Background(), "r", "", nil)
	if IsUnknownOutcome(err) || !IsStatus(err, http.StatusServiceUnavailable) {
		t.Errorf("503 no leader: %v; want the API's 503, not an unknown outcome", err)
	}
}

// closedURL is the address of a port nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// Refused connections on every node give up after the unreachable budget,
// not the full one, and say nothing was sent; a list with one node down
// still works.
func TestRefusedEverywhereFailsFast(t *testing.T) {
	down := closedURL(t)
	cl, _ := New([]string{down}, WithRetryFor(time.Minute), WithUnreachableFor(300*time.Millisecond))
	start := time.Now()
	_, err := cl.CreateNamespace(context.Background(), "x", "", "")
	var ce *CallError
	if !errors.As(err, &ce) || !ce.Unreachable || ce.Unknown || !strings.Contains(err.Error(), "connection refused") ||
		!strings.Contains(err.Error(), down) {
		t.Fatalf("CreateNamespace with no server: %v; want unreachable, connection refused, naming %s", err, down)
	}
	// Generous bound: the full budget is a minute.
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("gave up after %s; want the unreachable budget, not the minute", took)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, namespaceAnswer)
	}))
	defer srv.Close()
	cl, _ = New([]string{down, srv.URL}, WithUnreachableFor(300*time.Millisecond))
	if _, err := cl.CreateNamespace(context.Background(), "x", "", ""); err != nil {
		t.Errorf("one node down of two: %v", err)
	}
}

// A node that answers 503 no leader is retried for the full budget, and
// the wait notice hears about it.
func TestNoLeaderWaitsWithNotice(t *testing.T) {
	begin := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if time.Since(begin) < 3500*time.Millisecond {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"request_id":"b","code":"unavailable","message":"no cluster leader; retry shortly"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, namespaceAnswer)
	}))
	defer srv.Close()
	var mu sync.Mutex
	var reasons []string
	cl, _ := New([]string{srv.URL}, WithRetryFor(20*time.Second), WithUnreachableFor(100*time.Millisecond),
		WithWaitNotice(func(reason string, waited time.Duration) {
			mu.Lock()
			reasons = append(reasons, reason)
			mu.Unlock()
		}))
	if _, err := cl.CreateNamespace(context.Background(), "x", "", ""); err != nil {
		t.Fatalf("CreateNamespace through an election: %v", err)
	}
	if len(reasons) == 0 || reasons[0] != "the cluster to elect a leader" {
		t.Errorf("wait notices %q; want the election named", reasons)
	}
}

// WithIdempotencyKey numbers the writes after the first, so a program
// that repeats its writes in order repeats their keys.
func TestWithIdempotencyKeyNumbersWrites(t *testing.T) {
	var s seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, namespaceAnswer)
	}))
	defer srv.Close()
	cl, _ := New([]string{srv.URL}, WithIdempotencyKey("k1"))
	for range 3 {
		if _, err := cl.Consistent().CreateNamespace(context.Background(), "x", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(s.keys, ",") != "k1,k1-2,k1-3" {
		t.Errorf("keys %q; want k1, k1-2, k1-3", s.keys)
	}
}

func TestSummarizeBody(t *testing.T) {
	for _, tc := range []struct{ ct, body, want string }{
		{"text/html; charset=utf-8", "<!DOCTYPE html><html><head><title> 502 Bad\n Gateway </title></head><body>…</body></html>", `text/html: "502 Bad Gateway"`},
		{"text/html", haproxy503, `text/html: "503 Service Unavailable"`},
		{"text/plain", "\n\n  upstream connect error  \nsecond line", `text/plain: "upstream connect error"`},
		{"", "", "no content type, empty body"},
		{"text/plain", strings.Repeat("x", 300), `text/plain: "` + strings.Repeat("x", 100) + `…"`},
	} {
		if got := summarizeBody(tc.ct, []byte(tc.body)); got != tc.want {
			t.Errorf("summarizeBody(%q, %q) = %q; want %q", tc.ct, tc.body, got, tc.want)
		}
	}
}

// Every create and start the CLI can send carries an idempotency key, and
// a retry after a lost answer carries the same one (the server then
// answers with the first outcome instead of creating a second).
func TestEveryCreateAndStartRetriesWithItsKey(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func(*Client) error
	}{
		{"namespace create", func(c *Client) error { _, err := c.CreateNamespace(ctx, "nsx", "", ""); return err }},
		{"pipeline config register", func(c *Client) error { _, err := c.RegisterConfig(ctx, &sdk.PipelineConfig{ID: "p"}); return err }},
		{"pipeline config deploy", func(c *Client) error { _, err := c.DeployConfig(ctx, "p", 1); return err }},
		{"pipeline config deploy canary", func(c *Client) error {
			_, err := c.DeployConfigWith(ctx, "p", 2, DeployOptions{Strategy: model.DeploymentStrategyCanary,
				Canary: &model.CanaryPolicy{Percent: 10, Runs: 2, Duration: "10m"}})
			return err
		}},
		{"deployment promote", func(c *Client) error {
			_, err := c.DecideDeployment(ctx, "p", 1, model.CanaryPromote, "ok")
			return err
		}},
		{"run start", func(c *Client) error { _, err := c.StartRun(ctx, "p", nil); return err }},
		{"run retry", func(c *Client) error { _, err := c.RetryRun(ctx, "p", 1); return err }},
		{"secret put", func(c *Client) error {
			_, err := c.PutSecret(ctx, SecretScope{Pipeline: "p"}, "k", "v", nil, false)
			return err
		}},
		{"global secret put", func(c *Client) error { _, err := c.PutSecret(ctx, SecretScope{}, "k", "v", nil, false); return err }},
		{"object put", func(c *Client) error {
			_, err := c.PutObject(ctx, ObjectScope{Pipeline: "p"}, "k", []byte("data"), false)
			return err
		}},
		{"run object put", func(c *Client) error {
			_, err := c.PutObject(ctx, ObjectScope{Pipeline: "p", Run: 1}, "k", []byte("data"), false)
			return err
		}},
		{"token create", func(c *Client) error { _, err := c.CreateToken(ctx, "u", nil, 0, nil); return err }},
		{"token bootstrap", func(c *Client) error { _, err := c.BootstrapToken(ctx); return err }},
		{"role create", func(c *Client) error { _, err := c.CreateRole(ctx, "r", "", nil); return err }},
		{"extension install", func(c *Client) error {
			_, err := c.InstallExtension(ctx, InstallRequest{ID: "e", Image: "i"})
			return err
		}},
		{"subscribe", func(c *Client) error { _, err := c.Subscribe(ctx, "p", "e", "l", nil); return err }},
		{"server join", func(c *Client) error { return c.Join(ctx, "http://127.0.0.1:1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s seen
			srv := lostThenAnswer(t, &s, true, http.StatusCreated, `{}`)
			defer srv.Close()
			cl, _ := New([]string{srv.URL}, WithRetryFor(5*time.Second))
			if err := tc.call(cl); err != nil {
				t.Fatalf("after a lost answer: %v", err)
			}
			if len(s.keys) != 2 || s.keys[0] == "" || s.keys[1] != s.keys[0] {
				t.Errorf("keys %q; want the same non-empty key twice", s.keys)
			}
		})
	}
}

// A lost answer followed by "no leader" 503s until the budget runs out
// stays unknown, and names the lost answer as the reason: the first
// attempt may still be applied.
func TestLostAnswerThenNoLeaderStaysUnknown(t *testing.T) {
	var s seen
	srv := lostThenAnswer(t, &s, true, http.StatusServiceUnavailable, `{"request_id":"b","code":"unavailable","message":"no cluster leader; retry shortly"}`)
	defer srv.Close()
	cl, _ := New([]string{srv.URL}, WithRetryFor(400*time.Millisecond))
	_, err := cl.StartRun(context.Background(), "p", nil)
	if !IsUnknownOutcome(err) || !strings.Contains(err.Error(), "(connection lost after sending: ") || !IsStatus(err, 503) {
		t.Errorf("lost answer, then no leader: %v; want an unknown outcome blaming the lost answer, wrapping the last 503", err)
	}
}

// A node that takes the request and never answers (frozen) is given up
// on after the answer timeout and the write is sent again, to the next
// node, with the same key; with no node answering the outcome is unknown.
func TestAnswerTimeoutRetriesElsewhere(t *testing.T) {
	var s seen
	release := make(chan struct{})
	defer close(release)
	frozen := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r)
		// Read the body, as a node does, so the server notices the
		// client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer frozen.Close()
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"run":{"run_id":1}}`)
	}))
	defer live.Close()
	cl, _ := New([]string{frozen.URL, live.URL}, WithAnswerTimeout(200*time.Millisecond))
	run, err := cl.StartRun(context.Background(), "p", nil)
	if err != nil || run == nil || run.RunID != 1 {
		t.Fatalf("start through a frozen node and a live one: %v %v", run, err)
	}
	if len(s.keys) != 2 || s.keys[0] != s.keys[1] {
		t.Errorf("keys %q; want the frozen node's key again on the live node", s.keys)
	}

	cl, _ = New([]string{frozen.URL}, WithAnswerTimeout(100*time.Millisecond), WithRetryFor(300*time.Millisecond))
	_, err = cl.StartRun(context.Background(), "p", nil)
	if !IsUnknownOutcome(err) || !strings.Contains(err.Error(), "(no answer within 100ms of sending; request id ") {
		t.Errorf("start through a frozen node alone: %v; want an unknown outcome saying no answer came", err)
	}
	// A stream's headers come at once; reading its body later is not cut off.
	slowBody := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, `{"namespaces":[]}`)
	}))
	defer slowBody.Close()
	cl, _ = New([]string{slowBody.URL}, WithAnswerTimeout(100*time.Millisecond))
	if _, err := cl.ListNamespaces(context.Background(), Page{}); err != nil {
		t.Errorf("a body slower than the answer timeout: %v", err)
	}
}

// An API 500 on a write settles nothing: the write may have been
// committed before the server failed, and an earlier attempt whose answer
// was lost may still have applied it. Only a 4xx from the API is definite.
func TestAPI500OnWriteIsUnknown(t *testing.T) {
	for _, lostFirst := range []bool{false, true} {
		var s seen
		srv := lostThenAnswer(t, &s, lostFirst, http.StatusInternalServerError, `{"request_id":"c","code":"internal","message":"store failed"}`)
		cl, _ := New([]string{srv.URL}, WithRetryFor(400*time.Millisecond))
		_, err := cl.StartRun(context.Background(), "p", nil)
		if !IsUnknownOutcome(err) || !IsStatus(err, http.StatusInternalServerError) {
			t.Errorf("lost answer first: %v; API 500: %v; want an unknown outcome wrapping the 500", lostFirst, err)
		}
		srv.Close()
	}
}

// The API's own 502 (a running extension refused the call or failed) is
// its answer: it is not retried for the whole budget as a proxy's 502 is.
func TestAPI502IsNotRetried(t *testing.T) {
	var s seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, `{"request_id":"d","code":"bad_gateway","message":"extension cron answered 500"}`)
	}))
	defer srv.Close()
	cl, _ := New([]string{srv.URL}, WithRetryFor(2*time.Second))
	_, err := cl.GetPipeline(context.Background(), "p")
	if !IsStatus(err, http.StatusBadGateway) || err.Error() != "extension cron answered 500" {
		t.Errorf("API 502: %v; want the API's message", err)
	}
	if len(s.reqIDs) != 1 {
		t.Errorf("API 502 asked %d times; want once", len(s.reqIDs))
	}
}

// A node address may carry a secret (-a http://user:TOKEN@host, or
// ?token=…): no error names it, whether no node could be reached, a
// proxy answered, or the connection was lost.
func TestErrorsHideNodeSecrets(t *testing.T) {
	withSecrets := func(u string) string {
		return strings.Replace(u, "http://", "http://user:s3cret@", 1) + "?token=t0ken"
	}
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "<h1>Forbidden</h1>")
	}))
	defer html.Close()
	lost := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { dropConnection(t, w, r) }))
	defer lost.Close()
	for name, node := range map[string]string{"refused": closedURL(t), "proxy page": html.URL, "lost answer": lost.URL} {
		cl, err := New([]string{withSecrets(node)}, WithRetryFor(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.CreateNamespace(context.Background(), "x", "", "")
		for e := err; e != nil; e = errors.Unwrap(e) {
			if msg := e.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "t0ken") {
				t.Errorf("%s: %q names the node's secret", name, msg)
			}
		}
		if err == nil || !strings.Contains(err.Error(), "user:xxxxx@") && name != "lost answer" {
			t.Errorf("%s: %v; want the node named with its password masked", name, err)
		}
	}
}

// Dials that hang share the unreachable budget: each is given the call's
// unreachable deadline, not its own 3 s per node.
func TestHangingDialsShareUnreachableBudget(t *testing.T) {
	defer func(d func(context.Context, string, string) (net.Conn, error)) { dial = d }(dial)
	var mu sync.Mutex
	var deadlines []time.Time
	dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d, ok := ctx.Deadline()
		mu.Lock()
		if !ok {
			d = time.Time{}
		}
		deadlines = append(deadlines, d)
		mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: network, Err: context.DeadlineExceeded}
	}
	cl, _ := New([]string{"http://10.0.0.1:1", "http://10.0.0.2:1", "http://10.0.0.3:1"},
		WithUnreachableFor(time.Second), WithRetryFor(time.Minute))
	_, err := cl.CreateNamespace(context.Background(), "x", "", "")
	latest := time.Now().Add(time.Second) // the call started before now
	var ce *CallError
	if !errors.As(err, &ce) || !ce.Unreachable {
		t.Fatalf("every dial timing out: %v; want unreachable", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, d := range deadlines {
		if d.IsZero() || d.After(latest) {
			t.Errorf("dial %d: deadline %v; want one within the call's 1 s unreachable budget (by %v)", i, d, latest)
		}
	}
}

// Interrupting a call while it is still dialing says "interrupted", not
// that no server could be reached.
func TestInterruptWhileDialing(t *testing.T) {
	defer func(d func(context.Context, string, string) (net.Conn, error)) { dial = d }(dial)
	dialing := make(chan struct{}, 8)
	dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialing <- struct{}{}
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-dialing
		cancel()
	}()
	cl, _ := New([]string{"http://10.0.0.1:1"})
	_, err := cl.CreateNamespace(ctx, "x", "", "")
	var ce *CallError
	if !errors.As(err, &ce) || ce.Unreachable || ce.Unknown || err.Error() != "interrupted" {
		t.Errorf("interrupted while dialing: %v (%+v); want just \"interrupted\"", err, ce)
	}
}

// A connection that fails before the request is written (a kept-alive
// one the server had closed) sent nothing: the write was not applied, and
// its outcome is not unknown.
func TestConnectionFailingBeforeTheRequestIsNotUnknown(t *testing.T) {
	defer func(d func(context.Context, string, string) (net.Conn, error)) { dial = d }(dial)
	dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		client, _ := net.Pipe()
		return brokenWrites{client}, nil
	}
	cl, _ := New([]string{"http://10.0.0.1:1"}, WithRetryFor(300*time.Millisecond))
	_, err := cl.CreateNamespace(context.Background(), "x", "", "")
	var ce *CallError
	if !errors.As(err, &ce) || ce.Unknown || ce.Unreachable {
		t.Errorf("connection closed before the request was written: %v (%+v); want a definite failure, not unknown or unreachable", err, ce)
	}
}

// brokenWrites is a connection whose writes fail (the peer reset it).
type brokenWrites struct{ net.Conn }

func (b brokenWrites) Write([]byte) (int, error) {
	b.Conn.Close()
	return 0, syscall.ECONNRESET
}
