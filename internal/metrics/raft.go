package metrics

import (
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gmprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// hashicorp/raft (and raft-boltdb) emit their metrics through go-metrics'
// process-global instance (the compat package: armon/go-metrics by
// default, hashicorp/go-metrics under the hashicorpmetrics build tag).
// One go-metrics Prometheus sink is installed there once per process and
// registered, as a collector, with every agent's registry: its series
// (gofer_raft_*, gofer_raft_boltdb_*) are per process, which is per node
// in production. The per-node raft gauges below (state, term, indexes)
// read each agent's own *raft.Raft.

var (
	bridgeOnce sync.Once
	bridgeSink *gmprom.PrometheusSink
)

// bridgeName is the sink's own (empty) descriptor name.
const bridgeName = "gofer_raft_go_metrics_bridge"

// raftBridge installs the go-metrics sink once and returns it.
func raftBridge() prometheus.Collector {
	bridgeOnce.Do(func() {
		sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{
			Name: bridgeName,
			// Registered here with a registry nobody gathers; each
			// agent's registry registers the sink itself.
			Registerer: prometheus.NewRegistry(),
			// Never drop a series: a summary that stops moving (a
			// leader-only timer on a node that now follows) keeps its
			// cumulative count and sum.
			Expiration: 0,
		})
		if err != nil {
			panic("metrics: go-metrics prometheus sink: " + err.Error())
		}
		cfg := gometrics.DefaultConfig(Namespace)
		cfg.EnableHostname = false
		cfg.EnableRuntimeMetrics = false // the Go collector has them
		cfg.EnableServiceLabel = false
		cfg.TimerGranularity = time.Millisecond
		if _, err := gometrics.NewGlobal(cfg, sink); err != nil {
			panic("metrics: go-metrics global: " + err.Error())
		}
		bridgeSink = sink
	})
	return bridgeSink
}

// RaftState is what the per-node raft gauges read; *raft.Raft has it.
type RaftState interface {
	State() raft.RaftState
	CurrentTerm() uint64
	CommitIndex() uint64
	AppliedIndex() uint64
	LastIndex() uint64
	LastContact() time.Time
}

// RegisterRaft adds the node's raft gauges: state (one series per state,
// 1 for the current one), term, commit/applied/last index, and the seconds
// since the leader was last heard from (0 on the leader).
func (m *Metrics) RegisterRaft(r RaftState) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&raftCollector{r: r})
}

var (
	raftStateDesc = prometheus.NewDesc(Namespace+"_raft_state", "1 for this node's current raft state (follower, candidate, leader, shutdown), 0 for the others.", []string{"state"}, nil)
	raftTermDesc  = prometheus.NewDesc(Namespace+"_raft_term", "This node's current raft term.", nil, nil)
	raftCommit    = prometheus.NewDesc(Namespace+"_raft_commit_index", "The latest raft index this node knows committed.", nil, nil)
	raftApplied   = prometheus.NewDesc(Namespace+"_raft_applied_index", "The latest raft index applied to this node's state machine.", nil, nil)
	raftLast      = prometheus.NewDesc(Namespace+"_raft_last_index", "The latest raft index in this node's log.", nil, nil)
	raftContact   = prometheus.NewDesc(Namespace+"_raft_last_contact_seconds", "Seconds since this node last heard from the leader; 0 on the leader, -1 when never.", nil, nil)
)

type raftCollector struct{ r RaftState }

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{raftStateDesc, raftTermDesc, raftCommit, raftApplied, raftLast, raftContact} {
		ch <- d
	}
}

func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.State()
	for _, s := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if s == st {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(raftStateDesc, prometheus.GaugeValue, v, lower(s.String()))
	}
	ch <- prometheus.MustNewConstMetric(raftTermDesc, prometheus.GaugeValue, float64(c.r.CurrentTerm()))
	ch <- prometheus.MustNewConstMetric(raftCommit, prometheus.GaugeValue, float64(c.r.CommitIndex()))
	ch <- prometheus.MustNewConstMetric(raftApplied, prometheus.GaugeValue, float64(c.r.AppliedIndex()))
	ch <- prometheus.MustNewConstMetric(raftLast, prometheus.GaugeValue, float64(c.r.LastIndex()))
	contact := -1.0
	if st == raft.Leader {
		contact = 0
	} else if t := c.r.LastContact(); !t.IsZero() {
		contact = time.Since(t).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(raftContact, prometheus.GaugeValue, contact)
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
