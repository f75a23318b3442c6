package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// writeSystem is one cluster the write runs measure. The same loop
// (measureWrites) measures the 3-node clusters and the 5-node ones, so the
// two stages differ only in which clusters they hand it.
type writeSystem struct {
	name string
	// gofer: the cluster profiled with -pprof (nil for etcd).
	gofer *goferCluster
	res   *sysResults
	// load prepares the measured op at concurrency c and names the
	// server processes (for their CPU) and the client shape (for the log).
	load func(c int) (op opFunc, closeFn func(), serverPIDs []int, shape string, err error)
}

// etcdWriteSystem puts to the etcd leader over min(c, -etcd-conns) gRPC
// connections.
func etcdWriteSystem(ctx context.Context, cfg config, name string, ec *etcdCluster, res *sysResults) writeSystem {
	return writeSystem{name: name, res: res, load: func(c int) (opFunc, func(), []int, string, error) {
		conns := min(c, cfg.etcdConns)
		op, closeFn, err := ec.writeLoad(ctx, conns)
		var pids []int
		for _, m := range ec.members {
			pids = append(pids, m.proc.pid())
		}
		return op, closeFn, pids, fmt.Sprintf("%d gRPC conn(s)", conns), err
	}}
}

// goferWriteSystem PATCHes namespaces on the gofer leader, one keep-alive
// connection per goroutine.
func goferWriteSystem(ctx context.Context, name string, gc *goferCluster, res *sysResults) writeSystem {
	return writeSystem{name: name, gofer: gc, res: res, load: func(c int) (opFunc, func(), []int, string, error) {
		op, closeFn, li, err := gc.writeLoad(ctx, c)
		var pids []int
		for _, n := range gc.nodes {
			pids = append(pids, n.proc.pid())
		}
		leader := ""
		if li >= 0 {
			leader = gc.nodes[li].name
		}
		return op, closeFn, pids, fmt.Sprintf("HTTP/1.1 keep-alive, leader %s", leader), err
	}}
}

// measureWrites warms every system up, then runs -runs rounds of -n1
// writes at c=1 and -nhigh at -c, alternating which system goes first, and
// appends each counted run (and its CPU) to the system's results. A run
// during which other processes took more than -noisy % of the CPU is
// repeated up to -retry-noisy times. allPIDs names every process the
// benchmark started that is alive, so their CPU does not count as noise.
// The returned code is the program's exit status when err is not nil.
func measureWrites(ctx context.Context, cfg config, rep *report, systems []writeSystem, allPIDs func() []int) (int, error) {
	// Warm up: connections, page cache, Go heaps.
	for _, s := range systems {
		op, closeFn, _, _, err := s.load(cfg.high)
		if err != nil {
			return 1, fmt.Errorf("%s warm-up: %w", s.name, err)
		}
		st := runLoad(ctx, cfg.warmup, cfg.high, op)
		closeFn()
		rep.printf("  warm-up %-9s %s\n", s.name, st)
		if ctx.Err() != nil {
			return 130, ctx.Err()
		}
	}
	for r := 0; r < cfg.runs; r++ {
		for _, conc := range []int{1, cfg.high} {
			n := cfg.n1
			if conc > 1 {
				n = cfg.nHigh
			}
			// Alternate which system goes first, so a slow phase of the
			// machine does not always hit the same one.
			order := systems
			if r%2 == 1 {
				order = slices.Clone(systems)
				slices.Reverse(order)
			}
			for _, s := range order {
				var st runStats
				var cpu cpuDelta
				for attempt := 0; ; attempt++ {
					op, closeFn, pids, shape, err := s.load(conc)
					if err != nil {
						return 1, fmt.Errorf("%s: %w", s.name, err)
					}
					var prof *profiler
					if s.gofer != nil && r == 0 && attempt == 0 && cfg.pprofDir != "" {
						prof = startProfiles(ctx, s.gofer, cfg.pprofDir, fmt.Sprintf("%s-c%d", s.name, conc), cfg.pprofSeconds)
					}
					before := takeCPU(pids, allPIDs())
					st = runLoad(ctx, n, conc, op)
					cpu = before.to(takeCPU(pids, allPIDs()))
					closeFn()
					if prof != nil {
						prof.wait(rep)
					}
					if ctx.Err() != nil {
						return 130, ctx.Err()
					}
					ops := max(1, st.N-st.Errors)
					noisy := cpu.ForeignPct > cfg.noisyPct
					note := ""
					if noisy && attempt < cfg.retryNoisy {
						note = "  → noisy, repeating"
					}
					rep.printf("  run %d %-9s %s | srv CPU %.0fµs/op, client %.0fµs/op, other load %.0f%% | %s%s\n",
						r+1, s.name, st, 1e6*cpu.ServerSec/float64(ops), 1e6*cpu.ClientSec/float64(ops), cpu.ForeignPct, shape, note)
					if note == "" {
						break
					}
				}
				if st.Errors > st.N/100 {
					return 1, fmt.Errorf("%s run %d at c=%d: %d of %d writes failed (first: %s)", s.name, r+1, conc, st.Errors, st.N, st.FirstErr)
				}
				if conc == 1 {
					s.res.low = append(s.res.low, st)
					s.res.lowCPU = append(s.res.lowCPU, cpu)
				} else {
					s.res.high = append(s.res.high, st)
					s.res.highCPU = append(s.res.highCPU, cpu)
				}
			}
		}
	}
	return 0, nil
}

// clusterPIDs lists the processes of the given clusters (nil ones skipped).
func clusterPIDs(e *etcdCluster, gs ...*goferCluster) []int {
	var out []int
	if e != nil {
		for _, m := range e.members {
			out = append(out, m.proc.pid())
		}
	}
	for _, c := range gs {
		if c != nil {
			for _, n := range c.nodes {
				out = append(out, n.proc.pid())
			}
		}
	}
	return out
}

// writeGoferOptions are the settings of every gofer cluster the write
// runs measure: the raft timing flags, -gofer-env, then extraEnv.
func writeGoferOptions(cfg config, extraEnv ...string) goferOptions {
	var env []string
	if cfg.goferEnv != "" {
		env = strings.Split(cfg.goferEnv, ",")
	}
	return goferOptions{
		bin: cfg.goferBin, heartbeat: cfg.goferHB, election: cfg.goferEl, namespaces: cfg.namespaces,
		pprof: cfg.pprofDir != "", extraEnv: append(env, extraEnv...),
	}
}
