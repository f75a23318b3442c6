package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLogStreamCloseWhileReading: Close from another goroutine while Read
// is blocked on a quiet stream ends that Read, releases the connection
// (the server sees its request end) and never reconnects. Run with -race:
// Close must not touch what Read owns.
func TestLogStreamCloseWhileReading(t *testing.T) {
	var conns atomic.Int32
	released := make(chan struct{}, 4)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, ": connected to n1 at byte 0\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		released <- struct{}{}
	}))
	defer ts.Close()
	rc := followTaskLogs(t, ts.URL, WithRetryFor(10*time.Second))
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(rc)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	rc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, errStreamClosed) {
			t.Fatalf("the blocked read ended with %v; want the stream closed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the blocked Read")
	}
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's request did not end: Close left the connection open")
	}
	// A reconnect would show up as a second request.
	time.Sleep(500 * time.Millisecond)
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections; a closed stream must not reconnect", n)
	}
	if _, err := rc.Read(make([]byte, 1)); !errors.Is(err, errStreamClosed) {
		t.Fatalf("Read after Close: %v; want the stream closed", err)
	}
}

// TestLogStreamResumedAtItsEndStops: a stream cut just before its `end`
// resumes at the log's end, where the server answers 204 (nothing left):
// that is the end, not an error.
func TestLogStreamResumedAtItsEndStops(t *testing.T) {
	const log = "all of it\n"
	var conns atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conns.Add(1) > 1 {
			if r.URL.Query().Get("offset") != fmt.Sprint(len(log)) {
				http.Error(w, "wrong offset "+r.URL.RawQuery, http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, ": connected to n1 at byte 0\n\nid: %d\nevent: log\ndata: %s\n\n", len(log), base64.StdEncoding.EncodeToString([]byte(log)))
		cutConn(w)
	}))
	defer ts.Close()
	rc := followTaskLogs(t, ts.URL, WithRetryFor(5*time.Second))
	if got, err := io.ReadAll(rc); err != nil || string(got) != log {
		t.Fatalf("got %q, %v; want the log and a clean end", got, err)
	}
}

// TestLogStreamRetriesAPlainAnswerToAResume: in a rolling upgrade an
// older node (plain form only) may answer a resume; that is one more cut,
// retried within the window, and a node that frames serves the rest.
func TestLogStreamRetriesAPlainAnswerToAResume(t *testing.T) {
	log := numberedLines(20)
	framed := &framedLogServer{log: log, plan: []string{"cut:3", "full"}}
	var conns atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conns.Add(1) == 2 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, log)
			return
		}
		framed.ServeHTTP(w, r)
	}))
	defer ts.Close()
	rc := followTaskLogs(t, ts.URL, WithRetryFor(5*time.Second))
	if got, err := io.ReadAll(rc); err != nil || string(got) != log {
		t.Fatalf("got %q, %v; want the whole log, once", got, err)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3 (the plain answer retried)", n)
	}
}

// TestExtensionLogsStopWhenTheContainerWasReplaced: an extension's
// container recreated (same name) while the stream was cut has output of
// its own, in which the offset means nothing; the stream ends with an
// error saying so instead of silently skipping the new output's start.
func TestExtensionLogsStopWhenTheContainerWasReplaced(t *testing.T) {
	log := numberedLines(10)
	framed := &framedLogServer{log: log, plan: []string{"cut:2", "full"}}
	var conns atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := "aaaaaaaaaaaaaaaa1"
		if conns.Add(1) > 1 {
			id = "bbbbbbbbbbbbbbbb2"
		}
		w.Header().Set("X-Gofer-Container-Id", id)
		framed.ServeHTTP(w, r)
	}))
	defer ts.Close()
	c, err := New([]string{ts.URL}, WithRetryFor(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.ExtensionLogs(context.Background(), "ext1", true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if !errors.Is(err, errContainerReplaced) || !strings.Contains(err.Error(), "aaaaaaaaaaaa was replaced by bbbbbbbbbbbb") {
		t.Fatalf("read ended with %v; want an error saying the container was replaced", err)
	}
	if string(got) != log[:14] {
		t.Fatalf("got %q before the replacement, want the first container's %q", got, log[:14])
	}
}
