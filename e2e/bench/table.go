package main

import (
	"fmt"
	"strings"
	"time"
)

// row is one line of the summary table. Values are float64 in the row's
// unit; ok is false when a system was not measured.
type row struct {
	metric     string
	unit       string // "ops/s", "ms", "s", "µs"
	gofer      float64
	etcd       float64
	gOK, eOK   bool
	target     string
	targetFn   func(ratio float64) bool // nil: informational
	annotation string
}

func table(cfg config, g, e sysResults) (string, int) {
	var rows []row
	writeRows := func(label string, gr, er []runStats, gc, ec []cpuDelta, tOps, tP50 bool) {
		gm, em := medianRun(gr), medianRun(er)
		ops := row{metric: label + " throughput", unit: "ops/s", gofer: gm.OpsSec, etcd: em.OpsSec, gOK: len(gr) > 0, eOK: len(er) > 0, target: "—"}
		if tOps {
			ops.target, ops.targetFn = "≥ 1.0×", func(r float64) bool { return r >= 1.0 }
		}
		p50 := row{metric: label + " p50", unit: "ms", gofer: msf(gm.P50), etcd: msf(em.P50), gOK: len(gr) > 0, eOK: len(er) > 0, target: "—"}
		if tP50 {
			p50.target, p50.targetFn = "≤ 1.5×", func(r float64) bool { return r <= 1.5 }
		}
		p99 := row{metric: label + " p99", unit: "ms", gofer: msf(gm.P99), etcd: msf(em.P99), gOK: len(gr) > 0, eOK: len(er) > 0, target: "—"}
		cpu := row{metric: label + " server CPU/write", unit: "µs", gofer: cpuPerOp(gr, gc), etcd: cpuPerOp(er, ec), gOK: len(gr) > 0, eOK: len(er) > 0, target: "—"}
		rows = append(rows, ops, p50, p99, cpu)
	}
	c1 := "write c=1"
	ch := fmt.Sprintf("write c=%d", cfg.high)
	if !cfg.skipWrites {
		writeRows(c1, g.low, e.low, g.lowCPU, e.lowCPU, false, true)
		writeRows(ch, g.high, e.high, g.highCPU, e.highCPU, true, false)
	}
	if !cfg.skipFailover && cfg.trials > 0 {
		gs, es := summarizeFailover(g.failover), summarizeFailover(e.failover)
		gOK, eOK := gs.OK > 0, es.OK > 0
		rows = append(rows,
			row{metric: "failover median", unit: "s", gofer: gs.Median.Seconds(), etcd: es.Median.Seconds(), gOK: gOK, eOK: eOK,
				target: "≤ 1.0×", targetFn: func(r float64) bool { return r <= 1.0 },
				annotation: fmt.Sprintf("%d/%d", gs.OK, es.OK)},
			row{metric: "failover min", unit: "s", gofer: gs.Min.Seconds(), etcd: es.Min.Seconds(), gOK: gOK, eOK: eOK, target: "—"},
			row{metric: "failover max", unit: "s", gofer: gs.Max.Seconds(), etcd: es.Max.Seconds(), gOK: gOK, eOK: eOK, target: "—"},
		)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "== summary: median of %d runs per write configuration; failover over %d trials per system\n", cfg.runs, cfg.trials)
	fmt.Fprintf(&b, "   writes: 256-byte values; c=1: %d ops/run, c=%d: %d ops/run; etcd: clientv3 puts over 100k random keys (1 conn at c=1, %d at c=%d);\n",
		cfg.n1, cfg.high, cfg.nHigh, min(cfg.high, cfg.etcdConns), cfg.high)
	fmt.Fprintf(&b, "   gofer: PATCH /api/namespaces/{one of %d} over HTTP/1.1 keep-alive (one conn per goroutine)\n", cfg.namespaces)
	fmt.Fprintf(&b, "   election timing: etcd heartbeat %dms / election %dms; gofer raft heartbeat_timeout %s / election_timeout %s\n",
		etcdHeartbeatMS, etcdElectionMS, cfg.goferHB, cfg.goferEl)
	fmt.Fprintf(&b, "   ratio = gofer / etcd\n\n")
	fmt.Fprintf(&b, "%-30s %12s %12s %8s %8s  %s\n", "metric", "gofer", "etcd", "ratio", "target", "result")
	fmt.Fprintf(&b, "%s\n", strings.Repeat("-", 84))
	pass, miss := 0, 0
	for _, r := range rows {
		gv, ev, ratio, result := "—", "—", "—", ""
		if r.gOK {
			gv = format(r.gofer, r.unit)
		}
		if r.eOK {
			ev = format(r.etcd, r.unit)
		}
		if r.gOK && r.eOK && r.etcd > 0 {
			q := r.gofer / r.etcd
			ratio = fmt.Sprintf("%.2f×", q)
			if r.targetFn != nil {
				if r.targetFn(q) {
					result = "PASS"
					pass++
				} else {
					result = "MISS"
					miss++
				}
			}
		} else if r.targetFn != nil {
			result = "n/a"
		}
		if r.annotation != "" && result != "" {
			result += "  (trials ok: gofer/etcd " + r.annotation + ")"
		}
		fmt.Fprintf(&b, "%-30s %12s %12s %8s %8s  %s\n", r.metric, gv, ev, ratio, r.target, result)
	}
	fmt.Fprintf(&b, "%s\n", strings.Repeat("-", 84))
	fmt.Fprintf(&b, "targets: %d PASS, %d MISS\n", pass, miss)
	if !cfg.skipWrites {
		noisy, worst := 0, 0.0
		for _, cs := range [][]cpuDelta{g.lowCPU, g.highCPU, e.lowCPU, e.highCPU} {
			for _, c := range cs {
				worst = max(worst, c.ForeignPct)
				if c.ForeignPct > cfg.noisyPct {
					noisy++
				}
			}
		}
		if noisy > 0 {
			fmt.Fprintf(&b, "NOISY: %d counted write run(s) had more than %.0f%% of the CPU taken by other processes (worst %.0f%%); re-run on a quiet machine\n", noisy, cfg.noisyPct, worst)
		} else {
			fmt.Fprintf(&b, "quiet: other processes took at most %.0f%% of the CPU during the counted write runs\n", worst)
		}
	}
	return b.String(), miss
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func format(v float64, unit string) string {
	switch unit {
	case "ops/s":
		return fmt.Sprintf("%.0f/s", v)
	case "ms":
		if v < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	case "s":
		return fmt.Sprintf("%.2f s", v)
	case "µs":
		return fmt.Sprintf("%.0f µs", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

// cpuPerOp is the median over runs of server CPU µs per successful write
// (all three members together).
func cpuPerOp(runs []runStats, cpu []cpuDelta) float64 {
	var v []float64
	for i, r := range runs {
		if i < len(cpu) {
			ops := max(1, r.N-r.Errors)
			v = append(v, 1e6*cpu[i].ServerSec/float64(ops))
		}
	}
	return median(v)
}
