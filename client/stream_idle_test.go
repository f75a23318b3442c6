package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// frozenFirst serves its first connection as a node that freezes (SIGSTOP,
// a partition): a greeting announcing a 100 ms keep-alive, some of the
// stream, then silence without a close. Later connections serve rest.
func frozenFirst(conns *atomic.Int32, first, rest func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		if conns.Add(1) == 1 {
			first(w, r)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		rest(w, r)
	}
}

// TestLogStreamLeavesASilentNode: a node that stops sending (not even
// keep-alives) for three of the intervals its greeting announced is
// treated as a cut, and the stream resumes elsewhere with every byte.
func TestLogStreamLeavesASilentNode(t *testing.T) {
	const log = "first part\nsecond part\n"
	var conns atomic.Int32
	piece := func(w http.ResponseWriter, from, to int) {
		fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", to, base64.StdEncoding.EncodeToString([]byte(log[from:to])))
	}
	ts := httptest.NewServer(frozenFirst(&conns, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, ": connected to n1 at byte 0; keep-alive 100ms\n\n")
		piece(w, 0, 11)
	}, func(w http.ResponseWriter, r *http.Request) {
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		fmt.Fprintf(w, ": connected to n2 at byte %d; keep-alive 100ms\n\n", offset)
		piece(w, offset, len(log))
		fmt.Fprintf(w, "id: %d\nevent: end\ndata: {}\n\n", len(log))
	}))
	defer ts.Close()
	var notes []Resume
	rc := followTaskLogs(t, ts.URL, WithRetryFor(10*time.Second), WithResumeNotice(func(r Resume) { notes = append(notes, r) }))
	type result struct {
		got []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := io.ReadAll(rc)
		done <- result{got, err}
	}()
	select {
	case r := <-done:
		if r.err != nil || string(r.got) != log {
			t.Fatalf("got %q, %v; want the whole log", r.got, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream still waits on a node that went silent")
	}
	if len(notes) != 1 || notes[0].Offset != 11 || !strings.Contains(fmt.Sprint(notes[0].Cause), "sent nothing") {
		t.Fatalf("notices %+v; want one resume from byte 11 saying the node went silent", notes)
	}
}

// TestEventStreamLeavesASilentNode: the same for the event stream.
func TestEventStreamLeavesASilentNode(t *testing.T) {
	var conns atomic.Int32
	event := func(w http.ResponseWriter, id int) {
		fmt.Fprintf(w, "id: %d\nevent: k\ndata: {\"id\":%d,\"kind\":\"k\"}\n\n", id, id)
	}
	ts := httptest.NewServer(frozenFirst(&conns, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, ": connected to n1; keep-alive 100ms\nid: 0\n\n")
		event(w, 1)
		event(w, 2)
	}, func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		fmt.Fprintf(w, ": connected to n2; keep-alive 100ms\nid: %d\n\n", after)
		for id := after + 1; id <= 4; id++ {
			event(w, id)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	var notes []Resume
	c, err := New([]string{ts.URL}, WithRetryFor(10*time.Second), WithResumeNotice(func(r Resume) { notes = append(notes, r) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ids []uint64
	err = c.StreamEvents(ctx, true, func(e *model.Event) error {
		ids = append(ids, e.ID)
		if e.ID == 4 {
			cancel()
		}
		return nil
	})
	if err != nil || fmt.Sprint(ids) != "[1 2 3 4]" {
		t.Fatalf("events %v, %v; want 1..4 across the silent node", ids, err)
	}
	if len(notes) != 1 || notes[0].EventID != 2 || !strings.Contains(fmt.Sprint(notes[0].Cause), "sent nothing") {
		t.Fatalf("notices %+v; want one resume after event 2 saying the node went silent", notes)
	}
}
