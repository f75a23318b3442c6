package api

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"
	"golang.org/x/time/rate"

	"github.com/goferhq/gofer/store"
)

// Request rate limits (docs/api.md, "Limits"). Every node limits the
// requests it serves itself: an authenticated request counts against its
// token (where it is authenticated: a request a follower forwards to the
// leader is counted there, once, as its token, never as the follower), a
// request without a valid token against the client's address (before it is
// forwarded; the leader does not count it again). A follow stream counts
// once, when it opens.

// CodeRateLimited is the error code of a 429.
const CodeRateLimited = "rate_limited"

// Defaults for Options.RateLimit and Options.RateBurst (per token), and
// Options.AnonRateLimit and Options.AnonRateBurst (per client address, for
// requests without a valid token: higher, since many clients may share an
// address behind a NAT or a proxy, and a guessed token cannot succeed).
const (
	DefaultRateLimit     = 100
	DefaultRateBurst     = 200
	DefaultAnonRateLimit = 1000
	DefaultAnonRateBurst = 2000
)

// maxLimiters bounds the limiters a node keeps (one per token or client
// address seen recently). At the bound, idle ones are dropped first.
const maxLimiters = 10000

// rateLimiter holds a token bucket per key (a token id or an address). A
// bucket idle long enough to have refilled is the same as a new one, so
// such buckets are dropped when the map is full; only when none is, the
// least recently used goes (its caller gains at most one burst).
//
// The buckets are kept in a list ordered by last use (most recent first),
// so eviction looks only at the tail: each bucket dropped costs O(1), and
// a full map costs one bucket's work per new key instead of a scan of all
// of them under the mutex every request waits for.
type rateLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time
	max   int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     *list.List               // front: most recently used
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

// newRateLimiter makes a limiter of perSecond requests per key with burst;
// nil (no limit) when perSecond is 0.
func newRateLimiter(perSecond float64, burst int, now func() time.Time, maxKeys int) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, now: now, max: maxKeys,
		buckets: make(map[string]*list.Element), lru: list.New()}
}

// allow takes one request for key; when refused, retryAfter is how long
// until one would be allowed.
func (l *rateLimiter) allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if el := l.buckets[key]; el != nil {
		b = el.Value.(*bucket)
		l.lru.MoveToFront(el)
	} else {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{key: key, lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = l.lru.PushFront(b)
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// refill is how long an idle bucket takes to fill up again.
func (l *rateLimiter) refill() time.Duration {
	return time.Duration(float64(l.burst) / float64(l.limit) * float64(time.Second))
}

// evict drops, from the least recently used end, every bucket idle for a
// full refill; if that freed no room, the least recently used one. Each
// bucket is dropped once, so the cost is O(1) amortised per new key.
// l.mu is held.
func (l *rateLimiter) evict(now time.Time) {
	idle := l.refill()
	for el := l.lru.Back(); el != nil; el = l.lru.Back() {
		b := el.Value.(*bucket)
		if now.Sub(b.last) < idle {
			break
		}
		l.drop(el)
	}
	if len(l.buckets) >= l.max {
		if el := l.lru.Back(); el != nil {
			l.drop(el)
		}
	}
}

func (l *rateLimiter) drop(el *list.Element) {
	delete(l.buckets, el.Value.(*bucket).key)
	l.lru.Remove(el)
}

// size is the number of buckets held (tests).
func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// rateLimited is the 429 answer: Retry-After in whole seconds, at least 1.
func rateLimited(wait time.Duration, who, setting string) *apiError {
	e := newError(http.StatusTooManyRequests, CodeRateLimited, "too many requests from %s (%s); retry after %s", who, setting, wait.Round(time.Millisecond))
	e.retryAfter = max(1, int(math.Ceil(wait.Seconds())))
	return e
}

// limitToken counts a request against its authenticated caller. The
// cluster's own nodes (the cluster secret) are not limited.
func (s *Server) limitToken(c echo.Context, id *identity) error {
	if id.ClusterSecret {
		return nil
	}
	if id.Dev || id.TokenID == "" {
		return s.limitAddress(c)
	}
	if ok, wait := s.limiter.allow("token:" + id.TokenID); !ok {
		return rateLimited(wait, "token "+id.TokenID, "api.rate_limit")
	}
	return nil
}

// limitAddress counts a request not counted against a token (a public
// route, dev mode) against the client's address. A request a member
// forwarded was counted where it arrived.
func (s *Server) limitAddress(c echo.Context) error {
	if s.anonLimiter == nil {
		return nil
	}
	req := c.Request()
	ip := peerIP(req)
	if req.Header.Get(HeaderForwardedFrom) != "" && s.isMemberAddress(ip) {
		return nil
	}
	if ok, wait := s.anonLimiter.allow(addressKey(ip)); !ok {
		return rateLimited(wait, "address "+ip, "api.anonymous_rate_limit")
	}
	return nil
}

// limitRefusedAddress counts a request refused for want of a valid token
// (401) against its client's address. Unlike limitAddress it counts a
// request a member forwarded too: a follower forwards a token it knows in
// any state (a disabled or expired one) without counting it, and the
// leader's 401 passes back through the follower as an answer, not an
// error — so the leader is where it is counted, keyed by the address the
// follower took it from (clientAddress).
func (s *Server) limitRefusedAddress(c echo.Context) error {
	if s.anonLimiter == nil {
		return nil
	}
	ip := s.clientAddress(c.Request())
	if ok, wait := s.anonLimiter.allow(addressKey(ip)); !ok {
		return rateLimited(wait, "address "+ip, "api.anonymous_rate_limit")
	}
	return nil
}

// clientAddress is the address of the client a request came from: the
// TCP peer, or, for a request a member forwarded (it says so and its peer
// address is a member's), the address that member appended last to
// X-Forwarded-For (the forwarder's ReverseProxy appends the peer it
// served). A client's own X-Forwarded-For is never trusted: only the last
// element, written by a member, is read, and only from a member.
func (s *Server) clientAddress(r *http.Request) string {
	ip := peerIP(r)
	if r.Header.Get(HeaderForwardedFrom) == "" || !s.isMemberAddress(ip) {
		return ip
	}
	values := r.Header.Values("X-Forwarded-For")
	if len(values) == 0 {
		return ip
	}
	parts := strings.Split(values[len(values)-1], ",")
	if last := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(last) != nil {
		return last
	}
	return ip
}

// addressKey is the bucket of an address: an IPv4 address itself, an
// IPv6 address its /64 (one host is routinely given a whole /64, so a
// per-address bucket would let it use 2^64 of them).
func addressKey(ip string) string {
	a := net.ParseIP(ip)
	if a == nil || a.To4() != nil {
		return ip
	}
	return a.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// peerIP is the connection's remote address without its port. Headers
// (X-Forwarded-For) are not trusted: anyone may send them.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// isMemberAddress reports whether ip is the host of a cluster member's
// API or raft address (as configured: an address given as a name does not
// match).
func (s *Server) isMemberAddress(ip string) bool {
	found := false
	_ = s.cluster.FSM().View(func(tx *bbolt.Tx) error {
		servers, err := store.ListServers(tx)
		if err != nil {
			return err
		}
		for _, srv := range servers {
			for _, addr := range []string{srv.APIAddr, srv.RaftAddr} {
				if h := hostOf(addr); h != "" && h == ip {
					found = true
					return nil
				}
			}
		}
		return nil
	})
	return found
}

// hostOf is the host of a host:port or URL address.
func hostOf(addr string) string {
	if _, rest, ok := strings.Cut(addr, "://"); ok {
		addr, _, _ = strings.Cut(rest, "/")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
