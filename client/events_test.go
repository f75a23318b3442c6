package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// TestEventStreamGreetingAloneIsNoProgress: a node that greets (its
// cursor, nothing past it) and closes, again and again, does not renew
// the retry window: the stream ends with ErrStreamCut once it is spent.
func TestEventStreamGreetingAloneIsNoProgress(t *testing.T) {
	var conns atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		if conns.Add(1) == 1 {
			fmt.Fprint(w, ": connected to n1\nid: 0\n\nid: 1\nevent: k\ndata: {\"id\":1,\"kind\":\"k\"}\n\n")
			return
		}
		fmt.Fprint(w, ": connected to n1\nid: 1\n\n")
	}))
	defer ts.Close()
	c, err := New([]string{ts.URL}, WithRetryFor(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = c.StreamEvents(ctx, true, func(*model.Event) error { return nil })
	if !errors.Is(err, ErrStreamCut) || !strings.Contains(err.Error(), "after event 1") {
		t.Fatalf("StreamEvents ended with %v after %d connections; want ErrStreamCut after event 1 once the window is spent", err, conns.Load())
	}
}

// TestEventStreamResumesFromCursorZero: on an empty cluster the stream's
// cursor is 0; a reconnect resumes after it (?after=0), not from the
// newest event, which would skip what happened between.
func TestEventStreamResumesFromCursorZero(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	var conns atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		if conns.Add(1) == 1 {
			fmt.Fprint(w, ": connected to n1\nid: 0\n\n")
			cutConn(w)
		}
		fmt.Fprint(w, ": connected to n2\nid: 0\n\nid: 1\nevent: k\ndata: {\"id\":1,\"kind\":\"k\"}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	c, err := New([]string{ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.StreamEvents(ctx, false, func(e *model.Event) error {
		cancel()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) != 2 || queries[1] != "after=0" {
		t.Fatalf("queries %q; want the reconnect to resume after event 0", queries)
	}
}
