package agent

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/goferhq/gofer/internal/metrics"
	"github.com/goferhq/gofer/scheduler"
)

// failingScheduler answers Start and Inspect with a set error.
type failingScheduler struct {
	scheduler.Scheduler
	err error
}

func (f failingScheduler) Start(context.Context, scheduler.StartRequest) error { return f.err }
func (f failingScheduler) Inspect(context.Context, string) (scheduler.Status, error) {
	return scheduler.Status{}, f.err
}

// TestSchedulerErrorsCounted: the executor's scheduler counts errors by
// backend, operation and kind; a cancelled call (leadership lost) and a
// success count nothing.
func TestSchedulerErrorsCounted(t *testing.T) {
	m := metrics.New()
	for _, err := range []error{
		fmt.Errorf("dial: %w", scheduler.ErrUnavailable),
		fmt.Errorf("bad: %w", scheduler.ErrInvalid),
		fmt.Errorf("pull: %w", scheduler.ErrImageNotFound),
		fmt.Errorf("stop: %w", context.Canceled),
		nil,
	} {
		s := countedScheduler{Scheduler: failingScheduler{err: err}, backend: "docker", m: m}
		if got := s.Start(context.Background(), scheduler.StartRequest{}); got != err {
			t.Fatalf("Start returned %v, want the backend's %v unchanged", got, err)
		}
	}
	s := countedScheduler{Scheduler: failingScheduler{err: fmt.Errorf("x: %w", scheduler.ErrUnavailable)}, backend: "nomad", m: m}
	s.Inspect(context.Background(), "c")

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Result().Body)
	body := string(b)
	for _, want := range []string{
		`gofer_scheduler_errors_total{backend="docker",kind="unavailable",op="start"} 1`,
		`gofer_scheduler_errors_total{backend="docker",kind="invalid",op="start"} 1`,
		`gofer_scheduler_errors_total{backend="docker",kind="image_not_found",op="start"} 1`,
		`gofer_scheduler_errors_total{backend="nomad",kind="unavailable",op="inspect"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(body, `kind="other"`) {
		t.Errorf("a cancelled call was counted:\n%s", body)
	}
}

// TestExecutorSchedulerKeepsStreamLogger: the executor finds a backend's
// separate output streams by a type assertion on the scheduler it gets,
// so the counting wrapper must keep scheduler.StreamLogger (and count
// its errors) for a backend that has it, and add it for none that lacks it.
func TestExecutorSchedulerKeepsStreamLogger(t *testing.T) {
	m := metrics.New()
	err := fmt.Errorf("x: %w", scheduler.ErrUnavailable)
	a := &Agent{metrics: m, sched: streamingScheduler{failingScheduler{err: err}}}
	a.cfg.Scheduler.Engine = "nomad"
	sl, ok := a.executorScheduler().(scheduler.StreamLogger)
	if !ok {
		t.Fatal("the executor's scheduler hides the backend's StreamLogger")
	}
	if _, got := sl.StreamLogs(context.Background(), "c", scheduler.Stderr, 0, true); got != err {
		t.Fatalf("StreamLogs returned %v, want the backend's %v", got, err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if b, _ := io.ReadAll(rec.Result().Body); !strings.Contains(string(b), `gofer_scheduler_errors_total{backend="nomad",kind="unavailable",op="logs"} 1`) {
		t.Errorf("StreamLogs' error was not counted:\n%s", b)
	}
	a.sched = failingScheduler{err: err}
	if _, ok := a.executorScheduler().(scheduler.StreamLogger); ok {
		t.Fatal("a backend with one stream became a StreamLogger")
	}
}

// streamingScheduler is a failingScheduler with separate streams.
type streamingScheduler struct{ failingScheduler }

func (s streamingScheduler) StreamLogs(context.Context, string, scheduler.LogStream, int64, bool) (io.ReadCloser, error) {
	return nil, s.err
}
