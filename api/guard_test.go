package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// guardServer serves h behind the guard (and, when max > 0, the connection
// cap) on a loopback port, as Serve does.
func guardServer(t *testing.T, opts Options, max int, h http.Handler) (addr string, l *connLimiter) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{opts: opts}
	srv := &http.Server{Handler: s.guard(h), ReadHeaderTimeout: 10 * time.Second}
	var serveLn net.Listener = ln
	if max > 0 {
		l = newConnLimiter(ln, max, hclog.NewNullLogger())
		srv.ConnState, srv.ConnContext = l.connState, l.connContext
		serveLn = l
	}
	go func() { _ = srv.Serve(serveLn) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), l
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A body that stops arriving is cut off at the body deadline; one that
// keeps the minimum rate may take longer than the fixed grace.
func TestGuardBodyDeadline(t *testing.T) {
	type result struct {
		n   int
		err error
		// at is when the read ended; the deadline is set in the guard,
		// before the handler runs, so the test measures from before it
		// sent the request.
		at time.Time
	}
	results := make(chan result, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		results <- result{len(b), err, time.Now()}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	// A second of grace: a loaded CI machine may stall a writer for a few
	// hundred milliseconds, which must not cut the steady body below.
	const grace = time.Second
	addr, _ := guardServer(t, Options{BodyReadTimeout: grace, BodyMinRate: 1000}, 0, h)

	t.Run("stalled body is cut off", func(t *testing.T) {
		c := dial(t, addr)
		sent := time.Now()
		fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
		select {
		case r := <-results:
			if r.err == nil || !strings.Contains(r.err.Error(), "timeout") {
				t.Fatalf("read %d bytes, err %v: want a read timeout", r.n, r.err)
			}
			// 10 bytes at 1000 B/s extend the grace by 10 ms. The
			// guard starts the clock after the request was sent, so
			// this can only overstate the time taken.
			if at := r.at.Sub(sent); at < grace {
				t.Errorf("cut off after %s, before the %s grace", at, grace)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a stalled body was still being read after 5 s")
		}
		// The connection is closed, not kept for another request.
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("connection not closed after the cut-off: %v", err)
		}
	})

	t.Run("steady body above the minimum rate completes", func(t *testing.T) {
		c := dial(t, addr)
		const chunks, size = 40, 100 // 4000 B over ~2 s: twice the minimum rate, past the grace
		fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", chunks*size)
		for i := 0; i < chunks; i++ {
			if _, err := c.Write([]byte(strings.Repeat("x", size))); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		r := <-results
		if r.err != nil || r.n != chunks*size {
			t.Fatalf("read %d bytes, err %v; want all %d", r.n, r.err, chunks*size)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("response %v %v", resp, err)
		}
	})
}

// An error answered before the body was read (a 401 from the headers)
// goes out at once and the connection closes; the slow body is not waited
// for.
func TestGuardEarlyErrorClosesConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})
	addr, _ := guardServer(t, Options{BodyReadTimeout: time.Minute, BodyMinRate: 1}, 0, h)
	c := dial(t, addr)
	start := time.Now()
	fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n01234")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("response %v %v", resp, err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("connection not closed: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("401 and close took %s: the server waited for the body", d)
	}
}

// At the cap, a new connection replaces the oldest idle one; when none is
// idle it may only ask for health, and other requests get a fast 503.
func TestConnLimiter(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	})
	addr, l := guardServer(t, Options{BodyReadTimeout: time.Minute, BodyMinRate: 1}, 2, h)
	waitOpen := func(normal, lane int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, ln := l.open()
			if n == normal && ln == lane {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("open connections %d normal + %d overflow, want %d + %d", n, ln, normal, lane)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	get := func(c net.Conn, path string) *http.Response {
		t.Helper()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp
	}

	// Two connections that send nothing fill the cap; a third sheds the
	// oldest and is served normally.
	idle1 := dial(t, addr)
	time.Sleep(20 * time.Millisecond)
	idle2 := dial(t, addr)
	waitOpen(2, 0)
	third := dial(t, addr)
	if resp := get(third, "/api/namespaces"); resp.StatusCode != 200 {
		t.Fatalf("third connection: %d, want 200 after shedding an idle one", resp.StatusCode)
	}
	_ = idle1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle1.Read(make([]byte, 1)); err == nil {
		t.Fatal("the oldest idle connection was not closed")
	}
	third.Close()
	idle2.Close()
	waitOpen(0, 0)

	// Two connections in the middle of a request hold both slots. Each
	// is dialled once the one before is active: a connection whose
	// request the server has not read yet counts as idle and may be shed
	// (on a loaded machine that would shed the first slow request).
	active := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		n := 0
		for c := range l.normal {
			if c.state == http.StateActive {
				n++
			}
		}
		return n
	}
	for i := 1; i <= 2; i++ {
		c := dial(t, addr)
		fmt.Fprintf(c, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0")
		deadline := time.Now().Add(10 * time.Second)
		for active() < i {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d slow requests became active", active(), i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitOpen(2, 0)
	over := dial(t, addr)
	if resp := get(over, "/api/system/health"); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("health over the cap: %d close=%v, want 200 and the overflow slot released", resp.StatusCode, resp.Close)
	}
	over2 := dial(t, addr)
	resp := get(over2, "/api/namespaces")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Fatalf("a request over the cap: %d %v close=%v; want 503 with Retry-After, closing", resp.StatusCode, resp.Header, resp.Close)
	}
}

// pipeListener hands out one end of in-memory pipes.
type pipeListener struct{ conns chan net.Conn }

func (p pipeListener) Accept() (net.Conn, error) { return <-p.conns, nil }
func (p pipeListener) Close() error              { return nil }
func (p pipeListener) Addr() net.Addr            { return &net.TCPAddr{} }

// The connection shed at the cap is the one idle longest, in the order
// connections became idle (the idle list), never one with a request in
// progress; the list holds exactly the idle normal connections.
func TestConnLimiterIdleOrder(t *testing.T) {
	pl := pipeListener{conns: make(chan net.Conn, 1)}
	l := newConnLimiter(pl, 3, hclog.NewNullLogger())
	accept := func() (*limitedConn, net.Conn) {
		t.Helper()
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		pl.conns <- a
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c.(*limitedConn), b
	}
	checkIdle := func(want ...*limitedConn) {
		t.Helper()
		l.mu.Lock()
		defer l.mu.Unlock()
		var got []*limitedConn
		for e := l.idle.Front(); e != nil; e = e.Next() {
			got = append(got, e.Value.(*limitedConn))
		}
		if len(got) != len(want) {
			t.Fatalf("idle list has %d connections, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("idle list position %d is not the expected connection", i)
			}
		}
	}
	a, _ := accept()
	b, _ := accept()
	c, cPeer := accept()
	checkIdle(a, b, c)
	l.connState(a, http.StateActive)
	l.connState(b, http.StateActive)
	checkIdle(c)
	l.connState(a, http.StateIdle)
	checkIdle(c, a)

	d, _ := accept() // at the cap: sheds c, idle longest
	_ = cPeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := cPeer.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the connection idle longest was not closed: %v", err)
	}
	checkIdle(a, d)
	if n, lane := l.open(); n != 3 || lane != 0 {
		t.Fatalf("open %d + %d, want 3 + 0", n, lane)
	}

	l.connState(a, http.StateActive)
	l.connState(d, http.StateActive)
	checkIdle()
	e, _ := accept() // every slot busy: the overflow lane
	if !e.overflow {
		t.Fatal("a connection over the cap with none idle was admitted as normal")
	}
	checkIdle()
	_ = d.Close()
	l.connState(d, http.StateClosed)
	checkIdle()
	l.connState(b, http.StateIdle)
	checkIdle(b)
	// A request refused before its body was read: its connection only
	// lingers for the client to read the answer, and goes first.
	closing(l.connContext(context.Background(), a))
	checkIdle(a, b)
}

// An error answered before a large body was read reaches the client: the
// node closes the connection only after the client had time to read the
// answer, not with the body unread (which sends a reset that can destroy
// the answer in the client's receive buffer: "connection reset by peer"
// instead of the 413). Checked many times, since a reset is a race.
func TestGuardEarlyErrorReachesClient(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = w.Write([]byte(`{"code":"payload_too_large"}`))
	})
	big := strings.Repeat("x", 600<<10)
	// Without and with the connection cap (its connections must pass on
	// the FIN); the cap is above what the loop holds at once (each closed
	// connection lingers for half a second on the server).
	for _, max := range []int{0, 1000} {
		addr, _ := guardServer(t, Options{BodyReadTimeout: time.Minute, BodyMinRate: 1}, max, h)
		for _, chunked := range []bool{false, true} {
			failed := 0
			var last error
			for i := 0; i < 150; i++ {
				var body io.Reader = strings.NewReader(big)
				if chunked {
					body = io.MultiReader(body) // unknown length: chunked
				}
				resp, err := http.Post("http://"+addr+"/x", "application/json", body)
				if err != nil {
					failed++
					last = err
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge {
					t.Fatalf("status %d, want 413", resp.StatusCode)
				}
			}
			if failed > 0 {
				t.Errorf("connection cap %d, chunked %v: %d of 150 clients got no 413 (last: %v)", max, chunked, failed, last)
			}
		}
	}
}
