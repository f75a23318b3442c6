package extension

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// RecordSkippedTicks sends the ticks oldest first in batches of at most
// MaxSkippedTicksPerCall, the range end only with the last batch, to the
// subscription's skipped-ticks route with the extension's token.
func TestRecordSkippedTicksBatches(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []map[string]any
		paths  []string
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var b map[string]any
		if err := json.Unmarshal(data, &b); err != nil || r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+testSecret {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		bodies, paths = append(bodies, b), append(paths, r.URL.EscapedPath())
		mu.Unlock()
		w.Write([]byte(`{"recorded":1,"watermark":1}`))
	}))
	t.Cleanup(ts.Close)
	c := NewClient(testConfig(ts.URL), fastRetry())
	var ticks []time.Time
	for i := MaxSkippedTicksPerCall + 20; i > 0; i-- { // newest first: the client sorts
		ticks = append(ticks, time.Unix(int64(1000+i), 0))
	}
	through := time.Unix(5000, 0)
	if err := c.RecordSkippedTicks(context.Background(), "ns", "p", "every", SkippedTicks{Ticks: ticks, Through: through, Reason: "why"}); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 2 {
		t.Fatalf("%d requests, want 2", len(bodies))
	}
	for _, p := range paths {
		if p != "/api/namespaces/ns/pipelines/p/subscriptions/interval/every/skipped-ticks" {
			t.Fatalf("path %s", p)
		}
	}
	first, second := bodies[0]["ticks"].([]any), bodies[1]["ticks"].([]any)
	if len(first) != MaxSkippedTicksPerCall || len(second) != 20 || first[0].(float64) != 1001 || second[19].(float64) != float64(1000+MaxSkippedTicksPerCall+20) {
		t.Fatalf("batches %d %d starting %v", len(first), len(second), first[0])
	}
	if _, ok := bodies[0]["through"]; ok || bodies[1]["through"].(float64) != 5000 || bodies[1]["reason"] != "why" {
		t.Fatalf("through/reason: %v / %v", bodies[0], bodies[1])
	}
	// Only a range: one request with no ticks.
	bodies = nil
	if err := c.RecordSkippedTicks(context.Background(), "ns", "p", "every", SkippedTicks{Through: through}); err != nil || len(bodies) != 1 {
		t.Fatalf("range only: %v, %d requests", err, len(bodies))
	}
	// Nothing: no request.
	bodies = nil
	if err := c.RecordSkippedTicks(context.Background(), "ns", "p", "every", SkippedTicks{}); err != nil || len(bodies) != 0 {
		t.Fatalf("nothing: %v, %d requests", err, len(bodies))
	}
}
