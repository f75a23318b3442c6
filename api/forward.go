package api

import (
	"context"
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
	cluster   Cluster
	logger    hclog.Logger
	hold      time.Duration
	transport *http.Transport

	mu      sync.Mutex
	proxies map[string]*httputil.ReverseProxy
}

func newForwarder(cluster Cluster, logger hclog.Logger, hold time.Duration) *forwarder {
	return &forwarder{
		cluster: cluster,
		logger:  logger,
		hold:    hold,
		transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
		},
		proxies: map[string]*httputil.ReverseProxy{},
	}
}

// middleware runs next on the (ready) leader and proxies to it elsewhere.
// needsLeader decides per request: writes always, reads with
// ?consistent=true, and leader-only operations.
func (f *forwarder) middleware(needsLeader func(c echo.Context) bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !needsLeader(c) {
				return next(c)
			}
			deadline := time.Now().Add(f.hold)
			for {
				if f.cluster.IsLeader() {
					if f.cluster.Ready() {
						return next(c)
					}
				} else if _, leaderURL := f.cluster.Leader(); leaderURL != "" {
					if from := c.Request().Header.Get(HeaderForwardedFrom); from != "" {
						return unavailable(1, "request forwarded by node %s reached node %s, which is not the leader; retry", from, f.cluster.NodeID())
					}
					return f.proxy(c, leaderURL)
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

func (f *forwarder) proxy(c echo.Context, leaderURL string) error {
	p, err := f.proxyFor(leaderURL)
	if err != nil {
		return unavailable(1, "leader address %q is invalid: %v", leaderURL, err)
	}
	c.Request().Header.Set(HeaderForwardedFrom, f.cluster.NodeID())
	// The leader answers with its own request id and node headers; drop
	// ours so the response does not carry both.
	h := c.Response().Header()
	h.Del(HeaderServedBy)
	h.Del(HeaderRequestID)
	p.ServeHTTP(c.Response(), c.Request())
	return nil
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
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f.logger.Warn("forwarding to leader failed", "leader", leaderURL, "error", err)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"request_id":` + strconv.Quote(r.Header.Get(HeaderRequestID)) +
				`,"code":"unavailable","message":` + strconv.Quote("could not reach the leader at "+leaderURL+": "+err.Error()+"; retry") + `}`))
		},
	}
	f.proxies[leaderURL] = p
	return p, nil
}
