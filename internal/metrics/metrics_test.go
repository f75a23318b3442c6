package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/goferhq/gofer/store/model"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, b)
	}
	return string(b)
}

// TestFSMObserverCountsOutcomes: only the commands that end a run or task
// execution count it, by status, with its duration from the state's
// timestamps; a retry (task back to waiting) and other commands returning
// complete records count nothing.
func TestFSMObserverCountsOutcomes(t *testing.T) {
	m := New()
	o := m.FSM()
	o.Batch(3)
	o.Command()("run_finish", &model.Run{State: model.RunStateComplete, Status: model.RunStatusSuccessful, Started: 1000, Ended: 4000})
	o.Command()("run_cancel", &model.Run{State: model.RunStateComplete, Status: model.RunStatusCancelled})
	o.Command()("task_finish", &model.TaskExecution{State: model.TaskStateComplete, Status: model.TaskStatusFailed,
		Attempts: []model.Attempt{{Started: 1000, Ended: 3000}}})
	o.Command()("task_finish", &model.TaskExecution{State: model.TaskStateWaiting})
	o.Command()("task_resolve", &model.TaskExecution{State: model.TaskStateComplete, Status: model.TaskStatusSkipped})
	o.Command()("task_log_append", &model.TaskExecution{State: model.TaskStateComplete, Status: model.TaskStatusSuccessful})
	body := scrape(t, m)
	for _, want := range []string{
		`gofer_runs_finished_total{status="successful"} 1`,
		`gofer_run_duration_seconds_sum{status="successful"} 3`,
		`gofer_task_executions_finished_total{status="failed"} 1`,
		`gofer_task_executions_finished_total{status="skipped"} 1`,
		`gofer_task_execution_duration_seconds_sum{status="failed"} 2`,
		`gofer_fsm_apply_duration_seconds_count{command="task_finish"} 2`,
		`gofer_fsm_batch_size_sum 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	for _, not := range []string{`status="cancelled"`, `gofer_task_executions_finished_total{status="successful"}`} {
		if strings.Contains(body, not) {
			t.Errorf("scrape has %s, which no ending command recorded", not)
		}
	}
}

// TestRegistriesAreSeparate: two nodes in one process keep their own
// series, and both carry the process-wide raft bridge without colliding.
func TestRegistriesAreSeparate(t *testing.T) {
	a, b := New(), New()
	a.ObserveRequest("/api/namespaces", "GET", 200, 0)
	a.ObserveSchedulerError("docker", "start", "unavailable")
	a.ObserveTriggerLateness("cron", 0)
	if body := scrape(t, b); strings.Contains(body, "gofer_api_requests_total{") || strings.Contains(body, "gofer_scheduler_errors_total{") {
		t.Fatalf("node b shows node a's series:\n%s", body)
	}
	body := scrape(t, a)
	for _, want := range []string{
		`gofer_api_requests_total{code="200",method="GET",route="/api/namespaces"} 1`,
		`gofer_scheduler_errors_total{backend="docker",kind="unavailable",op="start"} 1`,
		`gofer_trigger_lateness_seconds_count{trigger="cron"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

// TestNilMetricsIsInert: components built without metrics call methods on
// a nil *Metrics.
func TestNilMetricsIsInert(t *testing.T) {
	var m *Metrics
	m.ObserveRequest("r", "GET", 200, 0)
	m.ObserveSchedulerError("docker", "start", "other")
	m.ObserveTriggerLateness("cron", 0)
	m.FSM().Batch(1)
	m.FSM().Command()("x", nil)
	m.RegisterRaft(nil)
	m.MustRegister()
}
