// Package client is the Go client for Gofer's REST API, used by the CLI,
// extensions and tests. It takes a list of nodes and tries them in turn,
// retries 503s (no leader, leader changing) with backoff and 429s (rate
// limited) after their Retry-After within its retry budget, and sends an
// idempotency key with every write so a retry after an unknown outcome
// never applies a write twice.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// Header names (the same as the server's).
const (
	headerAPIVersion  = "gofer-api-version"
	apiVersion        = "v0"
	headerIndex       = "X-Gofer-Index"
	headerIdempotency = "Idempotency-Key"
	headerRequestID   = "X-Request-Id"
)

// Client talks to a Gofer cluster.
type Client struct {
	nodes     []string
	token     string
	namespace string
	http      *http.Client
	// retryFor bounds how long one call keeps retrying unavailable nodes.
	retryFor time.Duration
	// preferred is the index of the node that answered last.
	preferred *atomic.Int64
	lastIndex *atomic.Uint64
	// minIndex, when set, is sent as ?min_index on reads.
	minIndex uint64
	// consistent sends ?consistent=true on reads.
	consistent bool
	// onResume hears of follow streams resumed after a cut (stream.go).
	onResume func(Resume)
	// unreachableFor, when set, bounds retries while no node accepts a
	// connection (WithUnreachableFor).
	unreachableFor *time.Duration
	waitNotice     WaitNotice
	// baseKey and writes number this client's idempotency keys
	// (WithIdempotencyKey).
	baseKey string
	writes  *atomic.Int64
	// answerTimeout bounds the wait for an answer once a request was
	// sent (WithAnswerTimeout).
	answerTimeout time.Duration
	// ownTransport: http is the client's default, which WithTLS may tune.
	ownTransport bool
}

// Option configures a Client.
type Option func(*Client)

// WithToken sets the bearer token.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithNamespace sets the namespace used by namespaced calls.
func WithNamespace(ns string) Option { return func(c *Client) { c.namespace = ns } }

// WithHTTPClient replaces the HTTP client (timeouts, TLS).
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) { c.http, c.ownTransport = h, false }
}

// WithRetryFor sets how long a call keeps retrying while the cluster is
// unavailable (no leader, node down). Default 30s; 0 disables retries.
func WithRetryFor(d time.Duration) Option { return func(c *Client) { c.retryFor = d } }

// dial makes the default transport's connections; a variable for tests.
var dial = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext

// dialDeadline is the context key of the time by which a call that has
// not yet connected anywhere gives up (WithUnreachableFor).
type dialDeadline struct{}

// dialWithinBudget dials, but no later than the call's unreachable
// deadline: dials that hang (a host that drops packets) share that one
// bound instead of taking 3 s per node.
func dialWithinBudget(ctx context.Context, network, addr string) (net.Conn, error) {
	if d, ok := ctx.Value(dialDeadline{}).(time.Time); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d)
		defer cancel()
	}
	conn, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: conn}, nil
}

// trackedConn remembers a failed write. The transport reports a request
// written (httptrace WroteRequest) once it is in its buffer, before the
// buffer is flushed to the connection; a write that then fails means the
// request never fully left, so the server cannot have applied it.
type trackedConn struct {
	net.Conn
	writeFailed atomic.Bool
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.writeFailed.Store(true)
	}
	return n, err
}

// writeFailed reports whether conn (the one an attempt got, TLS unwrapped)
// is a trackedConn whose write failed.
func writeFailed(conn net.Conn) bool {
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		conn = tc.NetConn()
	}
	t, ok := conn.(*trackedConn)
	return ok && t.writeFailed.Load()
}

// New returns a client for the given node URLs. A single string may hold
// a comma-separated list.
func New(nodes []string, opts ...Option) (*Client, error) {
	c := &Client{
		namespace: "default",
		retryFor:  30 * time.Second,
		preferred: new(atomic.Int64),
		lastIndex: new(atomic.Uint64),
		writes:    new(atomic.Int64),
		http: &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         dialWithinBudget,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		}},
		ownTransport: true,
	}
	for _, n := range nodes {
		for _, part := range strings.Split(n, ",") {
			part = strings.TrimRight(strings.TrimSpace(part), "/")
			if part == "" {
				continue
			}
			u, err := url.Parse(part)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("node address %q must be an http(s) URL like http://127.0.0.1:8080", part)
			}
			c.nodes = append(c.nodes, part)
		}
	}
	if len(c.nodes) == 0 {
		return nil, errors.New("no node addresses given")
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Namespace is the namespace namespaced calls use.
func (c *Client) Namespace() string { return c.namespace }

// Nodes are the node URLs this client tries.
func (c *Client) Nodes() []string { return append([]string(nil), c.nodes...) }

// LastIndex is the highest X-Gofer-Index seen; pass it as min_index to
// read your own writes on any node.
func (c *Client) LastIndex() uint64 { return c.lastIndex.Load() }

// AtLeast returns a client whose reads wait until the answering node has
// applied index (read-your-writes on any node): pass LastIndex() after a
// write.
func (c *Client) AtLeast(index uint64) *Client {
	cp := *c
	cp.minIndex = index
	return &cp
}

// Consistent returns a client whose reads are served by the leader after
// it confirms its leadership (linearizable).
func (c *Client) Consistent() *Client {
	cp := *c
	cp.consistent = true
	return &cp
}

// Only returns a client that talks to node i alone (no failover), for
// checking what one node says.
func (c *Client) Only(i int) *Client {
	cp := *c
	cp.nodes = []string{c.nodes[i]}
	cp.preferred = new(atomic.Int64)
	return &cp
}

// Error is an error answer: from the API (FromAPI, its JSON error body)
// or from whatever answered in its place (a proxy's HTML page), then
// summarised in Message.
type Error struct {
	Status    int    `json:"-"`
	RequestID string `json:"request_id"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	// Missing lists, with its fix, each secret or object that markers name
	// and that is not there (a refused run start, subscription settings).
	Missing []model.MissingValue `json:"missing,omitempty"`
	// FromAPI: the body was the API's JSON error, so the API itself
	// decided the answer.
	FromAPI bool `json:"-"`
	// ContentType is the answer's Content-Type.
	ContentType string `json:"-"`
	// RetryAfter is the answer's Retry-After (whole seconds), 0 without
	// one: how long a 429 or 503 asks the caller to wait.
	RetryAfter time.Duration `json:"-"`
	// notAPI says who answered, when it was not the API.
	notAPI string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("gofer API answered %d", e.Status)
	}
	return e.Message
}

// IsStatus reports whether err is an API error with the given status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// request describes one API call.
type request struct {
	method string
	path   string
	query  url.Values
	body   any
	// rawBody is sent as is (snapshot restore); it cannot be retried.
	rawBody io.Reader
	// raw is a binary body held in memory (objects); unlike rawBody it
	// can be sent again on retry.
	raw []byte
	// headers are extra request headers.
	headers map[string]string
	// stream leaves the response body open for the caller.
	stream bool
	// unbounded exempts the call from WithAnswerTimeout: the server may
	// work for minutes before its first byte (a snapshot is made before
	// its download starts) and bounds that itself.
	unbounded bool
}

func isWrite(method string) bool {
	return method != http.MethodGet && method != http.MethodHead
}

func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observeCall, when set (only by tests), sees every call's method, path
// and the value its answer decodes into: the OpenAPI agreement test
// compares the decoded types with the document.
var observeCall func(method, path string, out any)

// do performs a call, retrying across nodes. out, if non-nil, receives the
// decoded JSON body. For stream requests the caller closes the body.
//
// Every attempt of one call carries the same X-Request-Id and, for a
// write, the same Idempotency-Key, so retrying a write whose outcome is
// unknown is safe: the server answers a repeat with the first outcome. A
// call that fails returns a *CallError saying whether a write may have
// been applied.
func (c *Client) do(ctx context.Context, r request, out any) (*http.Response, error) {
	if observeCall != nil {
		observeCall(r.method, r.path, out)
	}
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return nil, err
		}
	}
	call := &CallError{Method: r.method, Path: r.path, Nodes: c.nodes, RequestID: newRequestID()}
	if k := r.headers[headerIdempotency]; k != "" {
		call.IdempotencyKey = k
	} else if isWrite(r.method) {
		call.IdempotencyKey = c.nextIdempotencyKey()
	}
	if isWrite(r.method) {
		call.BaseKey = c.baseKey
	}
	started := time.Now()
	deadline := started.Add(c.retryFor)
	unreachableDeadline := deadline
	if c.unreachableFor != nil {
		unreachableDeadline = started.Add(*c.unreachableFor)
	}
	// connected: some attempt got a connection (a node or a proxy
	// answered, or may have).
	connected := false
	fail := func(err error) error {
		call.Err = err
		call.Unreachable = !connected && !call.Unknown
		return call
	}
	backoff := 100 * time.Millisecond
	for {
		start := int(c.preferred.Load())
		for i := range c.nodes {
			n := (start + i) % len(c.nodes)
			call.Attempts++
			attemptCtx := ctx
			if !connected && c.unreachableFor != nil {
				attemptCtx = context.WithValue(ctx, dialDeadline{}, unreachableDeadline)
			}
			resp, got, err := c.once(attemptCtx, c.nodes[n], r, payload, call)
			if err == nil {
				c.preferred.Store(int64(n))
				return c.finish(resp, r, out)
			}
			connected = connected || !isDialFailure(err, got.connected)
			if isWrite(r.method) && maybeApplied(err, got.sent) && !call.Unknown {
				call.Unknown, call.unknownBecause = true, err
			}
			if ctx.Err() != nil {
				return nil, interrupted(ctx, fail(err))
			}
			if !retryable(err) || r.rawBody != nil {
				if settlesOutcome(err) {
					call.Unknown = false
				}
				return nil, fail(err)
			}
			call.Err = err
		}
		next := time.Now().Add(backoff)
		if next.After(deadline) || (!connected && next.After(unreachableDeadline)) {
			return nil, fail(call.Err)
		}
		var apiErr *Error
		wait := backoff
		if errors.As(call.Err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable {
			wait = min(wait, time.Second)
		}
		if errors.As(call.Err, &apiErr) && apiErr.Status == http.StatusTooManyRequests {
			// Rate limited: wait as long as the server asks, if the
			// call's retry budget allows; otherwise the 429 is the answer.
			wait = max(wait, apiErr.RetryAfter)
			if time.Now().Add(wait).After(deadline) {
				return nil, fail(call.Err)
			}
		}
		if waited := time.Since(started); c.waitNotice != nil && waited >= 2*time.Second {
			c.waitNotice(waitReason(call.Err), waited)
		}
		select {
		case <-ctx.Done():
			return nil, interrupted(ctx, fail(ctx.Err()))
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// interrupted marks a call its context cancelled (Ctrl-C, not a
// deadline: that is a timeout, reported as such) as Interrupted, unless a
// write's outcome is unknown (that is what the caller must hear).
func interrupted(ctx context.Context, err error) error {
	var ce *CallError
	if errors.Is(ctx.Err(), context.Canceled) && errors.As(err, &ce) && !ce.Unknown {
		ce.Interrupted, ce.Unreachable = true, false
	}
	return err
}

// retryable: connection failures, 503s and a proxy's 502/504 are worth
// another node or another try; every other answer is final. The API's own
// 502/504 (an extension refused the call or failed) would only be given
// again.
func retryable(err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		switch apiErr.Status {
		case http.StatusServiceUnavailable:
			return true
		case http.StatusTooManyRequests:
			// The API's rate limit refused it before doing anything.
			return apiErr.FromAPI
		case http.StatusBadGateway, http.StatusGatewayTimeout:
			return !apiErr.FromAPI
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "connection reset")
}

// parseRetryAfter reads a Retry-After of whole seconds (the API never
// sends a date); 0 when absent or unreadable.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}

// newRequestID makes the X-Request-Id of one call (the server keeps a
// caller's id), so the caller knows it even when no answer arrives.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// attemptProgress is how far one attempt got.
type attemptProgress struct {
	// connected: it got a connection (new or kept alive), so a node or a
	// proxy was there.
	connected bool
	// sent: the whole request was written, so a write may have been
	// applied. A connection alone does not say so: a kept-alive one the
	// server had closed fails before the request is out.
	sent bool
}

// answered is the progress of an attempt that got an answer.
var answered = attemptProgress{connected: true, sent: true}

// once sends the request to one node; any non-2xx becomes an *Error.
func (c *Client) once(ctx context.Context, node string, r request, payload []byte, call *CallError) (resp *http.Response, got attemptProgress, err error) {
	q := r.query
	if !isWrite(r.method) && (c.minIndex > 0 || c.consistent) {
		q = url.Values{}
		for k, v := range r.query {
			q[k] = v
		}
		if c.minIndex > 0 {
			q.Set("min_index", strconv.FormatUint(c.minIndex, 10))
		}
		if c.consistent {
			q.Set("consistent", "true")
		}
	}
	u := node + r.path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	switch {
	case r.rawBody != nil:
		body = r.rawBody
	case r.raw != nil:
		body = bytes.NewReader(r.raw)
	case payload != nil:
		body = bytes.NewReader(payload)
	}
	var gotConn, wrote atomic.Bool
	var conn atomic.Pointer[net.Conn]
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		gotConn.Store(true)
		conn.Store(&info.Conn)
	}}
	var wait *answerWait
	if c.answerTimeout > 0 && r.rawBody == nil && !r.unbounded {
		ctx, wait = newAnswerWait(ctx, c.answerTimeout, trace)
	}
	timeAnswer := trace.WroteRequest
	trace.WroteRequest = func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			wrote.Store(true)
		}
		if timeAnswer != nil {
			timeAnswer(info)
		}
	}
	ctx = httptrace.WithClientTrace(ctx, trace)
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		wait.release()
		return nil, attemptProgress{}, err
	}
	req.Header.Set(headerAPIVersion, apiVersion)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.rawBody != nil || r.raw != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	if call.IdempotencyKey != "" {
		req.Header.Set(headerIdempotency, call.IdempotencyKey)
	}
	req.Header.Set(headerRequestID, call.RequestID)
	resp, err = c.http.Do(req)
	if err != nil {
		var c net.Conn
		if p := conn.Load(); p != nil {
			c = *p
		}
		got := attemptProgress{connected: gotConn.Load(), sent: wrote.Load() && !writeFailed(c)}
		return nil, got, redactURLError(wait.failed(err))
	}
	wait.answered(resp)
	if resp.StatusCode/100 == 2 {
		return resp, answered, nil
	}
	defer resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	apiErr := &Error{Status: resp.StatusCode, ContentType: ct}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if strings.HasPrefix(ct, "application/json") && json.Unmarshal(raw, apiErr) == nil && apiErr.Message != "" {
		apiErr.FromAPI = true
		apiErr.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
		return nil, answered, apiErr
	}
	notAPI := fmt.Sprintf("a proxy or another server answered %d %s instead of the gofer API (%s)",
		resp.StatusCode, http.StatusText(resp.StatusCode), summarizeBody(ct, raw))
	*apiErr = Error{Status: resp.StatusCode, ContentType: ct, RequestID: call.RequestID, notAPI: notAPI,
		Message: fmt.Sprintf("%s %s: %s", r.method, displayNode(node+r.path), notAPI)}
	return nil, answered, apiErr
}

func (c *Client) finish(resp *http.Response, r request, out any) (*http.Response, error) {
	if idx, err := strconv.ParseUint(resp.Header.Get(headerIndex), 10, 64); err == nil {
		for {
			cur := c.lastIndex.Load()
			if idx <= cur || c.lastIndex.CompareAndSwap(cur, idx) {
				break
			}
		}
	}
	if r.stream {
		return resp, nil
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp, fmt.Errorf("decode %s %s response: %w", r.method, r.path, err)
	}
	return resp, nil
}

// Page selects part of a list.
type Page struct {
	Limit   int
	Offset  int
	Reverse bool
}

func (p Page) query() url.Values {
	q := url.Values{}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Offset > 0 {
		q.Set("offset", strconv.Itoa(p.Offset))
	}
	if p.Reverse {
		q.Set("reverse", "true")
	}
	return q
}

func seg(s string) string { return url.PathEscape(s) }
