package api

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/labstack/echo/v4"
)

// forwarder sends requests that must run on the leader there, one hop,
// as an HTTP reverse proxy. A request that was already forwarded is never
// forwarded again (a loop during leadership churn gets a 503 instead).
type forwarder struct {
	cluster Cluster
	logger  hclog.Logger
	opts    forwardOptions
	// slots caps the requests being forwarded at once: each holds an
	// outgoing connection (a file descriptor) besides the client's.
	slots     chan struct{}
	transport *http.Transport

	mu      sync.Mutex
	proxies map[string]*httputil.ReverseProxy
}

// forwardOptions are the forwarder's bounds (see Options).
type forwardOptions struct {
	// hold: how long a request waits for a leader to be known.
	hold time.Duration
	// applyTimeout: how long the leader itself may take to apply a write.
	applyTimeout time.Duration
	// silence: a leader not heard from for this long is given up on.
	silence time.Duration
	// maxForwards caps concurrent forwarded requests.
	maxForwards int
	// tls verifies an https leader (the cluster CA); nil: system roots.
	tls *tls.Config
}

func newForwarder(cluster Cluster, logger hclog.Logger, opts forwardOptions) *forwarder {
	return &forwarder{
		cluster: cluster,
		logger:  logger,
		opts:    opts,
		slots:   make(chan struct{}, opts.maxForwards),
		transport: &http.Transport{
			Proxy:           nil,
			TLSClientConfig: opts.tls,
			DialContext:     (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:    opts.maxForwards,
			IdleConnTimeout: 90 * time.Second,
			// The slots bound the forwarded requests; the one more is
			// the token catch-up's question (catchup.go), which shares
			// this transport.
			MaxIdleConnsPerHost: opts.maxForwards,
			MaxConnsPerHost:     opts.maxForwards + 1,
			// No ResponseHeaderTimeout: the watchdog in proxy bounds the
			// wait per request (some routes legitimately take longer).
		},
		proxies: map[string]*httputil.ReverseProxy{},
	}
}

// middleware runs next on the (ready) leader and proxies to it elsewhere.
// needsLeader decides per request: writes always, reads with
// ?consistent=true, and leader-only operations. leaderWork is how long the
// leader may legitimately work on the request before it answers, beyond
// its apply timeout (a snapshot, a ?min_index wait); nil means nothing
// beyond.
//
// Two bounds apply. Waiting for a leader to be known takes at most the
// hold (5 s) from the request's arrival. Once sent to a leader, the answer
// may take as long as that leader may legitimately take (the hold for its
// own readiness, its apply timeout, leaderWork), measured from the send; a
// leader that is gone is detected much sooner by proxy's poll, which gives
// up as soon as this node stops following it or stops hearing from it.
func (f *forwarder) middleware(needsLeader func(c echo.Context) bool, leaderWork func(c echo.Context) time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !needsLeader(c) {
				return next(c)
			}
			deadline := time.Now().Add(f.opts.hold)
			for {
				if f.cluster.IsLeader() {
					if f.cluster.Ready() {
						return next(c)
					}
				} else if leaderID, leaderURL := f.cluster.Leader(); leaderURL != "" {
					if from := c.Request().Header.Get(HeaderForwardedFrom); from != "" {
						return unavailable(1, "request forwarded by node %s reached node %s, which is not the leader; retry", from, f.cluster.NodeID())
					}
					budget := f.opts.hold + f.opts.applyTimeout
					if leaderWork != nil {
						budget += leaderWork(c)
					}
					// The leader answers, and audits, it.
					c.Set(ctxForwarded, true)
					return f.proxy(c, leaderID, leaderURL, budget)
				}
				if !time.Now().Before(deadline) {
					return unavailable(1, "the cluster has no leader; retry shortly")
				}
				if err := sleepCtx(c.Request().Context(), 25*time.Millisecond); err != nil {
					return unavailable(1, "request cancelled while waiting for a leader")
				}
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// proxy sends the request to the leader and streams its answer back. The
// leader must start answering within budget (a watchdog cancels it, and the
// client gets 503 with Retry-After). While the request body is still being
// sent the budget restarts with each chunk, so a large upload is bounded by
// its progress rather than its size. Once the response headers arrive
// nothing is bounded any more: event streams and log follows run as long as
// they run.
//
// A leader that is gone is not waited for until the budget ends: from
// leaderPollDelay on, the request gives up as soon as this node follows
// another leader (or none), or has not heard from this one for
// opts.silence (raft's heartbeat timeout: a frozen, crashed or cut-off
// leader, before an election even completes).
//
// A request cut off this way is not retried against the new leader: it may
// have reached the old one, the body is already consumed, and the client
// holds the Idempotency-Key that makes its own retry safe.
func (f *forwarder) proxy(c echo.Context, leaderID, leaderURL string, budget time.Duration) error {
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	default:
		return unavailable(1, "this node is already forwarding %d requests to the leader; retry (or send to the leader)", cap(f.slots))
	}
	p, err := f.proxyFor(leaderURL)
	if err != nil {
		return unavailable(1, "leader address %q is invalid: %v", leaderURL, err)
	}
	req := c.Request()
	req.Header.Set(HeaderForwardedFrom, f.cluster.NodeID())
	// The leader answers with its own request id and node headers; drop
	// ours so the response does not carry both.
	h := c.Response().Header()
	h.Del(HeaderServedBy)
	h.Del(HeaderRequestID)
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	wd := &watchdog{budget: budget}
	wd.mu.Lock() // the callbacks see both timers set
	wd.timer = time.AfterFunc(budget, func() {
		if wd.fire() {
			cancel()
		}
	})
	wd.poll = time.AfterFunc(leaderPollDelay, func() {
		if f.leaderGone(leaderID) {
			if wd.fire() {
				cancel()
			}
			return
		}
		wd.repoll()
	})
	wd.mu.Unlock()
	defer wd.answered()
	out := req.WithContext(context.WithValue(ctx, ctxKeyWatchdog{}, wd))
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = &progressBody{ReadCloser: out.Body, wd: wd}
	}
	p.ServeHTTP(c.Response(), out)
	return nil
}

// leaderGone reports whether this node no longer follows leaderID: another
// leader (or none) is known, or it has not heard from the leader for
// longer than opts.silence.
func (f *forwarder) leaderGone(leaderID string) bool {
	if id, _ := f.cluster.Leader(); id != leaderID {
		return true
	}
	return f.opts.silence > 0 && f.cluster.LastContact() > f.opts.silence
}

type ctxKeyWatchdog struct{}

// leaderPollDelay: a forwarded request that has had no answer for this long
// starts watching whether the leadership moves (most answer well before).
const leaderPollDelay = 200 * time.Millisecond

// watchdog cancels a forwarded request whose leader has not started to
// answer within its budget, or whose leader this node stopped following.
type watchdog struct {
	budget time.Duration
	timer  *time.Timer
	poll   *time.Timer

	mu      sync.Mutex
	done    bool // answered: the timer no longer matters
	fired   bool
	bodyErr error
}

// fire reports whether the deadline passed before an answer.
func (w *watchdog) fire() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return false
	}
	w.fired = true
	return true
}

// answered stops the watchdog: the response headers arrived.
func (w *watchdog) answered() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	w.timer.Stop()
	w.poll.Stop()
}

// repoll checks the leadership again shortly, until answered.
func (w *watchdog) repoll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && !w.fired {
		w.poll.Reset(100 * time.Millisecond)
	}
}

// progress restarts the budget while the request body moves.
func (w *watchdog) progress() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && !w.fired {
		w.timer.Reset(w.budget)
	}
}

// bodyFailed records that reading the client's body failed (too slow,
// too large, cut off): the client's fault, not the leader's.
func (w *watchdog) bodyFailed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bodyErr == nil {
		w.bodyErr = err
	}
}

func (w *watchdog) bodyError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bodyErr
}

func (w *watchdog) expired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

// progressBody tells the watchdog each time a chunk of the body is sent.
type progressBody struct {
	io.ReadCloser
	wd *watchdog
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.wd.progress()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		b.wd.bodyFailed(err)
	}
	return n, err
}

func (f *forwarder) proxyFor(leaderURL string) (*httputil.ReverseProxy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.proxies[leaderURL]; ok {
		return p, nil
	}
	target, err := url.Parse(leaderURL)
	if err != nil {
		return nil, err
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:     f.transport,
		FlushInterval: -1, // stream event and log tails as they come
		ModifyResponse: func(resp *http.Response) error {
			if wd, ok := resp.Request.Context().Value(ctxKeyWatchdog{}).(*watchdog); ok {
				wd.answered()
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			wd, _ := r.Context().Value(ctxKeyWatchdog{}).(*watchdog)
			if wd != nil && wd.bodyError() != nil {
				var mbe *http.MaxBytesError
				status, code := http.StatusBadRequest, CodeBadRequest
				if errors.As(wd.bodyError(), &mbe) {
					status, code = http.StatusRequestEntityTooLarge, CodePayloadTooLarge
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = w.Write([]byte(`{"request_id":` + strconv.Quote(r.Header.Get(HeaderRequestID)) +
					`,"code":` + strconv.Quote(code) + `,"message":` + strconv.Quote("reading the request body failed: "+wd.bodyError().Error()) + `}`))
				return
			}
			msg := forwardFailure(r.Method, leaderURL, err)
			if wd != nil && wd.expired() {
				// The request may have reached the leader: a write's
				// outcome is unknown.
				msg = "the leader at " + leaderURL + " did not answer in time, went silent or lost the leadership; it may have failed or frozen. " +
					"The outcome is unknown: retry with the same Idempotency-Key"
			}
			f.logger.Warn("forwarding to leader failed", "leader", leaderURL, "error", err)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"request_id":` + strconv.Quote(r.Header.Get(HeaderRequestID)) +
				`,"code":"unavailable","message":` + strconv.Quote(msg) + `}`))
		},
	}
	f.proxies[leaderURL] = p
	return p, nil
}

// forwardFailure words a failed forward. A leader that refused the
// connection never saw the request, so a retry is all there is to say;
// any later failure (the connection reset or closed while the leader
// held the request) may come after the leader applied a write, and the
// caller must hear that its outcome is unknown, not that nothing happened.
func forwardFailure(method, leaderURL string, err error) string {
	var op *net.OpError
	sentNothing := errors.As(err, &op) && op.Op == "dial"
	if sentNothing || method == http.MethodGet || method == http.MethodHead {
		return "could not reach the leader at " + leaderURL + ": " + err.Error() + "; retry"
	}
	return "the request reached the leader at " + leaderURL + " but its answer was lost (" + err.Error() + "). " +
		"The outcome is unknown: retry with the same Idempotency-Key"
}
