package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// scrapeMetrics GETs a node's /metrics with token ("" for none).
func scrapeMetrics(n *Node, token string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, n.URL+"/metrics", nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// missingSeries lists the wanted lines (prefixes of a sample line) that
// body lacks.
func missingSeries(body string, want []string) []string {
	var missing []string
	for _, w := range want {
		if !strings.Contains(body, "\n"+w) {
			missing = append(missing, w)
		}
	}
	return missing
}

// TestMetricsCluster scrapes a real 3-node cluster after a run: the
// leader and a follower each serve their own raft state and term, raft's
// own go-metrics (bridged), the run and its task execution counted by
// status as each node applied them, per-command apply times, and the API
// requests by route template; without a token the default access refuses.
func TestMetricsCluster(t *testing.T) {
	rc := runsNewCluster(t, 3)
	const p = "metrics-run"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "metrics", Tasks: []*sdk.TaskConfig{runsSh("hello", "echo hello")}})
	run := rc.start(t, p, nil)
	if r := rc.wait(t, p, run.RunID, 2*time.Minute); r.Status != model.RunStatusSuccessful {
		t.Fatalf("run ended %s: %s", r.Status, rc.describe(p, run.RunID))
	}
	leader := rc.Leader()
	follower := rc.Followers()[0]

	if code, body, err := scrapeMetrics(follower, ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("a scrape without a token: %d %v %.200s; want 401 (access = token by default)", code, err, body)
	}
	shared := []string{
		"gofer_raft_term ",
		"gofer_raft_commit_index ",
		"gofer_raft_applied_index ",
		`gofer_runs_finished_total{status="successful"} `,
		`gofer_task_executions_finished_total{status="successful"} `,
		`gofer_task_execution_duration_seconds_count{status="successful"} `,
		`gofer_fsm_apply_duration_seconds_count{command="run_create"} `,
		`gofer_fsm_apply_duration_seconds_count{command="task_finish"} `,
		"gofer_fsm_batch_size_count ",
		`gofer_queue_runs{state="pending"} `,
		"gofer_raft_boltdb_storeLogs_count ", // raft-boltdb's go-metrics
	}
	var scrapes []string
	for _, tc := range []struct {
		node *Node
		want []string
	}{
		{leader, append([]string{
			`gofer_raft_state{state="leader"} 1`,
			"gofer_raft_commitTime_count ", // raft's commit latency (leader)
			"gofer_raft_leader_dispatchLog_count ",
			`gofer_api_requests_total{code="201",method="POST",route="/api/namespaces/:ns/pipelines/:pipeline/runs"} `,
		}, shared...)},
		{follower, append([]string{
			`gofer_raft_state{state="follower"} 1`,
			"gofer_raft_rpc_appendEntries_count ", // raft's follower side
		}, shared...)},
	} {
		// A follower applies the run's last commands a moment after the
		// leader: wait until it has.
		WaitFor(t, 30*time.Second, func() error {
			code, body, err := scrapeMetrics(tc.node, rc.Token)
			if err != nil || code != http.StatusOK {
				return fmt.Errorf("scrape %s: %d %v", tc.node.Name, code, err)
			}
			if m := missingSeries(body, tc.want); len(m) > 0 {
				return fmt.Errorf("%s's scrape lacks %q", tc.node.Name, m)
			}
			scrapes = append(scrapes, body)
			return nil
		})
	}
	// Every series the shipped dashboard queries is real.
	checkDashboardSeries(t, scrapes...)
}
