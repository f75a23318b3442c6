package extension

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Errors of the Gofer client.
var (
	// ErrNoIdempotencyKey: every run an extension starts needs a key, so a
	// retry, a restarted extension or two replicas never start it twice.
	ErrNoIdempotencyKey = errors.New("an idempotency key is required")
	// ErrUnavailable wraps the last failure when retries ran out.
	ErrUnavailable = errors.New("gofer unavailable")
)

// MaxIdempotencyKey is the longest key Gofer accepts.
const MaxIdempotencyKey = 128

// maxAnswer bounds how much of an answer the client reads.
const maxAnswer = 16 << 20

// APIError is an error answer from Gofer.
type APIError struct {
	Status  int
	Code    string
	Message string
	// Missing lists the secrets and objects a refused run start (409)
	// names as not there; a redelivery or later tick may succeed once
	// they are stored.
	Missing []MissingValue
}

// MissingValue is one secret or object Gofer named as not there
// (docs/secrets-and-objects.md).
type MissingValue struct {
	// Kind is pipeline_secret, global_secret, pipeline_object or run_object.
	Kind    string   `json:"kind"`
	Key     string   `json:"key"`
	Problem string   `json:"problem"`
	Fix     string   `json:"fix"`
	UsedBy  []string `json:"used_by"`
}

// MissingSummary names the missing values compactly, "missing: KIND KEY,
// KIND KEY", or is "" when the answer named none.
func (e *APIError) MissingSummary() string {
	if len(e.Missing) == 0 {
		return ""
	}
	parts := make([]string, len(e.Missing))
	for i, m := range e.Missing {
		parts[i] = m.Kind + " " + m.Key
	}
	return "missing: " + strings.Join(parts, ", ")
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("gofer answered %d", e.Status)
	}
	return fmt.Sprintf("gofer answered %d: %s", e.Status, e.Message)
}

// Client calls Gofer's API as the extension: its token is the extension's
// secret. It is safe for concurrent use.
type Client struct {
	id     string
	secret string
	hosts  []string
	// next is the index of the host to try first (the last that answered).
	next atomic.Int64
	http *http.Client
	log  *slog.Logger

	// retryFor bounds how long one call keeps retrying connection errors
	// and 502/503/504 answers; the context may end it sooner.
	retryFor time.Duration
	// minBackoff and maxBackoff bound the wait between attempts.
	minBackoff, maxBackoff time.Duration
	// now and sleep are the clock, replaceable in tests.
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient replaces the HTTP client (per-attempt timeout, TLS roots).
func WithHTTPClient(h *http.Client) ClientOption { return func(c *Client) { c.http = h } }

// WithRetry sets how long a call keeps retrying and the bounds of the
// wait between attempts (defaults: 1m, 100ms, 5s).
func WithRetry(retryFor, minBackoff, maxBackoff time.Duration) ClientOption {
	return func(c *Client) { c.retryFor, c.minBackoff, c.maxBackoff = retryFor, minBackoff, maxBackoff }
}

// WithLogger sets the client's logger.
func WithLogger(l *slog.Logger) ClientOption { return func(c *Client) { c.log = l } }

// NewClient returns a client for the extension described by cfg.
func NewClient(cfg SystemConfig, opts ...ClientOption) *Client {
	c := &Client{
		id:         cfg.ID,
		secret:     cfg.Secret,
		hosts:      append([]string(nil), cfg.GoferHosts...),
		http:       &http.Client{Timeout: 30 * time.Second},
		log:        slog.New(slog.DiscardHandler),
		retryFor:   time.Minute,
		minBackoff: 100 * time.Millisecond,
		maxBackoff: 5 * time.Second,
		now:        time.Now,
		sleep:      sleepCtx,
	}
	if cfg.GoferCA != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(cfg.GoferCA))
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		c.http.Transport = t
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ExtensionID is the extension's id.
func (c *Client) ExtensionID() string { return c.id }

// Logger is the extension's logger (JSON on stderr at the configured level
// when the client comes from Run).
func (c *Client) Logger() *slog.Logger { return c.log }

// RunInfo is a run as Gofer answers it. Only the fields an extension is likely
// to need are decoded; unknown fields are ignored.
type RunInfo struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	RunID       int64  `json:"run_id"`
	State       string `json:"state"`
	Status      string `json:"status"`
	Created     int64  `json:"created"`
	// Variables of the run by key (Gofer answers a list of
	// {key, value, source}; an object is accepted too).
	Variables map[string]string `json:"-"`
}

// StartRun starts a run of a pipeline with the given variables.
// idempotencyKey names this start so that it happens at most once: build it
// from what caused the run, e.g. "interval:<subscription>:<tick unix>",
// "cron:<subscription>:<scheduled unix>" or "github:<delivery id>". A
// connection error or a 502/503/504 is retried with the same key (Gofer
// answers a repeated key with the run it already started).
//
// An answer Gofer accepted (2xx) but that cannot be decoded still counts as
// started: the returned RunInfo then holds only the namespace and pipeline, and
// the problem is logged.
func (c *Client) StartRun(ctx context.Context, namespace, pipeline string, variables map[string]string, idempotencyKey string) (*RunInfo, error) {
	if idempotencyKey == "" {
		return nil, ErrNoIdempotencyKey
	}
	if len(idempotencyKey) > MaxIdempotencyKey {
		return nil, fmt.Errorf("idempotency key %q is longer than %d characters", idempotencyKey, MaxIdempotencyKey)
	}
	if namespace == "" || pipeline == "" {
		return nil, errors.New("namespace and pipeline are required")
	}
	if variables == nil {
		variables = map[string]string{}
	}
	body, err := json.Marshal(map[string]any{"variables": variables})
	if err != nil {
		return nil, err
	}
	path := "/api/namespaces/" + url.PathEscape(namespace) + "/pipelines/" + url.PathEscape(pipeline) + "/runs"
	answer, err := c.call(ctx, http.MethodPost, path, body, idempotencyKey)
	if err != nil {
		return nil, fmt.Errorf("start run of %s/%s (key %s): %w", namespace, pipeline, idempotencyKey, err)
	}
	run, perr := decodeRun(answer)
	if perr != nil {
		c.log.Warn("run started but its answer could not be read", "namespace", namespace,
			"pipeline", pipeline, "idempotency_key", idempotencyKey, "error", perr)
		return &RunInfo{NamespaceID: namespace, PipelineID: pipeline}, nil
	}
	return run, nil
}

func decodeRun(answer []byte) (*RunInfo, error) {
	var wrapper struct {
		Run *struct {
			RunInfo
			Variables json.RawMessage `json:"variables"`
		} `json:"run"`
	}
	if err := json.Unmarshal(answer, &wrapper); err != nil {
		return nil, err
	}
	if wrapper.Run == nil {
		return nil, errors.New(`no "run" in the answer`)
	}
	run := wrapper.Run.RunInfo
	run.Variables = map[string]string{}
	raw := bytes.TrimSpace(wrapper.Run.Variables)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
	case raw[0] == '[':
		var list []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("variables: %w", err)
		}
		for _, v := range list {
			run.Variables[v.Key] = v.Value
		}
	default:
		if err := json.Unmarshal(raw, &run.Variables); err != nil {
			return nil, fmt.Errorf("variables: %w", err)
		}
	}
	return &run, nil
}

// StoredSubscription is a subscription as Gofer stores it.
type StoredSubscription struct {
	NamespaceID    string            `json:"namespace_id"`
	PipelineID     string            `json:"pipeline_id"`
	ExtensionID    string            `json:"extension_id"`
	SubscriptionID string            `json:"subscription_id"`
	Settings       map[string]string `json:"settings"`
	Status         string            `json:"status"`
	// StatusReason is kept as Gofer sent it ({reason, description} or null).
	StatusReason json.RawMessage `json:"status_reason,omitempty"`
	// Watermark is Gofer's last fired or skipped tick of the subscription
	// (epoch ms, 0 before the first); Created is when it was made (epoch
	// ms). Both are Gofer additions; upstream sends neither (0).
	Watermark int64 `json:"watermark,omitempty"`
	Created   int64 `json:"created,omitempty"`
}

// Subscription reads one of the extension's subscriptions as Gofer stores
// it (GET …/pipelines/{pipeline}/subscriptions/{extension}/{id}), with its
// watermark and creation time. A subscription Gofer has not stored (yet:
// Gofer asks the extension before it stores a new one) answers an
// *APIError with Status 404.
func (c *Client) Subscription(ctx context.Context, namespace, pipeline, id string) (*StoredSubscription, error) {
	path := "/api/namespaces/" + url.PathEscape(namespace) + "/pipelines/" + url.PathEscape(pipeline) +
		"/subscriptions/" + url.PathEscape(c.id) + "/" + url.PathEscape(id)
	answer, err := c.call(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, fmt.Errorf("read subscription %s/%s/%s: %w", namespace, pipeline, id, err)
	}
	var wrapper struct {
		Subscription *StoredSubscription `json:"subscription"`
	}
	if err := json.Unmarshal(answer, &wrapper); err != nil || wrapper.Subscription == nil {
		return nil, fmt.Errorf("read subscription %s/%s/%s: unreadable answer", namespace, pipeline, id)
	}
	return wrapper.Subscription, nil
}

// MaxSkippedTicksPerCall is how many ticks one skipped-ticks request lists;
// RecordSkippedTicks sends more in several requests.
const MaxSkippedTicksPerCall = 500

// MaxSkipReason is the longest SkippedTicks.Reason Gofer accepts, in
// bytes.
const MaxSkipReason = 256

// SkippedTicks describes ticks a trigger extension decided not to fire.
type SkippedTicks struct {
	// Ticks are the skipped ticks' scheduled times.
	Ticks []time.Time
	// Through, when not zero, says every tick after the listed ones up to
	// and including Through was skipped too without being listed.
	Through time.Time
	// Reason says why, e.g. "catch_up latest: fired a later tick"; at
	// most MaxSkipReason bytes.
	Reason string
}

// RecordSkippedTicks tells Gofer which ticks of a subscription the
// extension skipped under its catch-up policy (a Gofer addition:
// POST …/subscriptions/{extension}/{id}/skipped-ticks). Gofer records one
// event per tick and moves the subscription's watermark past them, so
// they are never decided again; ticks the watermark already passed are
// ignored, which makes a retry harmless. Ticks are sent oldest first, at
// most MaxSkippedTicksPerCall per request.
func (c *Client) RecordSkippedTicks(ctx context.Context, namespace, pipeline, id string, skipped SkippedTicks) error {
	unix := make([]int64, len(skipped.Ticks))
	for i, t := range skipped.Ticks {
		unix[i] = t.Unix()
	}
	slices.Sort(unix)
	path := "/api/namespaces/" + url.PathEscape(namespace) + "/pipelines/" + url.PathEscape(pipeline) +
		"/subscriptions/" + url.PathEscape(c.id) + "/" + url.PathEscape(id) + "/skipped-ticks"
	for len(unix) > 0 || !skipped.Through.IsZero() {
		n := min(len(unix), MaxSkippedTicksPerCall)
		req := map[string]any{"ticks": unix[:n], "reason": skipped.Reason}
		last := n == len(unix)
		if last && !skipped.Through.IsZero() {
			req["through"] = skipped.Through.Unix()
		}
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		if _, err := c.call(ctx, http.MethodPost, path, body, ""); err != nil {
			return fmt.Errorf("record skipped ticks of %s/%s/%s: %w", namespace, pipeline, id, err)
		}
		unix = unix[n:]
		if last {
			return nil
		}
	}
	return nil
}

// subscriptionsPage is how many subscriptions one list call asks for.
const subscriptionsPage = 1000

// Subscriptions lists the extension's subscriptions as Gofer stores them
// (GET /api/extensions/{id}/subscriptions), retrying while Gofer is
// unreachable. It pages with limit/offset; a server that ignores them
// (upstream answers everything at once) is handled too.
func (c *Client) Subscriptions(ctx context.Context) ([]StoredSubscription, error) {
	var all []StoredSubscription
	seen := map[[3]string]bool{}
	for offset := 0; ; offset += subscriptionsPage {
		path := fmt.Sprintf("/api/extensions/%s/subscriptions?limit=%d&offset=%d", url.PathEscape(c.id), subscriptionsPage, offset)
		answer, err := c.call(ctx, http.MethodGet, path, nil, "")
		if err != nil {
			return nil, fmt.Errorf("list subscriptions of extension %s: %w", c.id, err)
		}
		var page struct {
			Subscriptions []StoredSubscription `json:"subscriptions"`
		}
		if err := json.Unmarshal(answer, &page); err != nil {
			return nil, fmt.Errorf("list subscriptions of extension %s: unreadable answer: %w", c.id, err)
		}
		added := 0
		for _, s := range page.Subscriptions {
			k := [3]string{s.NamespaceID, s.PipelineID, s.SubscriptionID}
			if seen[k] {
				continue
			}
			seen[k] = true
			all = append(all, s)
			added++
		}
		if len(page.Subscriptions) < subscriptionsPage || added == 0 {
			return all, nil
		}
	}
}

// call sends one request, trying the hosts in turn and retrying connection
// errors and 502/503/504 answers with backoff until retryFor has passed. A
// write carries the same idempotency key on every attempt. It returns the
// body of a 2xx answer.
func (c *Client) call(ctx context.Context, method, path string, body []byte, key string) ([]byte, error) {
	if len(c.hosts) == 0 {
		return nil, fmt.Errorf("%w: no Gofer address (%s)", ErrConfig, EnvGoferHost)
	}
	deadline := c.now().Add(c.retryFor)
	backoff := c.minBackoff
	var last error
	for attempt := 0; ; attempt++ {
		i := int(c.next.Load()) % len(c.hosts)
		answer, retryAfter, err := c.once(ctx, c.hosts[i], method, path, body, key)
		if err == nil {
			c.next.Store(int64(i))
			return answer, nil
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) && !retriable(apiErr.Status) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		last = err
		// The next attempt goes to the next host.
		c.next.CompareAndSwap(int64(i), int64((i+1)%len(c.hosts)))
		// Jitter keeps extensions that lost Gofer together from
		// retrying in step.
		wait := max(backoff, min(retryAfter, c.maxBackoff))
		wait += rand.N(wait/4 + 1)
		if !c.now().Add(wait).Before(deadline) {
			return nil, fmt.Errorf("%w after %d attempts: %w", ErrUnavailable, attempt+1, last)
		}
		c.log.Debug("gofer unavailable, retrying", "method", method, "path", path, "wait", wait, "error", err)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, last)
		}
		backoff = min(backoff*2, c.maxBackoff)
	}
}

func retriable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// once sends one attempt. It returns the answer's body on 2xx, else an
// error (an *APIError for an HTTP answer) and the Retry-After it carried.
func (c *Client) once(ctx context.Context, base, method, path string, body []byte, key string) ([]byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	req.Header.Set("gofer-api-version", "v0")
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	// The answer is JSON whatever its Content-Type says (upstream labels
	// some JSON text/plain).
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return data, 0, nil
	}
	apiErr := &APIError{Status: resp.StatusCode}
	var e struct {
		Code      string         `json:"code"`
		ErrorCode string         `json:"error_code"`
		Message   string         `json:"message"`
		Missing   []MissingValue `json:"missing"`
	}
	if json.Unmarshal(data, &e) == nil {
		apiErr.Code, apiErr.Message, apiErr.Missing = e.Code, e.Message, e.Missing
		if apiErr.Code == "" {
			apiErr.Code = e.ErrorCode
		}
	} else {
		apiErr.Message = strings.TrimSpace(string(data[:min(len(data), 512)]))
	}
	var retryAfter time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return nil, retryAfter, apiErr
}
