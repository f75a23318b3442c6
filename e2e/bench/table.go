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

// table prints the summary; w is the gofer cluster on raft.log_store=wal
// (no runs when -wal=false or only etcd was measured); f is the five-node
// stage (nil when -five=false or it did not run).
func table(cfg config, g, e, w sysResults, f *fiveResults, r *runsResults) (string, int) {
	var b strings.Builder
	miss := 0
	if !(cfg.skipWrites && cfg.skipFailover) {
		s, m := writeTable(cfg, g, e, w, f)
		b.WriteString(s)
		miss += m
	}
	if r != nil {
		s, m := runsTable(cfg, r)
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(s)
		miss += m
	}
	return b.String(), miss
}

func writeTable(cfg config, g, e, w sysResults, f *fiveResults) (string, int) {
	if f == nil {
		f = &fiveResults{}
	}
	var rows []row
	// writeRows adds a configuration's rows; a target is a ratio bound
	// (0: none): at most maxP50 for the p50, at least minOps for the
	// throughput.
	writeRows := func(label string, gr, er []runStats, gc, ec []cpuDelta, minOps, maxP50 float64) {
		gm, em := medianRun(gr), medianRun(er)
		ops := row{metric: label + " throughput", unit: "ops/s", gofer: gm.OpsSec, etcd: em.OpsSec, gOK: len(gr) > 0, eOK: len(er) > 0, target: "—"}
		if minOps > 0 {
			ops.target, ops.targetFn = fmt.Sprintf("≥ %.1f×", minOps), func(r float64) bool { return r >= minOps }
		}
		p50 := row{metric: label + " p50", unit: "ms", gofer: msf(gm.P50), etcd: msf(em.P50), gOK: len(gr) > 0, eOK: len(er) > 0, target: "—"}
		if maxP50 > 0 {
			p50.target, p50.targetFn = fmt.Sprintf("≤ %.1f×", maxP50), func(r float64) bool { return r <= maxP50 }
		}
		p99 := row{metric: label + " p99", unit: "ms", gofer: msf(gm.P99), etcd: msf(em.P99), gOK: len(gr) > 0, eOK: len(er) > 0, target: "—"}
		cpu := row{metric: label + " server CPU/write", unit: "µs", gofer: cpuPerOp(gr, gc), etcd: cpuPerOp(er, ec), gOK: len(gr) > 0, eOK: len(er) > 0, target: "—"}
		rows = append(rows, ops, p50, p99, cpu)
	}
	c1 := "write c=1"
	ch := fmt.Sprintf("write c=%d", cfg.high)
	if !cfg.skipWrites {
		writeRows(c1, g.low, e.low, g.lowCPU, e.lowCPU, 0, 1.5)
		writeRows(ch, g.high, e.high, g.highCPU, e.highCPU, 1.0, 0)
		if len(w.low)+len(w.high) > 0 {
			// The same runs on the cluster whose raft log is raft-wal.
			writeRows("wal "+c1, w.low, e.low, w.lowCPU, e.lowCPU, 0, 1.3)
			writeRows("wal "+ch, w.high, e.high, w.highCPU, e.highCPU, 1.1, 0)
		}
		if len(f.gofer.low)+len(f.gofer.high)+len(f.etcd.low)+len(f.etcd.high) > 0 {
			// Five nodes against five etcd members, report only: the
			// latency at c=1 and the throughput at the high concurrency
			// say what the two extra replicas cost.
			fg, fe := f.gofer, f.etcd
			gm, em := medianRun(fg.low), medianRun(fe.low)
			rows = append(rows, row{metric: "5-node " + c1 + " p50", unit: "ms", gofer: msf(gm.P50), etcd: msf(em.P50),
				gOK: len(fg.low) > 0, eOK: len(fe.low) > 0, target: "—"})
			gm, em = medianRun(fg.high), medianRun(fe.high)
			rows = append(rows, row{metric: "5-node " + ch + " throughput", unit: "ops/s", gofer: gm.OpsSec, etcd: em.OpsSec,
				gOK: len(fg.high) > 0, eOK: len(fe.high) > 0, target: "—"})
		}
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
		gs, es = summarizeFailover(g.failoverStop), summarizeFailover(e.failoverStop)
		gOK, eOK = gs.OK > 0, es.OK > 0
		rows = append(rows,
			row{metric: "failover SIGSTOP median", unit: "s", gofer: gs.Median.Seconds(), etcd: es.Median.Seconds(), gOK: gOK, eOK: eOK,
				target: "≤ 1.0×", targetFn: func(r float64) bool { return r <= 1.0 },
				annotation: fmt.Sprintf("%d/%d", gs.OK, es.OK)},
			row{metric: "failover SIGSTOP min", unit: "s", gofer: gs.Min.Seconds(), etcd: es.Min.Seconds(), gOK: gOK, eOK: eOK, target: "—"},
			row{metric: "failover SIGSTOP max", unit: "s", gofer: gs.Max.Seconds(), etcd: es.Max.Seconds(), gOK: gOK, eOK: eOK, target: "—"},
		)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "== summary: median of %d runs per write configuration; failover over %d trials per system\n", cfg.runs, cfg.trials)
	fmt.Fprintf(&b, "   writes: 256-byte values; c=1: %d ops/run, c=%d: %d ops/run; etcd: clientv3 puts over 100k random keys (1 conn at c=1, %d at c=%d);\n",
		cfg.n1, cfg.high, cfg.nHigh, min(cfg.high, cfg.etcdConns), cfg.high)
	fmt.Fprintf(&b, "   gofer: PATCH /api/namespaces/{one of %d} over HTTP/1.1 keep-alive (one conn per goroutine)\n", cfg.namespaces)
	fmt.Fprintf(&b, "   election timing: etcd heartbeat %dms / election %dms; gofer raft heartbeat_timeout %s / election_timeout %s\n",
		etcdHeartbeatMS, etcdElectionMS, cfg.goferHB, cfg.goferEl)
	if len(w.low)+len(w.high) > 0 {
		fmt.Fprintf(&b, "   gofer rows: raft.log_store=boltdb (the default; also the failover trials); 'wal' rows: a second gofer cluster on raft.log_store=wal\n")
	}
	if len(f.gofer.low)+len(f.gofer.high)+len(f.etcd.low)+len(f.etcd.high) > 0 {
		fmt.Fprintf(&b, "   '5-node' rows: the same writes on a 5-node gofer (boltdb) vs a 5-member etcd, run after the 3-node clusters were stopped; no targets\n")
	}
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
		for _, cs := range [][]cpuDelta{g.lowCPU, g.highCPU, e.lowCPU, e.highCPU, w.lowCPU, w.highCPU,
			f.gofer.lowCPU, f.gofer.highCPU, f.etcd.lowCPU, f.etcd.highCPU} {
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

// runsRow is one line of the runs table: gofer's value, the anchor's
// (raw docker, when there is one), how they compare and the target.
type runsRow struct {
	metric, gofer, anchor, cmp, target string
	pass                               *bool // nil: informational
}

func runsTable(cfg config, r *runsResults) (string, int) {
	var rows []runsRow
	verdict := func(ok bool) *bool { return &ok }
	msv := func(d time.Duration) string { return format(msf(d), "ms") }
	if r.dispatchDone {
		g, d := r.goferRun, r.rawDispatch
		d50, d99 := g.p(0.5)-d.p(0.5), g.p(0.99)-d.p(0.99)
		rows = append(rows,
			runsRow{"(a) dispatch p50, start → run complete", msv(g.p(0.5)), msv(d.p(0.5)), fmt.Sprintf("%+.1f ms", msf(d50)), "≤ +50 ms", verdict(d50 <= 50*time.Millisecond)},
			runsRow{"(a) dispatch p99", msv(g.p(0.99)), msv(d.p(0.99)), fmt.Sprintf("%+.1f ms", msf(d99)), "≤ +150 ms", verdict(d99 <= 150*time.Millisecond)},
		)
	}
	if r.stepDone {
		c, f := r.stepCtrl, r.stepFull
		floor := func(q float64) (string, string) {
			if len(r.stepExitReport) == 0 {
				return "—", "—"
			}
			return msv(r.stepExitReport.p(q)), fmt.Sprintf("%+.1f ms", msf(c.p(q)-r.stepExitReport.p(q)))
		}
		f50, fc50 := floor(0.5)
		f99, fc99 := floor(0.99)
		rows = append(rows,
			runsRow{"(b) A exit → B scheduled p50 (ctl plane)", msv(c.p(0.5)), f50, fc50, "≤ 100 ms", verdict(c.p(0.5) <= 100*time.Millisecond)},
			runsRow{"(b) A exit → B scheduled p99 (ctl plane)", msv(c.p(0.99)), f99, fc99, "≤ 250 ms", verdict(c.p(0.99) <= 250*time.Millisecond)},
		)
		base := func(q float64) (string, string) {
			if len(r.stepBaseline) == 0 {
				return "—", "—"
			}
			return msv(r.stepBaseline.p(q)), fmt.Sprintf("%+.1f ms", msf(f.p(q)-r.stepBaseline.p(q)))
		}
		a50, c50 := base(0.5)
		a99, c99 := base(0.99)
		rows = append(rows,
			runsRow{"(b) A exit → B container start p50", msv(f.p(0.5)), a50, c50, "—", nil},
			runsRow{"(b) A exit → B container start p99", msv(f.p(0.99)), a99, c99, "—", nil},
		)
	}
	if r.tputDone {
		q := r.tputGofer / r.tputRaw
		rows = append(rows, runsRow{fmt.Sprintf("(c) throughput, %d containers", r.tputM), fmt.Sprintf("%.2f/s", r.tputGofer),
			fmt.Sprintf("%.2f/s", r.tputRaw), fmt.Sprintf("%.2f×", q), "≥ 0.8×", verdict(q >= 0.8)})
	}
	if p := r.place; p != nil && p.beforeDone {
		rows = append(rows, runsRow{"(d) placements/s, empty state", fmt.Sprintf("%.0f/s", p.bestBefore), "—", "—", "≥ 1000/s", verdict(p.bestBefore >= 1000)})
		if p.afterDone {
			slow := 100 * (p.bestBefore - p.bestAft) / p.bestBefore
			rows = append(rows,
				runsRow{fmt.Sprintf("(d) placements/s, %dk finished tasks", (p.finishedBeforeAfter+500)/1000), fmt.Sprintf("%.0f/s", p.bestAft), "—", "—", "—", nil},
				runsRow{"(d) slowdown with the finished tasks", fmt.Sprintf("%.1f%%", slow), "—", "—", "≤ 10%", verdict(slow <= 10)},
			)
		}
	}

	if g := r.growth; len(rows) == 0 && g != nil && len(g.rows) > 0 {
		return g.table(cfg), g.misses() // growth alone: no empty runs table
	}
	var b strings.Builder
	fmt.Fprintf(&b, "== runs summary: gofer 3 nodes on 127.0.0.1 vs raw docker, same run, same machine\n")
	fmt.Fprintf(&b, "   anchor: `%s` (exec → exit of the CLI); gofer task containers: same image and command, network %s\n", rawCommandString(cfg), r.network)
	if r.dispatchDone {
		fmt.Fprintf(&b, "   (a) %d sequential runs each; gofer = start request → completed_run on the leader's event stream; compared: gofer pN − docker pN\n", len(r.goferRun))
	}
	if r.stepDone {
		fmt.Fprintf(&b, "   (b) %d runs of a→b; A exit = a's docker die event; 'scheduled' = b's TaskSchedule committed and seen on the leader (container start excluded: G8);\n", len(r.stepCtrl))
		fmt.Fprintf(&b, "       ctl-plane rows, docker column: the engine's own exit report (die → wait(not-running) returns), a floor for any API client;\n")
		fmt.Fprintf(&b, "       the target applies to gofer's value. 'container start' = b's docker start event; anchor: two raw docker runs back to back (die → start)\n")
	}
	if r.tputDone {
		fmt.Fprintf(&b, "   (c) %d runs at once (pipeline parallelism %d) vs seq %d | xargs -P %d (docker's best of -P %s); containers completed per second\n",
			r.tputM, r.tputParallel, r.tputM, r.tputRawP, cfg.tputXargs)
	}
	if p := r.place; p != nil && p.beforeDone {
		fmt.Fprintf(&b, "   (d) scheduler.engine=noop, %d-task runs, %d closed-loop clients, best quiet %s window of %d; TaskSchedule commits per second\n",
			p.tasks, p.clients, cfg.placeWindow, cfg.placeWindows)
	}
	fmt.Fprintf(&b, "\n%-44s %12s %12s %11s %10s  %s\n", "metric", "gofer", "docker", "gofer vs", "target", "result")
	fmt.Fprintf(&b, "%s\n", strings.Repeat("-", 100))
	pass, miss := 0, 0
	for _, rw := range rows {
		result := ""
		if rw.pass != nil {
			if *rw.pass {
				result, pass = "PASS", pass+1
			} else {
				result, miss = "MISS", miss+1
			}
		}
		fmt.Fprintf(&b, "%-44s %12s %12s %11s %10s  %s\n", rw.metric, rw.gofer, rw.anchor, rw.cmp, rw.target, result)
	}
	fmt.Fprintf(&b, "%s\n", strings.Repeat("-", 100))
	fmt.Fprintf(&b, "runs targets: %d PASS, %d MISS\n", pass, miss)
	if r.foreignContainers > 0 {
		fmt.Fprintf(&b, "NOISY: other users of the Docker engine started %d container(s) while (a)–(c) ran\n", r.foreignContainers)
	}
	if p := r.place; p != nil {
		for _, ws := range [][]placeWindow{p.before, p.after} {
			for _, w := range ws {
				if w.noisy {
					fmt.Fprintf(&b, "NOISY: a placement window had %.0f%% of the CPU taken by other processes\n", w.cpu.ForeignPct)
				}
				if w.snapshots != "" {
					fmt.Fprintf(&b, "note: the %s window had a raft snapshot on %s (%.0f placements/s)\n", w.start.UTC().Format("15:04:05"), w.snapshots, w.rate)
				}
			}
		}
	}
	if g := r.growth; g != nil && len(g.rows) > 0 {
		fmt.Fprintf(&b, "\n%s", g.table(cfg))
		miss += g.misses()
	}
	return b.String(), miss
}
