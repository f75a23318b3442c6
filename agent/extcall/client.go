package extcall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Client makes the leader's calls to running extensions (POST and DELETE
// /api/subscribe, GET /api/debug, POST /api/external-event),
// as upstream's server makes them, so images built with upstream's SDKs
// answer unchanged.
//
// One call at a time per extension: upstream's extensions keep their
// subscriptions without a lock (upstream's server serialized its calls),
// so a second call waits for the first to end, and gives up when its own
// context ends first.
type Client struct {
	loc        Locator
	http       *http.Client
	timeout    time.Duration
	eventLimit time.Duration

	mu    sync.Mutex
	turns map[string]chan struct{} // per extension id: one token
}

// Default bounds of a call (the wait for the extension's turn included).
const (
	// DefaultCallTimeout bounds subscribe, unsubscribe, debug and info.
	DefaultCallTimeout = 30 * time.Second
	// DefaultEventTimeout bounds an external event (up to 25 MiB sent as
	// a JSON array of numbers).
	DefaultEventTimeout = 2 * time.Minute
)

// maxAnswer bounds how much of an extension's answer is read: an error's
// message, a debug dump, the documentation.
const maxAnswer = 1 << 20

// maxMessage bounds the extension's message quoted in an error.
const maxMessage = 2 << 10

// Option adjusts a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (TLS settings for extensions that
// serve HTTPS). Its own Timeout should be zero: the Client bounds calls.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithTimeouts sets the bound of ordinary calls and of external events.
func WithTimeouts(call, event time.Duration) Option {
	return func(c *Client) {
		if call > 0 {
			c.timeout = call
		}
		if event > 0 {
			c.eventLimit = event
		}
	}
}

// NewClient calls the extensions loc finds.
func NewClient(loc Locator, opts ...Option) *Client {
	c := &Client{
		loc: loc,
		http: &http.Client{Transport: &http.Transport{
			Proxy:               nil, // extensions are local: never through a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		}},
		timeout:    DefaultCallTimeout,
		eventLimit: DefaultEventTimeout,
		turns:      map[string]chan struct{}{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Subscription is POST /api/subscribe's body: Params already have their
// secret markers resolved.
type Subscription struct {
	NamespaceID    string            `json:"namespace_id"`
	PipelineID     string            `json:"pipeline_id"`
	SubscriptionID string            `json:"pipeline_subscription_id"`
	Params         map[string]string `json:"pipeline_subscription_params"`
}

// SubscriptionRef is DELETE /api/subscribe's body.
type SubscriptionRef struct {
	NamespaceID    string `json:"namespace_id"`
	PipelineID     string `json:"pipeline_id"`
	SubscriptionID string `json:"pipeline_subscription_id"`
}

// Event is an external event for an extension: the headers of the
// original request (lower-case names, as upstream's server sends them;
// repeated headers joined with ", ") and its raw body.
type Event struct {
	Headers map[string]string
	Body    []byte
}

// Subscribe asks extension id to take sub (POST /api/subscribe). An
// extension refusing the settings answers 4xx: an *Error with its message.
func (c *Client) Subscribe(ctx context.Context, id string, sub Subscription) error {
	if sub.Params == nil {
		sub.Params = map[string]string{}
	}
	return c.call(ctx, id, c.timeout, http.MethodPost, "/api/subscribe", jsonBody(sub), nil)
}

// Unsubscribe tells extension id to drop a subscription (DELETE
// /api/subscribe). Any 2xx is success (upstream's Go SDK answers 201).
func (c *Client) Unsubscribe(ctx context.Context, id string, ref SubscriptionRef) error {
	return c.call(ctx, id, c.timeout, http.MethodDelete, "/api/subscribe", jsonBody(ref), nil)
}

// Debug answers extension id's GET /api/debug "info" (free text).
func (c *Client) Debug(ctx context.Context, id string) (string, error) {
	var out struct {
		Info string `json:"info"`
	}
	err := c.call(ctx, id, c.timeout, http.MethodGet, "/api/debug", nil, &out)
	return out.Info, err
}

// ExternalEvent passes an external event to extension id (POST
// /api/external-event). The body goes as a JSON array of numbers, as
// upstream's server sends a Vec<u8>: upstream's Rust SDK takes only that
// form, and Go's encoding/json decodes it into a []byte too.
func (c *Client) ExternalEvent(ctx context.Context, id string, ev Event) error {
	headers := ev.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	h, err := json.Marshal(headers)
	if err != nil {
		return err
	}
	body := func() (io.Reader, int64) {
		return newEventBody(h, ev.Body)
	}
	return c.call(ctx, id, c.eventLimit, http.MethodPost, "/api/external-event", body, nil)
}

// ErrNotRunning is wrapped by the error of a call to an extension this
// node does not run (not installed, not started yet, or this node is not
// the leader).
var ErrNotRunning = errors.New("extension is not running")

// NotRunningError says which extension is not running.
type NotRunningError struct{ ExtensionID string }

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("extension %q is not running on the leader yet (it is starting, stopped, or the leadership just moved)", e.ExtensionID)
}

// Unwrap makes errors.Is(err, ErrNotRunning) hold.
func (e *NotRunningError) Unwrap() error { return ErrNotRunning }

// Error is an extension's error answer: its status and its own message.
type Error struct {
	ExtensionID string
	Status      int
	Message     string
}

func (e *Error) Error() string {
	return fmt.Sprintf("extension %q answered %d: %s", e.ExtensionID, e.Status, e.Message)
}

// UnreachableError is a call that got no answer: the connection failed,
// the call timed out, or the answer could not be read.
type UnreachableError struct {
	ExtensionID string
	Err         error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("extension %q is not reachable: %v", e.ExtensionID, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// bodyFunc makes a request body and its length (a call is tried once, but
// the reader is made only once the extension's turn has come).
type bodyFunc func() (io.Reader, int64)

func jsonBody(v any) bodyFunc {
	return func() (io.Reader, int64) {
		b, _ := json.Marshal(v) // plain structs and string maps: cannot fail
		return bytes.NewReader(b), int64(len(b))
	}
}

// turn waits for extension id's one call slot; release gives it back.
func (c *Client) turn(ctx context.Context, id string) (release func(), err error) {
	c.mu.Lock()
	ch, ok := c.turns[id]
	if !ok {
		ch = make(chan struct{}, 1)
		c.turns[id] = ch
	}
	c.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for extension %q to finish its previous call: %w", id, context.Cause(ctx))
	}
}

// call sends one request to extension id and decodes a 2xx answer into
// out (when not nil). The extension's replies may be labelled text/plain
// (upstream's SDK): the label is ignored.
func (c *Client) call(ctx context.Context, id string, limit time.Duration, method, path string, body bodyFunc, out any) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	release, err := c.turn(ctx, id)
	if err != nil {
		return &UnreachableError{ExtensionID: id, Err: err}
	}
	defer release()
	// Looked up once the turn has come: the extension may have moved
	// (restarted) while this call waited.
	t, ok := c.loc.Target(id)
	if !ok {
		return &NotRunningError{ExtensionID: id}
	}
	var r io.Reader
	var n int64
	if body != nil {
		r, n = body()
	}
	req, err := http.NewRequestWithContext(ctx, method, t.BaseURL+path, r)
	if err != nil {
		return &UnreachableError{ExtensionID: id, Err: err}
	}
	if body != nil {
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+t.Secret)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return &UnreachableError{ExtensionID: id, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return &UnreachableError{ExtensionID: id, Err: fmt.Errorf("reading its answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &Error{ExtensionID: id, Status: resp.StatusCode, Message: errorMessage(resp.StatusCode, data)}
	}
	if out == nil {
		return nil
	}
	if len(data) > maxAnswer {
		return &Error{ExtensionID: id, Status: resp.StatusCode, Message: fmt.Sprintf("its answer is over %d bytes", maxAnswer)}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &Error{ExtensionID: id, Status: resp.StatusCode, Message: "its answer is not the JSON expected: " + err.Error()}
	}
	return nil
}

// errorMessage is the extension's own message from an error answer: the
// "message" of a JSON body (the SDKs' error shape), else the body as text,
// else the status text; bounded and on one line.
func errorMessage(status int, data []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	msg := ""
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		msg = e.Message
	} else {
		msg = string(data)
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && !isRuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return msg
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
