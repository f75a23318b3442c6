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
