package api

import (
	"container/list"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Connection cap. Every open API connection costs a file descriptor, and
// raft, bbolt and the Docker client share the process's descriptors; a
// flood of idle or slow connections must not starve them. The listener
// admits at most max connections. At the cap, a new connection:
//
//  1. takes the place of the oldest connection that is doing nothing (no
//     request yet, or idle between requests), which is closed; otherwise
//  2. enters a small overflow lane: it lives for laneTTL at most and may
//     only ask /api/system/health (anything else gets a fast 503 and the
//     connection closes). When the lane is full its oldest connection is
//     closed to make room.
//
// So a load balancer's health check is answered however the normal slots
// are held, and the process never holds more than max+laneSize API
// connections.

const (
	overflowLaneSize = 64
	overflowLaneTTL  = 2 * time.Second
)

type ctxKeyOverflow struct{}

// overflowConn reports whether the request came over an overflow-lane
// connection.
func overflowConn(ctx context.Context) bool {
	v, _ := ctx.Value(ctxKeyOverflow{}).(bool)
	return v
}

// connLimiter is a net.Listener with the cap described above.
type connLimiter struct {
	net.Listener
	max    int
	logger hclog.Logger
	now    func() time.Time

	mu     sync.Mutex
	normal map[*limitedConn]struct{}
	// idle holds the normal connections with no request in progress
	// (StateNew, StateIdle), in the order they became so: the front is
	// the one to shed, found without scanning every connection.
	idle   *list.List
	lane   []*limitedConn // oldest first
	warned time.Time
}

func newConnLimiter(ln net.Listener, max int, logger hclog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: max, logger: logger, now: time.Now, normal: map[*limitedConn]struct{}{}, idle: list.New()}
}

// limitedConn is one admitted connection.
type limitedConn struct {
	net.Conn
	l        *connLimiter
	overflow bool
	// state, since, idleAt and expire are guarded by l.mu.
	state http.ConnState
	since time.Time
	// idleAt is the connection's element in l.idle, nil when it is not
	// there.
	idleAt *list.Element
	once   sync.Once
	// expire closes an overflow connection after overflowLaneTTL (a
	// deadline on the socket would not do: net/http resets read deadlines
	// for each request).
	expire *time.Timer
}

// CloseWrite sends a FIN, as net/http does before it closes a connection
// whose request body it did not read (see abandonBody); without it the
// client would get no FIN, only the later close.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c) })
	return c.Conn.Close()
}

// Accept admits the next connection, shedding as described on connLimiter.
func (l *connLimiter) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &limitedConn{Conn: raw, l: l, state: http.StateNew, since: l.now()}
	var shed *limitedConn
	l.mu.Lock()
	if len(l.normal) >= l.max {
		shed = l.oldestIdleLocked()
	}
	switch {
	case len(l.normal) < l.max || shed != nil:
		if shed != nil {
			delete(l.normal, shed)
			l.unidleLocked(shed)
		}
		l.normal[c] = struct{}{}
		c.idleAt = l.idle.PushBack(c)
	default:
		c.overflow = true
		if len(l.lane) >= overflowLaneSize {
			shed = l.lane[0]
			l.lane = l.lane[1:]
		}
		l.lane = append(l.lane, c)
		if now := l.now(); now.Sub(l.warned) > 10*time.Second {
			l.warned = now
			l.logger.Warn("API connection limit reached; new connections may only ask for health", "max_connections", l.max)
		}
	}
	if c.overflow {
		c.expire = time.AfterFunc(overflowLaneTTL, func() { _ = c.Close() })
	}
	if shed != nil && shed.expire != nil {
		shed.expire.Stop()
	}
	l.mu.Unlock()
	if shed != nil {
		shed.once.Do(func() {}) // already removed from the books
		_ = shed.Conn.Close()
	}
	return c, nil
}

// oldestIdleLocked is the normal connection that has had no request in
// progress for longest, or nil.
func (l *connLimiter) oldestIdleLocked() *limitedConn {
	if e := l.idle.Front(); e != nil {
		return e.Value.(*limitedConn)
	}
	return nil
}

// unidleLocked takes c off the idle list.
func (l *connLimiter) unidleLocked(c *limitedConn) {
	if c.idleAt != nil {
		l.idle.Remove(c.idleAt)
		c.idleAt = nil
	}
}

func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.expire != nil {
		c.expire.Stop()
	}
	if !c.overflow {
		delete(l.normal, c)
		l.unidleLocked(c)
		return
	}
	for i, x := range l.lane {
		if x == c {
			l.lane = append(l.lane[:i], l.lane[i+1:]...)
			break
		}
	}
}

// connState is the http.Server hook that tells the limiter which
// connections are doing nothing.
func (l *connLimiter) connState(nc net.Conn, st http.ConnState) {
	c, ok := unwrapTLS(nc).(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c.state, c.since = st, l.now()
	l.unidleLocked(c)
	if _, admitted := l.normal[c]; admitted && (st == http.StateNew || st == http.StateIdle) {
		c.idleAt = l.idle.PushBack(c) // the newest idle one
	}
}

// connContext marks requests from overflow connections and lets a request
// find its connection (closing).
func (l *connLimiter) connContext(ctx context.Context, nc net.Conn) context.Context {
	c, ok := unwrapTLS(nc).(*limitedConn)
	if !ok {
		return ctx
	}
	ctx = context.WithValue(ctx, ctxKeyConn{}, c)
	if c.overflow {
		ctx = context.WithValue(ctx, ctxKeyOverflow{}, true)
	}
	return ctx
}

type ctxKeyConn struct{}

// closing marks the connection of a request refused before its body was
// read as the first to shed: it only lingers so the client can read the
// answer before the close (abandonBody), and a flood of refused requests
// must not hold the normal slots while they linger.
func closing(ctx context.Context) {
	c, ok := ctx.Value(ctxKeyConn{}).(*limitedConn)
	if !ok {
		return
	}
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, admitted := l.normal[c]; admitted {
		l.unidleLocked(c)
		c.idleAt = l.idle.PushFront(c)
	}
}

// open counts admitted connections (tests).
func (l *connLimiter) open() (normal, lane int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.normal), len(l.lane)
}

// unwrapTLS is the connection under a TLS server connection: the limiter
// tracks the connections it accepted, which a TLS listener wraps.
func unwrapTLS(nc net.Conn) net.Conn {
	if tc, ok := nc.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return nc
}
