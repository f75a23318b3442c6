package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// numberedLines is a log of n numbered lines.
func numberedLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %04d\n", i)
	}
	return b.String()
}

// cutConn ends the response without the end of its chunked body, as a
// node that dies mid-stream does.
func cutConn(w http.ResponseWriter) {
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

// framedLogServer serves log in the API's framed form from ?offset, in
// 7-byte pieces. Each connection behaves as plan[n] says (the last entry
// repeats): "cut:K" cuts after K pieces, "torn:K" cuts in the middle of
// piece K+1, "close:K" ends cleanly after K pieces without an end event,
// "quiet:K" sends K keep-alives and cuts, "full" sends the rest and `end`.
type framedLogServer struct {
	log     string
	plan    []string
	conns   atomic.Int32
	mu      sync.Mutex
	offsets []int64
}

func (s *framedLogServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		http.Error(w, "framed only", http.StatusBadRequest)
		return
	}
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	s.mu.Lock()
	s.offsets = append(s.offsets, int64(offset))
	s.mu.Unlock()
	n := int(s.conns.Add(1)) - 1
	step := s.plan[min(n, len(s.plan)-1)]
	mode, arg, _ := strings.Cut(step, ":")
	k, _ := strconv.Atoi(arg)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Gofer-Index", "7")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": connected at byte %d\n\n", offset)
	pos, sent := offset, 0
	piece := func() bool {
		if pos >= len(s.log) {
			return false
		}
		end := min(pos+7, len(s.log))
		fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", end, base64.StdEncoding.EncodeToString([]byte(s.log[pos:end])))
		pos = end
		sent++
		return true
	}
	switch mode {
	case "cut":
		for sent < k && piece() {
		}
		cutConn(w)
	case "torn":
		for sent < k && piece() {
		}
		fmt.Fprintf(w, "id: %d\nevent: log\nda", pos+7)
		cutConn(w)
	case "close":
		for sent < k && piece() {
		}
	case "quiet":
		for range k {
			fmt.Fprint(w, ": keep-alive\n\n")
		}
		cutConn(w)
	case "full":
		for piece() {
		}
		fmt.Fprintf(w, "id: %d\nevent: end\ndata: {\"offset\":%d,\"complete\":true}\n\n", pos, pos)
	}
}

// TestTaskLogsResumeAfterCuts: a log stream cut in every way a dying node
// or a proxy cuts one (between events, in the middle of one, right after
// the headers, a clean close without the end event) reads every byte once
// and in order, resuming from the byte reached, with one notice a resume.
func TestTaskLogsResumeAfterCuts(t *testing.T) {
	testLogsResumeAfterCuts(t, func(c *Client) (io.ReadCloser, error) { return c.TaskLogs(context.Background(), "p", 1, "t", true) })
}

// TestExtensionLogsResumeAfterCuts: the same for an extension's output.
func TestExtensionLogsResumeAfterCuts(t *testing.T) {
	testLogsResumeAfterCuts(t, func(c *Client) (io.ReadCloser, error) { return c.ExtensionLogs(context.Background(), "ext1", true) })
}

// followTaskLogs follows task t of run p/1 through a client of url made
// with opts; the stream is closed when the test ends.
func followTaskLogs(t *testing.T, url string, opts ...Option) io.ReadCloser {
	t.Helper()
	c, err := New([]string{url}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.TaskLogs(context.Background(), "p", 1, "t", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc
}

func testLogsResumeAfterCuts(t *testing.T, open func(*Client) (io.ReadCloser, error)) {
	log := numberedLines(40)
	srv := &framedLogServer{log: log, plan: []string{"cut:3", "torn:2", "cut:0", "close:5", "quiet:2", "cut:4", "full"}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var notes []Resume
	c, err := New([]string{ts.URL}, WithRetryFor(10*time.Second), WithResumeNotice(func(r Resume) { notes = append(notes, r) }))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := open(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read: %v (got %d bytes)", err, len(got))
	}
	if string(got) != log {
		t.Fatalf("log differs from the server's:\n got %q\nwant %q", got, log)
	}
	// Each connection resumes where the one before stopped.
	want := []int64{0, 21, 35, 35, 70, 70, 98}
	if fmt.Sprint(srv.offsets) != fmt.Sprint(want) {
		t.Fatalf("connections asked for offsets %v, want %v", srv.offsets, want)
	}
	if len(notes) != len(want)-1 {
		t.Fatalf("%d resume notices, want %d: %+v", len(notes), len(want)-1, notes)
	}
	for i, n := range notes {
		if n.Offset != want[i+1] || n.Events || n.Cause == nil || !strings.Contains(n.Position(), "from byte "+strconv.FormatInt(want[i+1], 10)) {
			t.Fatalf("notice %d = %+v (%s), want a resume from byte %d with its cause", i, n, n.Position(), want[i+1])
		}
	}
}

// TestTaskLogsGiveUpSaysHowFar: a stream whose every reconnect is cut
// again without progress ends, once the retry window is spent, with an
// error that wraps ErrStreamCut and names the bytes received.
func TestTaskLogsGiveUpSaysHowFar(t *testing.T) {
	srv := &framedLogServer{log: numberedLines(10), plan: []string{"cut:2", "cut:0"}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	rc := followTaskLogs(t, ts.URL, WithRetryFor(time.Second))
	got, err := io.ReadAll(rc)
	if !errors.Is(err, ErrStreamCut) || !strings.Contains(err.Error(), "after 14 bytes") {
		t.Fatalf("read ended with %v; want ErrStreamCut after 14 bytes", err)
	}
	if string(got) != numberedLines(10)[:14] {
		t.Fatalf("got %q before the cut", got)
	}
}

// TestTaskLogsPlainServer: a server that answers without framing (an
// older node) still serves the log, passed through as it is.
func TestTaskLogsPlainServer(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "hello\n")
	}))
	defer ts.Close()
	c, err := New([]string{ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.TaskLogs(context.Background(), "p", 1, "t", false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || string(got) != "hello\n" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// eventServer serves events 1..total as the API does (an id-only event
// naming its cursor first, ?after to resume, ?history to replay), cutting
// each connection after perConn events.
type eventServer struct {
	total, perConn int
	mu             sync.Mutex
	afters         []string
}

func (s *eventServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	s.mu.Lock()
	s.afters = append(s.afters, r.URL.Query().Get("after"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": connected\nid: %d\n\n", after)
	for id := after + 1; id <= s.total && id <= after+s.perConn; id++ {
		fmt.Fprintf(w, "id: %d\nevent: k\ndata: {\"id\":%d,\"kind\":\"k\"}\n\n", id, id)
	}
	if after+s.perConn < s.total {
		cutConn(w)
	}
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// TestStreamEventsResumeAfterCuts: every event id once, in order, across
// cut connections, each reconnect resuming after the last event delivered.
func TestStreamEventsResumeAfterCuts(t *testing.T) {
	srv := &eventServer{total: 20, perConn: 6}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var notes []Resume
	c, err := New([]string{ts.URL}, WithResumeNotice(func(r Resume) { notes = append(notes, r) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var ids []uint64
	err = c.StreamEvents(ctx, true, func(e *model.Event) error {
		ids = append(ids, e.ID)
		if e.ID == 20 {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if id != uint64(i+1) {
			t.Fatalf("events %v; want 1..20 once each, in order", ids)
		}
	}
	if len(ids) != 20 {
		t.Fatalf("events %v; want 1..20", ids)
	}
	if want := "[ 6 12 18]"; fmt.Sprint(srv.afters) != want {
		t.Fatalf("connections resumed after %v, want %s", srv.afters, want)
	}
	if len(notes) != 3 || notes[0].EventID != 6 || !notes[0].Events || notes[0].Position() != "after event 6" {
		t.Fatalf("notices %+v; want 3, the first after event 6", notes)
	}
}
