package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	c, err := New([]string{ts.URL}, WithRetryFor(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.TaskLogs(context.Background(), "p", 1, "t", true)
	if err != nil {
		t.Fatal(err)
	}
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
