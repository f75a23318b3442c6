package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/api"
	"github.com/goferhq/gofer/internal/metrics"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// Metrics wiring (docs/metrics.md): the node's registry is built in New;
// the FSM reports applies to it, the API its requests; this file adds the
// series read from state at scrape time (queue depths, extension health),
// the executor's scheduler errors and the optional metrics listener.

// Metrics is the node's registry (tests scrape it).
func (a *Agent) Metrics() *metrics.Metrics { return a.metrics }

// registerStateMetrics adds the collectors that read this node's state.
func (a *Agent) registerStateMetrics() {
	a.metrics.MustRegister(&stateCollector{a: a})
}

var (
	queueRunsDesc = prometheus.NewDesc(metrics.Namespace+"_queue_runs",
		"Unfinished runs in this node's state by state: pending (queued, waiting for a concurrency slot) or running.", []string{"state"}, nil)
	queueTasksDesc = prometheus.NewDesc(metrics.Namespace+"_queue_task_executions",
		"Task executions of running runs by state (waiting, scheduled, running).", []string{"state"}, nil)
	extHealthyDesc = prometheus.NewDesc(metrics.Namespace+"_extension_healthy",
		"1 when the extension's container is running as the leader's supervisor last recorded, else 0; one series per installed extension.", []string{"extension"}, nil)
)

// stateCollector reads queue depths and extension health from the node's
// committed state (every node has them; no leader needed).
type stateCollector struct{ a *Agent }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueRunsDesc
	ch <- queueTasksDesc
	ch <- extHealthyDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	runs := map[string]float64{string(model.RunStatePending): 0, string(model.RunStateRunning): 0}
	tasks := map[string]float64{string(model.TaskStateWaiting): 0, string(model.TaskStateScheduled): 0, string(model.TaskStateRunning): 0}
	healthy := map[string]float64{}
	err := c.a.fsm.ViewCommitted(func(tx *bbolt.Tx) error {
		active, err := store.ActiveRuns(tx)
		if err != nil {
			return err
		}
		for _, r := range active {
			runs[string(r.State)]++
			if r.State != model.RunStateRunning {
				continue
			}
			// States only: the records as stored, no task configs.
			ts, err := store.ListTaskRecords(tx, r.NamespaceID, r.PipelineID, r.RunID)
			if err != nil {
				return err
			}
			for _, t := range ts {
				if _, ok := tasks[string(t.State)]; ok {
					tasks[string(t.State)]++
				}
			}
		}
		exts, err := store.ListExtensions(tx, store.Page{})
		if err != nil {
			return err
		}
		for _, e := range exts {
			v := 0.0
			if e.Runtime.State == model.ExtensionStateRunning {
				v = 1
			}
			healthy[e.ID] = v
		}
		return nil
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueRunsDesc, err)
		return
	}
	for s, v := range runs {
		ch <- prometheus.MustNewConstMetric(queueRunsDesc, prometheus.GaugeValue, v, s)
	}
	for s, v := range tasks {
		ch <- prometheus.MustNewConstMetric(queueTasksDesc, prometheus.GaugeValue, v, s)
	}
	for id, v := range healthy {
		ch <- prometheus.MustNewConstMetric(extHealthyDesc, prometheus.GaugeValue, v, id)
	}
}

// countedScheduler counts the errors a scheduler returns to the executor
// by backend, operation and kind (the one place scheduler errors are
// measured). A cancelled context is the leader stepping down, not an
// error of the backend, and is not counted.
type countedScheduler struct {
	scheduler.Scheduler
	backend string
	m       *metrics.Metrics
}

func (s countedScheduler) count(op string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	s.m.ObserveSchedulerError(s.backend, op, schedulerErrorKind(err))
	return err
}

// schedulerErrorKind names err's kind for the kind label.
func schedulerErrorKind(err error) string {
	switch {
	case errors.Is(err, scheduler.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, scheduler.ErrInvalid):
		return "invalid"
	case errors.Is(err, scheduler.ErrImageNotFound):
		return "image_not_found"
	case errors.Is(err, scheduler.ErrAlreadyExists):
		return "already_exists"
	case errors.Is(err, scheduler.ErrUnsupported):
		return "unsupported"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other"
}

func (s countedScheduler) Start(ctx context.Context, req scheduler.StartRequest) error {
	return s.count("start", s.Scheduler.Start(ctx, req))
}

func (s countedScheduler) Inspect(ctx context.Context, name string) (scheduler.Status, error) {
	st, err := s.Scheduler.Inspect(ctx, name)
	return st, s.count("inspect", err)
}

func (s countedScheduler) Wait(ctx context.Context, name string) (scheduler.Status, error) {
	st, err := s.Scheduler.Wait(ctx, name)
	return st, s.count("wait", err)
}

func (s countedScheduler) Logs(ctx context.Context, name string, follow bool) (io.ReadCloser, error) {
	rc, err := s.Scheduler.Logs(ctx, name, follow)
	return rc, s.count("logs", err)
}

func (s countedScheduler) Stop(ctx context.Context, name string, grace time.Duration) error {
	return s.count("stop", s.Scheduler.Stop(ctx, name, grace))
}

func (s countedScheduler) Remove(ctx context.Context, name string) error {
	return s.count("remove", s.Scheduler.Remove(ctx, name))
}

func (s countedScheduler) List(ctx context.Context, labels map[string]string) ([]scheduler.Container, error) {
	cs, err := s.Scheduler.List(ctx, labels)
	return cs, s.count("list", err)
}

// executorScheduler is the scheduler the executor uses: a.sched with its
// errors counted.
// A backend with separate output streams keeps them (the executor looks
// for scheduler.StreamLogger on what it is given).
func (a *Agent) executorScheduler() scheduler.Scheduler {
	c := countedScheduler{Scheduler: a.sched, backend: a.cfg.Scheduler.Engine, m: a.metrics}
	if sl, ok := a.sched.(scheduler.StreamLogger); ok {
		return countedStreamScheduler{countedScheduler: c, streams: sl}
	}
	return c
}

// countedStreamScheduler is countedScheduler for a backend that is also a
// scheduler.StreamLogger.
type countedStreamScheduler struct {
	countedScheduler
	streams scheduler.StreamLogger
}

func (s countedStreamScheduler) StreamLogs(ctx context.Context, name string, stream scheduler.LogStream, offset int64, follow bool) (io.ReadCloser, error) {
	rc, err := s.streams.StreamLogs(ctx, name, stream, offset, follow)
	return rc, s.count("logs", err)
}

// listenMetrics opens the metrics listener for access = "listener" (at
// New, so a port in use fails the start).
func (a *Agent) listenMetrics() error {
	if a.cfg.Metrics.Access != api.MetricsAccessListener {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("listen on metrics.listen %s: %w", a.cfg.Metrics.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	a.metricsLn = ln
	a.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return nil
}

// serveMetrics serves the listener until stopMetrics.
func (a *Agent) serveMetrics() {
	if a.metricsSrv == nil {
		return
	}
	a.logger.Info("serving metrics without authentication", "addr", "http://"+a.metricsLn.Addr().String()+"/metrics")
	go func() {
		if err := a.metricsSrv.Serve(a.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("metrics listener failed", "error", err)
		}
	}()
}

func (a *Agent) stopMetrics(ctx context.Context) {
	if a.metricsSrv == nil {
		return
	}
	if err := a.metricsSrv.Shutdown(ctx); err != nil {
		a.logger.Warn("metrics listener shutdown", "error", err)
	}
}

// MetricsAddr is where the metrics listener listens ("" without one).
func (a *Agent) MetricsAddr() string {
	if a.metricsLn == nil {
		return ""
	}
	return a.metricsLn.Addr().String()
}
