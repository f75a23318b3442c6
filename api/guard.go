package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Body deadlines. The server's ReadHeaderTimeout bounds the headers; this
// bounds the body. A request with a body must deliver it within
// BodyReadTimeout plus one second per BodyMinRate bytes already received:
// a small JSON body has the fixed grace, a large snapshot restore or object
// upload keeps going as long as it moves at the minimum rate. A client that
// dribbles (or stops) is cut off with a read timeout, so it cannot hold a
// connection, a goroutine or the bytes buffered for it.
//
// Requests without a body get no deadline: net/http reads in the background
// from a connection whose request body is done (to notice the client going
// away), and a deadline there would cancel long-lived streams.

// Defaults for Options.BodyReadTimeout and Options.BodyMinRate.
const (
	DefaultBodyReadTimeout = 10 * time.Second
	DefaultBodyMinRate     = 32 << 10
)

// guard wraps the whole API handler: it refuses requests on overflow
// connections (see ConnLimiter) other than health checks, sets the body
// deadline, and makes an error answered before the body was read close the
// connection rather than wait for the rest of the body.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if overflowConn(r.Context()) {
			if r.URL.Path != "/api/system/health" {
				refuseOverflow(w, r)
				return
			}
			// Answered, but the overflow slot is not kept for more.
			w.Header().Set("Connection", "close")
		}
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		b := &deadlineBody{
			src:     r.Body,
			rc:      rc,
			start:   time.Now(),
			grace:   s.opts.BodyReadTimeout,
			minRate: s.opts.BodyMinRate,
		}
		b.extend(0)
		r.Body = b
		next.ServeHTTP(&closeOnEarlyError{ResponseWriter: w, ctx: r.Context(), body: b, rc: rc}, r)
	})
}

// refuseOverflow answers a request that arrived on a connection over the
// cap: 503 at once, without reading a body, and the connection closes.
func refuseOverflow(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		abandonBody(w)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", "1")
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"request_id":` + strconv.Quote(r.Header.Get(HeaderRequestID)) +
		`,"code":"unavailable","message":"this node is at its connection limit (api.max_connections); retry"}`))
}

// deadlineBody is a request body whose read deadline moves with progress.
type deadlineBody struct {
	src     io.ReadCloser
	rc      *http.ResponseController
	start   time.Time
	grace   time.Duration
	minRate int64

	mu   sync.Mutex
	read int64
	done bool // EOF (or an error) seen: the deadline is cleared
}

// extend sets the deadline for n bytes received so far.
func (b *deadlineBody) extend(n int64) {
	d := b.grace
	if b.minRate > 0 {
		d += time.Duration(float64(n) / float64(b.minRate) * float64(time.Second))
	}
	_ = b.rc.SetReadDeadline(b.start.Add(d))
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.read += int64(n)
	switch {
	case b.done:
	case errors.Is(err, io.EOF):
		// The body is complete: the connection's next reads are
		// net/http's own (the next request, or noticing a hang-up).
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil:
		b.done = true
	case n > 0:
		b.extend(b.read)
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.src.Close() }

// complete reports whether the whole body was read.
func (b *deadlineBody) complete() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// closeOnEarlyError: when a response of 400 or more starts before the body
// was read (a 401 decided from the headers, a 413, a 503), the connection
// closes after the response instead of net/http reading up to 256 KiB of the
// body first, which a slow client would stretch to the body deadline.
type closeOnEarlyError struct {
	http.ResponseWriter
	ctx  context.Context
	body *deadlineBody
	rc   *http.ResponseController
	once sync.Once
}

func (w *closeOnEarlyError) WriteHeader(code int) {
	w.once.Do(func() {
		if code >= 400 && !w.body.complete() {
			w.Header().Set("Connection", "close")
			// Whatever reads the rest of the body after the response
			// fails at once.
			_ = w.rc.SetReadDeadline(time.Now())
			abandonBody(w.ResponseWriter)
			closing(w.ctx)
		}
	})
	w.ResponseWriter.WriteHeader(code)
}

// abandonBody tells net/http that the rest of the request body will not be
// read, through the hook http.MaxBytesReader uses when a body exceeds its
// limit (w must be net/http's own ResponseWriter). net/http then closes the
// connection the careful way: the response, a FIN, and half a second for
// the client to read them before the socket closes. A plain close with body
// bytes still unread makes the kernel send a reset at once, which can destroy
// the response in the client's receive buffer: the client would see
// "connection reset by peer" instead of its 401 or 413.
func abandonBody(w http.ResponseWriter) {
	_, _ = http.MaxBytesReader(w, io.NopCloser(oneByte{}), 0).Read(make([]byte, 1))
}

// oneByte is an endless source of zero bytes (abandonBody's trigger).
type oneByte struct{}

func (oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = 0
	return 1, nil
}

func (w *closeOnEarlyError) Write(p []byte) (int, error) {
	w.once.Do(func() {}) // a 200 started implicitly
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *closeOnEarlyError) Unwrap() http.ResponseWriter { return w.ResponseWriter }
