package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// CallError is a call that failed after the client's retries: the last
// failure and what is known about whether a write took effect. It wraps
// the last failure (an *Error, a transport error or the context's error),
// so errors.As and IsStatus still find an *Error.
type CallError struct {
	Method string
	Path   string
	// Nodes are the node URLs the call tried.
	Nodes []string
	// RequestID is the X-Request-Id every attempt carried: the servers'
	// logs and error bodies name it.
	RequestID string
	// IdempotencyKey is the key every attempt of a write carried ("" for
	// reads). Sending the same request again with it never applies it
	// twice: the server answers with the first outcome.
	IdempotencyKey string
	// BaseKey is the client's WithIdempotencyKey key ("" without one): a
	// program that makes the same writes again in the same order with it
	// sends each the key it had (the failed write's may be BaseKey-N), so
	// none is applied twice. Naming the failed write's own key would not
	// do: the writes before it would then get new keys.
	BaseKey string
	// Unknown: a write may have been applied. Some attempt reached a node
	// or a proxy in front of one, and no answer from the API said what
	// happened (the connection was lost after sending, a proxy answered
	// 5xx itself, the API gave up waiting for the leader or failed with a
	// 500, or the call was interrupted). Only a 2xx or an API 4xx settles
	// it.
	Unknown bool
	// Unreachable: no attempt could even connect (refused, no such host,
	// dial timeout), so nothing was sent.
	Unreachable bool
	// Interrupted: the caller cancelled its context (Ctrl-C in the
	// CLI) before any write could have been applied; the message is then
	// just "interrupted", not a connection failure.
	Interrupted bool
	// Attempts is how many requests were sent or tried.
	Attempts int
	// Err is the last failure.
	Err error
	// unknownBecause is the failure that made the outcome unknown (a
	// later attempt may fail otherwise, e.g. 503 no leader).
	unknownBecause error
}

func (e *CallError) Error() string {
	switch {
	case e.Interrupted:
		return "interrupted"
	case e.Unreachable:
		shown := make([]string, len(e.Nodes))
		for i, n := range e.Nodes {
			shown[i] = displayNode(n)
		}
		return fmt.Sprintf("cannot reach a gofer server at %s (%s)", strings.Join(shown, ","), dialCause(e.Err))
	case e.Unknown:
		return fmt.Sprintf("the outcome of %s %s is unknown (%s; request id %s): it may or may not have been applied",
			e.Method, e.Path, unknownCause(cmp.Or(e.unknownBecause, e.Err)), e.RequestID)
	}
	return e.Err.Error()
}

func (e *CallError) Unwrap() error { return e.Err }

// displayNode is a node or request URL fit for a message: its password
// masked (url.URL.Redacted) and its query and fragment dropped, since a
// token may ride in any of them (-a http://user:TOKEN@host, ?token=…).
func displayNode(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a node address that is not a URL)"
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.Redacted()
}

// redactURLError rewrites the URL a transport error names (its message
// starts with it) with displayNode.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = displayNode(ue.URL)
	}
	return err
}

// IsUnknownOutcome reports whether err is a write whose outcome is unknown.
func IsUnknownOutcome(err error) bool {
	var ce *CallError
	return errors.As(err, &ce) && ce.Unknown
}

// maybeApplied reports whether a failed attempt of a write may have
// taken effect. sent says the whole request was written.
func maybeApplied(err error, sent bool) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		if !apiErr.FromAPI {
			// A proxy's own 5xx: it may have forwarded the request
			// and given up waiting. Its 4xx means it refused it.
			return apiErr.Status >= 500
		}
		// A 500 is the API failing part-way: the write may have been
		// committed before it did.
		return apiErr.Status == http.StatusInternalServerError ||
			(apiErr.Status == http.StatusServiceUnavailable && mentionsUnknownOutcome(apiErr.Message))
	}
	return sent
}

// settlesOutcome: the API's own answer to a request carrying the key of
// the earlier attempts is the outcome of all of them when it is a 4xx
// (refused: with the key seen before, the server would have answered
// with the first outcome). Its 5xx settle nothing: a 500 may follow a
// commit, and an earlier attempt whose answer was lost may still apply.
func settlesOutcome(err error) bool {
	var apiErr *Error
	return errors.As(err, &apiErr) && apiErr.FromAPI && apiErr.Status < 500
}

// mentionsUnknownOutcome: the API's 503 for a write it forwarded or
// replicated without learning the result says "outcome unknown" or "the
// outcome is unknown"; its other 503s (no leader, over capacity) mean the
// write was not applied.
func mentionsUnknownOutcome(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "outcome unknown") || strings.Contains(m, "outcome is unknown")
}

// unknownCause says in a few words why the outcome is unknown.
func unknownCause(err error) string {
	var apiErr *Error
	var noAnswer errNoAnswer
	switch {
	case errors.As(err, &apiErr) && !apiErr.FromAPI:
		return apiErr.notAPI
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable:
		return "the node gave up waiting for the leader"
	case errors.As(err, &apiErr):
		return fmt.Sprintf("the server failed with %d: %s", apiErr.Status, apiErr.Message)
	case errors.As(err, &noAnswer):
		return noAnswer.Error()
	case errors.Is(err, context.Canceled):
		return "interrupted after sending"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out after sending"
	}
	return "connection lost after sending: " + shortNetError(err)
}

// dialCause names why a connection could not be made.
func dialCause(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dnsErr):
		return "no such host " + dnsErr.Name
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "connection timed out"
	}
	return shortNetError(err)
}

// shortNetError drops the "Post \"url\": dial tcp …:" prefixes a
// transport error carries, keeping its cause.
func shortNetError(err error) string {
	if err == nil {
		return "no answer"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// isDialFailure: the attempt never got a connection and failed for a
// reason other than the call's own context.
func isDialFailure(err error, connected bool) bool {
	var apiErr *Error
	return !connected && !errors.As(err, &apiErr)
}

// waitReason says what a call that keeps retrying is waiting for.
func waitReason(err error) string {
	var apiErr *Error
	switch {
	case errors.As(err, &apiErr) && apiErr.FromAPI && strings.Contains(strings.ToLower(apiErr.Message), "leader"):
		return "the cluster to elect a leader"
	case errors.As(err, &apiErr) && apiErr.FromAPI:
		return "the server (it answered: " + apiErr.Message + ")"
	case errors.As(err, &apiErr):
		return fmt.Sprintf("a gofer node to answer (a proxy or another server answered %d)", apiErr.Status)
	}
	return "a gofer node to answer (" + dialCause(err) + ")"
}

// WaitNotice is called while a call waits to retry, once it has waited
// for a while: reason says what for ("the cluster to elect a leader"),
// waited how long so far.
type WaitNotice func(reason string, waited time.Duration)

// WithWaitNotice sets a function told about long waits (the CLI shows
// progress with it). It is called before each pause once the call has
// been retrying for 2 s or more.
func WithWaitNotice(fn WaitNotice) Option { return func(c *Client) { c.waitNotice = fn } }

// WithUnreachableFor bounds how long a call keeps retrying while no node
// accepts a connection at all (refused, no such host): a server that is
// not running or a wrong address. Default: the WithRetryFor budget. A
// node that answers, even 503, is retried for the full budget. With the
// default transport, dials that hang (a host that drops packets) end at
// this bound too: the nodes share it rather than each taking its own 3 s
// dial timeout.
func WithUnreachableFor(d time.Duration) Option { return func(c *Client) { c.unreachableFor = &d } }

// WithIdempotencyKey makes this client's writes carry key (the first
// write) and key-2, key-3, … (the ones after it) instead of random keys,
// so a program that runs the same writes again in the same order — the
// CLI after an unknown outcome — gets the first outcomes back instead of
// applying anything twice. Keys are kept per token for an hour.
func WithIdempotencyKey(key string) Option { return func(c *Client) { c.baseKey = key } }

// nextIdempotencyKey is the key of this client's next write.
func (c *Client) nextIdempotencyKey() string {
	if c.baseKey == "" {
		return newIdempotencyKey()
	}
	n := c.writes.Add(1)
	if n == 1 {
		return c.baseKey
	}
	return fmt.Sprintf("%s-%d", c.baseKey, n)
}

// maxSummary bounds the text quoted from a body that is not the API's.
const maxSummary = 100

var (
	htmlTitle   = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	htmlHeading = regexp.MustCompile(`(?is)<h1[^>]*>(.*?)</h1>`)
	htmlTag     = regexp.MustCompile(`(?s)<[^>]*>`)
)

// summarizeBody gives one line for an error body that is not the API's
// JSON (an HTML page from a proxy, plain text): its content type and its
// first meaningful text — an HTML page's <title> or <h1>, otherwise the
// first non-empty line — truncated.
func summarizeBody(contentType string, raw []byte) string {
	ct := contentType
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if ct == "" {
		ct = "no content type"
	}
	text := string(raw)
	if strings.Contains(ct, "html") || strings.HasPrefix(strings.TrimSpace(text), "<") {
		m := htmlTitle.FindStringSubmatch(text)
		if m == nil {
			m = htmlHeading.FindStringSubmatch(text)
		}
		if m != nil {
			// One element's text: its line breaks are layout.
			text = strings.Join(strings.Fields(htmlTag.ReplaceAllString(m[1], " ")), " ")
		}
		text = htmlTag.ReplaceAllString(text, "\n")
	}
	line := ""
	for _, l := range strings.Split(text, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			line = l
			break
		}
	}
	if line == "" {
		return ct + ", empty body"
	}
	if !utf8.ValidString(line) {
		line = strings.ToValidUTF8(line, "?")
	}
	if r := []rune(line); len(r) > maxSummary {
		line = string(r[:maxSummary]) + "…"
	}
	return fmt.Sprintf("%s: %q", ct, line)
}

// WithAnswerTimeout bounds how long one attempt waits for the answer's
// headers once its request was sent (streams answer with headers at
// once; snapshot saves and restores are exempt: the server works on them
// for up to 10 minutes before it answers). An attempt that times out is
// tried again, on the next node first, with the same idempotency key; a
// write's outcome is then unknown until an answer comes. Default: no
// bound. The server bounds its own work per route (api.RouteInfo's
// AnswerWithin: up to 95 s for a subscription write that waits for an
// extension), so a bound above those only fires for a node that froze
// with its connections open.
func WithAnswerTimeout(d time.Duration) Option { return func(c *Client) { c.answerTimeout = d } }

// errNoAnswer is an attempt cut off by WithAnswerTimeout. It is a
// net.Error, so the attempt is retried.
type errNoAnswer struct{ after time.Duration }

func (e errNoAnswer) Error() string   { return fmt.Sprintf("no answer within %s of sending", e.after) }
func (e errNoAnswer) Timeout() bool   { return true }
func (e errNoAnswer) Temporary() bool { return true }

// answerWait times one attempt from the moment its request was written
// until its answer's headers arrive, and cancels the attempt past the
// bound. A nil *answerWait does nothing.
type answerWait struct {
	after  time.Duration
	cancel context.CancelFunc
	mu     sync.Mutex
	timer  *time.Timer
	done   bool // the answer or a failure came: never arm the timer again
	fired  bool
}

func newAnswerWait(ctx context.Context, after time.Duration, trace *httptrace.ClientTrace) (context.Context, *answerWait) {
	ctx, cancel := context.WithCancel(ctx)
	w := &answerWait{after: after, cancel: cancel}
	trace.WroteRequest = func(httptrace.WroteRequestInfo) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.done && w.timer == nil {
			w.timer = time.AfterFunc(after, w.fire)
		}
	}
	return ctx, w
}

func (w *answerWait) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.fired = true
		w.cancel()
	}
}

// stop disarms the timer and reports whether it cut the attempt off.
func (w *answerWait) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	return w.fired
}

// release ends an attempt that never started.
func (w *answerWait) release() {
	if w != nil {
		w.stop()
		w.cancel()
	}
}

// failed ends an attempt that got no answer, naming the timeout if it
// was the cause.
func (w *answerWait) failed(err error) error {
	if w == nil {
		return err
	}
	fired := w.stop()
	w.cancel()
	if fired {
		return errNoAnswer{w.after}
	}
	return err
}

// answered ends the wait once headers came; the attempt's context lives
// until the body is closed.
func (w *answerWait) answered(resp *http.Response) {
	if w == nil {
		return
	}
	w.stop()
	resp.Body = cancelOnClose{resp.Body, w.cancel}
}

// cancelOnClose releases a request's context with its body (an attempt's
// answer, a plain log stream).
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
