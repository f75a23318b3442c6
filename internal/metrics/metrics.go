// Package metrics holds a node's Prometheus registry and the series Gofer
// exports at GET /metrics: the API's requests, the state machine's applies,
// runs and task executions, scheduler errors, trigger lateness, and
// hashicorp/raft's own go-metrics bridged in. docs/metrics.md lists every
// series.
//
// Each agent has its own registry (not the process-global default), so
// tests that start several agents in one process do not collide. Every
// method is safe on a nil *Metrics (it does nothing), so components built
// without metrics (unit tests) need no stand-in.
package metrics

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/goferhq/gofer/store/model"
)

// Namespace prefixes every series Gofer defines.
const Namespace = "gofer"

// Metrics is one node's registry and the series recorded into it.
type Metrics struct {
	reg *prometheus.Registry

	apiRequests *prometheus.CounterVec
	apiLatency  *prometheus.HistogramVec

	fsmBatch   prometheus.Histogram
	fsmApply   *prometheus.HistogramVec
	runs       *prometheus.CounterVec
	tasks      *prometheus.CounterVec
	taskTime   *prometheus.HistogramVec
	runTime    *prometheus.HistogramVec
	schedErrs  *prometheus.CounterVec
	triggerLag *prometheus.HistogramVec
	auditDrop  *prometheus.CounterVec
	snapshots  snapshotSeries
}

// New builds a registry with the process and Go runtime collectors, the
// raft bridge (process-wide, see raft.go) and Gofer's own series.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "api", Name: "requests_total",
			Help: "API requests served by this node, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		apiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "api", Name: "request_duration_seconds",
			Help:    "Time from receiving an API request to its handler returning, by route template and method (streams count their whole life).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
		fsmBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "fsm", Name: "batch_size",
			Help:    "Raft log entries per batch the state machine applies in one transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		fsmApply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "fsm", Name: "apply_duration_seconds",
			Help:    "Time the state machine spends applying one command, by command name.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25},
		}, []string{"command"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "runs_finished_total",
			Help: "Runs that reached a terminal status, as this node applied them (every node counts every run).",
		}, []string{"status"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "task_executions_finished_total",
			Help: "Task executions that reached a terminal status, as this node applied them (every node counts every task).",
		}, []string{"status"}),
		taskTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "task_execution_duration_seconds",
			Help:    "Duration of finished task executions' last attempt (start to end, from the timestamps in state), by status.",
			Buckets: []float64{.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"status"}),
		runTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "run_duration_seconds",
			Help:    "Duration of finished runs (start to end, from the timestamps in state), by status.",
			Buckets: []float64{.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"status"}),
		schedErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "scheduler", Name: "errors_total",
			Help: "Errors the container scheduler returned to the executor, by backend, operation and kind.",
		}, []string{"backend", "op", "kind"}),
		triggerLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "trigger", Name: "lateness_seconds",
			Help:    "How long after its scheduled time a trigger's run was started (the API receiving the trigger's request), by trigger kind.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"trigger"}),
		auditDrop: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "audit", Name: "entries_dropped_total",
			Help: "Audit entries this node neither recorded nor passed to the leader, by reason (a suppressed entry counts the requests it stands for).",
		}, []string{"reason"}),
		snapshots: newSnapshotSeries(),
	}
	reg.MustRegister(m.snapshots.collectors()...)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.apiRequests, m.apiLatency, m.fsmBatch, m.fsmApply, m.runs, m.tasks, m.taskTime, m.runTime,
		m.schedErrs, m.triggerLag, m.auditDrop,
		raftBridge(),
	)
	return m
}

// Registry is the node's registry, for collectors other packages add
// (raft state, queue depths, extension health).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// MustRegister adds collectors; nothing on a nil Metrics.
func (m *Metrics) MustRegister(cs ...prometheus.Collector) {
	if m == nil {
		return
	}
	m.reg.MustRegister(cs...)
}

// Handler serves the registry in Prometheus' text (or negotiated) format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRequest records one API request: the route template (never the
// raw path, so the label set stays bounded), method, status and latency.
func (m *Metrics) ObserveRequest(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.apiRequests.WithLabelValues(route, method, statusCode(code)).Inc()
	m.apiLatency.WithLabelValues(route, method).Observe(d.Seconds())
}

// statusCode formats common codes without allocating.
func statusCode(code int) string {
	switch code {
	case 200:
		return "200"
	case 201:
		return "201"
	case 204:
		return "204"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 409:
		return "409"
	case 500:
		return "500"
	case 503:
		return "503"
	}
	return itoa(code)
}

func itoa(n int) string {
	if n <= 0 || n > 999 {
		return "other"
	}
	var b [3]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// ObserveSchedulerError counts an error from the scheduler backend.
func (m *Metrics) ObserveSchedulerError(backend, op, kind string) {
	if m == nil {
		return
	}
	m.schedErrs.WithLabelValues(backend, op, kind).Inc()
}

// ObserveAuditDropped counts n audit entries dropped for reason.
func (m *Metrics) ObserveAuditDropped(reason string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.auditDrop.WithLabelValues(reason).Add(float64(n))
}

// ObserveTriggerLateness records how late a trigger's run started.
func (m *Metrics) ObserveTriggerLateness(trigger string, late time.Duration) {
	if m == nil {
		return
	}
	if late < 0 {
		late = 0
	}
	m.triggerLag.WithLabelValues(trigger).Observe(late.Seconds())
}

// FSMObserver is what the state machine reports applies to (fsm.Observer):
// batch sizes, per-command apply time, and the runs and task executions
// that reached a terminal status. Observing changes no state.
type FSMObserver struct{ m *Metrics }

// FSM returns the observer for fsm.FSM.SetObserver.
func (m *Metrics) FSM() FSMObserver { return FSMObserver{m} }

// Batch records a batch of n entries.
func (o FSMObserver) Batch(n int) {
	if o.m == nil {
		return
	}
	o.m.fsmBatch.Observe(float64(n))
}

// Command starts timing one command; done records it under the command's
// name with the value its applier returned (a *model.Run or
// *model.TaskExecution that ended is counted by status).
func (o FSMObserver) Command() (done func(name string, value any)) {
	if o.m == nil {
		return func(string, any) {}
	}
	start := time.Now()
	return func(name string, value any) {
		o.m.fsmApply.WithLabelValues(name).Observe(time.Since(start).Seconds())
		o.m.observeOutcome(name, value)
	}
}

// observeOutcome counts a run or task execution that an apply completed.
// Only the commands that complete them count, so a later command returning
// a complete record (a log write) is not counted twice.
func (m *Metrics) observeOutcome(name string, value any) {
	switch v := value.(type) {
	case *model.Run:
		if name != "run_finish" || v.State != model.RunStateComplete {
			return
		}
		status := strings.ToLower(string(v.Status))
		m.runs.WithLabelValues(status).Inc()
		if v.Started > 0 && v.Ended >= v.Started {
			m.runTime.WithLabelValues(status).Observe(float64(v.Ended-v.Started) / 1000)
		}
	case *model.TaskExecution:
		if (name != "task_finish" && name != "task_resolve") || v.State != model.TaskStateComplete {
			return
		}
		status := strings.ToLower(string(v.Status))
		m.tasks.WithLabelValues(status).Inc()
		if n := len(v.Attempts); n > 0 && name == "task_finish" {
			a := v.Attempts[n-1]
			if a.Started > 0 && a.Ended >= a.Started {
				m.taskTime.WithLabelValues(status).Observe(float64(a.Ended-a.Started) / 1000)
			}
		}
	}
}
