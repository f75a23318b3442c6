package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// snapshotSeries are the automatic snapshot scheduler's series
// (agent/snapslots): operators check with them that voters take turns and
// how long a snapshot takes at the configured write rate.
type snapshotSeries struct {
	inProgress prometheus.Gauge
	taken      *prometheus.CounterVec
	duration   prometheus.Histogram
}

func newSnapshotSeries() snapshotSeries {
	return snapshotSeries{
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "raft", Name: "snapshot_in_progress",
			Help: "1 while this node's snapshot scheduler is taking a snapshot, else 0.",
		}),
		taken: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "raft", Name: "snapshots_total",
			Help: "Automatic snapshots this node took, by reason (slot, no_slot, overdue) and result (ok, error).",
		}, []string{"reason", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "raft", Name: "snapshot_duration_seconds",
			Help:    "Time an automatic snapshot took, write and fsync included.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
	}
}

func (s snapshotSeries) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.inProgress, s.taken, s.duration}
}

// SnapshotStarted records that the scheduler started a snapshot.
func (m *Metrics) SnapshotStarted(reason string) {
	if m == nil {
		return
	}
	m.snapshots.inProgress.Set(1)
}

// SnapshotFinished records a snapshot's end, its reason and outcome.
func (m *Metrics) SnapshotFinished(reason string, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.snapshots.inProgress.Set(0)
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.snapshots.taken.WithLabelValues(reason, result).Inc()
	m.snapshots.duration.Observe(took.Seconds())
}
