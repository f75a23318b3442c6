package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/goferhq/gofer/agent"
)

// TestNodeMetricsListener: a real node with [metrics] access = "listener"
// serves its registry on the listener without a token — raft's state and
// term from this node's raft, raft's own go-metrics bridged in, the
// state's queue depths, the FSM's applies — and not on the API (404).
func TestNodeMetricsListener(t *testing.T) {
	cl, url, a := devAgent(t, func(c *agent.Config) {
		c.Metrics.Access = "listener"
		c.Metrics.Listen = "127.0.0.1:0"
	})
	if _, err := cl.CreateNamespace(context.Background(), "scraped", "Scraped", ""); err != nil {
		t.Fatal(err)
	}
	resp, err := get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("API /metrics with access=listener: %d, want 404", resp.StatusCode)
	}
	resp, err = http.Get("http://" + a.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("listener /metrics: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`gofer_raft_state{state="leader"} 1`,
		`gofer_raft_state{state="follower"} 0`,
		"gofer_raft_term ",
		"gofer_raft_commit_index ",
		"gofer_raft_commitTime_count ", // raft's own go-metrics, bridged
		"gofer_raft_fsm_applyBatch_count ",
		`gofer_queue_runs{state="pending"} 0`,
		`gofer_fsm_apply_duration_seconds_count{command="namespace_create"} 1`,
		`gofer_api_requests_total{code="201",method="POST",route="/api/namespaces"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)

		}
	}
}
