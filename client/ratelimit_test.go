package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// A 429 is retried after its Retry-After when that fits in the call's
// retry budget, and is the answer at once when it does not.
func TestRateLimitedHonoursRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var seen []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, time.Now())
		n := len(seen)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"request_id":"r","code":"rate_limited","message":"too many requests"}`))
			return
		}
		_, _ = w.Write([]byte(`{"namespaces":[]}`))
	}))
	defer srv.Close()

	c, err := New([]string{srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListNamespaces(context.Background(), Page{}); err != nil {
		t.Fatalf("call limited once: %v; want it retried after Retry-After", err)
	}
	mu.Lock()
	if len(seen) != 2 || seen[1].Sub(seen[0]) < time.Second {
		t.Fatalf("attempts at %v; want 2, the second at least Retry-After (1 s) after the first", seen)
	}
	seen = nil
	mu.Unlock()

	short, _ := New([]string{srv.URL}, WithRetryFor(200*time.Millisecond))
	_, err = short.ListNamespaces(context.Background(), Page{})
	var apiErr *Error
	var ce *CallError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests || apiErr.RetryAfter != time.Second ||
		!errors.As(err, &ce) || ce.Attempts != 1 {
		t.Fatalf("call limited with a 200ms budget: %v; want the 429 (Retry-After 1s) after one attempt", err)
	}
}
