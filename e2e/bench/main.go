// Command bench measures Gofer against etcd 3.4 side by side on the same
// machine with the same client shape: replicated 256-byte writes on a
// 3-node loopback cluster at concurrency 1 and 64 (and, reported without
// targets, on a 5-node one), and leader failover (SIGKILL the leader →
// first successful write through a survivor). It prints a table of medians
// and gofer/etcd ratios against the targets.
//
// It is run by e2e/bench/run.sh (make bench); see README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

type config struct {
	goferBin, etcdBin string
	workDir, out      string
	keep              bool
	only              string
	n1, nHigh, high   int
	warmup            int
	runs              int
	trials            int
	reqTimeout        time.Duration
	failoverMax       time.Duration
	etcdConns         int
	goferHB, goferEl  time.Duration
	namespaces        int
	skipWrites        bool
	// wal: the write runs also measure a second gofer cluster whose
	// nodes keep their raft log in raft-wal (raft.log_store = "wal").
	wal bool
	// five: after the 3-node stages, measure the same writes on a
	// 5-member etcd and a 5-node gofer (five.go).
	five         bool
	skipFailover bool
	pprofDir     string
	pprofSeconds int
	goferEnv     string
	noisyPct     float64
	retryNoisy   int
	strict       bool

	// The runs benchmarks (runs.go, placements.go).
	skipRuns        bool
	onlyRuns        bool
	runsParts       string
	runsImage       string
	runsNetwork     string
	runsInterleave  bool
	runTimeout      time.Duration
	dispatchN       int
	dispatchWarm    int
	stepN           int
	stepBaseline    bool
	stepProbe       bool
	tputM           int
	tputXargs       string
	tputRounds      int
	tputParallelism int
	placeTasks      int
	placeClients    int
	placeWarm       time.Duration
	placeWindow     time.Duration
	placeWindows    int
	preloadRuns     int
	progressEvery   time.Duration
	snapSlot        time.Duration
	snapWindow      time.Duration
	snapCycles      int
	growthSteps     string
	growthList      int
	growthWindow    time.Duration
	growthWindows   int

	// The trigger benchmark (triggers.go).
	skipTriggers bool
	onlyTriggers bool
	triggerTicks int
}

func main() {
	var cfg config
	flag.StringVar(&cfg.goferBin, "gofer-bin", os.Getenv("GOFER_BIN"), "gofer binary (default $GOFER_BIN)")
	flag.StringVar(&cfg.etcdBin, "etcd-bin", "etcd", "etcd 3.4 server binary")
	flag.StringVar(&cfg.workDir, "workdir", "", "directory for data dirs and logs (default: a new temp dir)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work dir (data and logs) at the end")
	flag.StringVar(&cfg.out, "out", "", "also write the report to this file")
	flag.StringVar(&cfg.only, "only", "", "measure only gofer or only etcd (default both)")
	flag.IntVar(&cfg.n1, "n1", 5000, "writes per run at concurrency 1")
	flag.IntVar(&cfg.nHigh, "nhigh", 50000, "writes per run at the high concurrency")
	flag.IntVar(&cfg.high, "c", 64, "the high concurrency")
	flag.IntVar(&cfg.warmup, "warmup", 3000, "unmeasured writes per system before the runs")
	flag.IntVar(&cfg.runs, "runs", 3, "runs per configuration (the table shows the median)")
	flag.IntVar(&cfg.trials, "trials", 5, "failover trials per system")
	flag.DurationVar(&cfg.reqTimeout, "req-timeout", 200*time.Millisecond, "per-request timeout of the failover writers")
	flag.DurationVar(&cfg.failoverMax, "failover-max", 30*time.Second, "give up on a failover trial after this long")
	flag.IntVar(&cfg.etcdConns, "etcd-conns", 8, "gRPC connections the etcd client spreads the high-concurrency load over (1 at c=1)")
	flag.DurationVar(&cfg.goferHB, "gofer-heartbeat", time.Second, "gofer raft.heartbeat_timeout")
	flag.DurationVar(&cfg.goferEl, "gofer-election", time.Second, "gofer raft.election_timeout")
	flag.IntVar(&cfg.namespaces, "namespaces", 1000, "namespaces the gofer writes spread over")
	flag.BoolVar(&cfg.skipWrites, "skip-writes", false, "skip the write runs")
	flag.BoolVar(&cfg.wal, "wal", true, "the write runs also measure a gofer cluster on raft.log_store=wal (the other gofer cluster and the failover trials use the default, boltdb)")
	flag.BoolVar(&cfg.five, "five", true, "after the 3-node write runs and failover trials, measure the same writes on a 5-member etcd and a 5-node gofer (boltdb); the 3-node clusters are stopped first")
	flag.BoolVar(&cfg.skipFailover, "skip-failover", false, "skip the failover trials")
	flag.StringVar(&cfg.pprofDir, "pprof", "", "serve pprof on each gofer node (server.pprof_addr) and save CPU profiles of the leader and a follower during the first gofer run of each concurrency into this dir")
	flag.IntVar(&cfg.pprofSeconds, "pprof-seconds", 5, "length of each CPU profile")
	flag.StringVar(&cfg.goferEnv, "gofer-env", "", "extra KEY=VALUE,... environment for the gofer nodes (experiments)")
	flag.Float64Var(&cfg.noisyPct, "noisy", 15, "a write run during which other processes took more than this % of the CPU is noisy")
	flag.BoolVar(&cfg.strict, "strict", false, "exit with status 3 if a target is missed (default: report only)")
	flag.IntVar(&cfg.retryNoisy, "retry-noisy", 1, "repeat a noisy write run (or add a placement window) up to this many times")

	flag.BoolVar(&cfg.skipRuns, "skip-runs", false, "skip the runs benchmarks (dispatch, step, throughput, placements)")
	flag.BoolVar(&cfg.onlyRuns, "only-runs", false, "only the runs benchmarks: no etcd, no writes, no failover")
	flag.StringVar(&cfg.runsParts, "runs-parts", strings.Join(allRunParts, ","), "which runs benchmarks, comma-separated: "+strings.Join(allRunParts, ", ")+
		" (default), or "+partSnapshots+" (placements while a follower snapshots), "+partGrowth+" (the growth table)")
	flag.StringVar(&cfg.runsImage, "runs-image", "gofer/busybox:latest", "image of the task containers and of the raw docker runs (command: true)")
	flag.StringVar(&cfg.runsNetwork, "runs-network", "bridge", "network mode of gofer's task containers (scheduler.docker.network) and of the raw docker runs")
	flag.BoolVar(&cfg.runsInterleave, "runs-interleave", true, "(a): alternate raw docker runs and gofer dispatches instead of all raw runs first")
	flag.DurationVar(&cfg.runTimeout, "run-timeout", 60*time.Second, "give up waiting for one run after this long")
	flag.IntVar(&cfg.dispatchN, "dispatch-n", 100, "(a): measured raw docker runs and gofer dispatches, each")
	flag.IntVar(&cfg.dispatchWarm, "dispatch-warmup", 3, "(a): unmeasured runs of each first")
	flag.IntVar(&cfg.stepN, "step-n", 30, "(b): measured runs of the 2-task chain")
	flag.BoolVar(&cfg.stepBaseline, "step-baseline", true, "(b): also time -step-n pairs of raw docker runs back to back")
	flag.BoolVar(&cfg.stepProbe, "step-probe", true, "(b): also time -step-n containers' exit report by the engine itself (die → wait returns)")
	flag.IntVar(&cfg.tputM, "tput-m", 40, "(c): runs started at once, and containers per xargs run")
	flag.StringVar(&cfg.tputXargs, "tput-xargs", "4,8,16", "(c): xargs -P values for the raw docker runs (the best rate counts)")
	flag.IntVar(&cfg.tputRounds, "tput-rounds", 2, "(c): rounds (each: every xargs -P, then gofer); the best rate of each system counts")
	flag.IntVar(&cfg.tputParallelism, "tput-parallelism", 0, "(c): the pipeline's parallelism (0: -tput-m, i.e. every run at once)")
	flag.IntVar(&cfg.placeTasks, "place-tasks", 10, "(d): independent tasks per run")
	flag.IntVar(&cfg.placeClients, "place-clients", 32, "(d): closed-loop clients starting runs")
	flag.DurationVar(&cfg.placeWarm, "place-warmup", 2*time.Second, "(d): driven but not counted before the windows")
	flag.DurationVar(&cfg.placeWindow, "place-window", 10*time.Second, "(d): length of one measured window")
	flag.IntVar(&cfg.placeWindows, "place-windows", 2, "(d): windows per state (the best quiet one counts)")
	flag.IntVar(&cfg.preloadRuns, "preload-runs", 10000, "(d): finished runs in state before the second measurement (× -place-tasks tasks)")
	flag.DurationVar(&cfg.progressEvery, "progress", 10*time.Second, "(d): preload progress interval")
	flag.DurationVar(&cfg.snapSlot, "snap-slot", 40*time.Second, "(e): raft.snapshot_slot of the cluster (should exceed twice a snapshot's time)")
	flag.DurationVar(&cfg.snapWindow, "snap-window", 2*time.Second, "(e): length of one measured window")
	flag.IntVar(&cfg.snapCycles, "snap-cycles", 2, "(e): cycles of snapshot turns (3 × -snap-slot each) measured")
	flag.StringVar(&cfg.growthSteps, "growth-steps", "0,10000,100000,1000000", "(growth): finished tasks in state at each step, ascending (the first is the placements baseline)")
	flag.IntVar(&cfg.growthList, "growth-list", 50, "(growth): list-runs requests per step (the p50 counts)")
	flag.DurationVar(&cfg.growthWindow, "growth-window", 2*time.Second, "(growth): length of one placements window, after a warm-up of half of one (short: their runs add to the next step's state)")
	flag.IntVar(&cfg.growthWindows, "growth-windows", 2, "(growth): placements windows per step (the best quiet one counts)")
	flag.BoolVar(&cfg.skipTriggers, "skip-triggers", false, "skip the trigger accuracy benchmark")
	flag.BoolVar(&cfg.onlyTriggers, "only-triggers", false, "only the trigger accuracy benchmark: no etcd, no writes, no failover, no runs")
	flag.IntVar(&cfg.triggerTicks, "trigger-ticks", 120, "(triggers): one-second ticks measured")
	flag.Parse()

	if err := validate(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	os.Exit(run(cfg))
}

func validate(cfg *config) error {
	switch cfg.only {
	case "", "gofer", "etcd":
	default:
		return fmt.Errorf("-only must be gofer or etcd")
	}
	if cfg.onlyRuns && cfg.skipRuns {
		return fmt.Errorf("-only-runs and -skip-runs exclude each other")
	}
	if cfg.onlyRuns && cfg.only == "etcd" {
		return fmt.Errorf("-only-runs measures gofer; drop -only etcd")
	}
	if cfg.only == "etcd" {
		cfg.skipRuns = true
	}
	if cfg.onlyRuns {
		cfg.only, cfg.skipWrites, cfg.skipFailover = "gofer", true, true
	}
	if cfg.onlyTriggers && (cfg.skipTriggers || cfg.onlyRuns) {
		return fmt.Errorf("-only-triggers excludes -skip-triggers and -only-runs")
	}
	if cfg.onlyTriggers {
		cfg.only, cfg.skipWrites, cfg.skipFailover, cfg.skipRuns = "gofer", true, true, true
	}
	if cfg.only == "etcd" {
		cfg.skipTriggers = true
	}
	if !cfg.skipTriggers && cfg.triggerTicks < 1 {
		return fmt.Errorf("-trigger-ticks must be positive")
	}
	for _, p := range strings.Split(cfg.runsParts, ",") {
		if p != "" && !slices.Contains(allRunParts, p) && p != partSnapshots && p != partGrowth {
			return fmt.Errorf("-runs-parts: unknown part %q (want %s, %s or %s)", p, strings.Join(allRunParts, ","), partSnapshots, partGrowth)
		}
	}
	if !cfg.skipRuns && (cfg.dispatchN < 1 || cfg.stepN < 1 || cfg.tputM < 1 || cfg.tputRounds < 1 || cfg.placeTasks < 1 ||
		cfg.placeClients < 1 || cfg.placeWindows < 1 || cfg.placeWindow <= 0 || cfg.progressEvery <= 0) {
		return fmt.Errorf("-dispatch-n, -step-n, -tput-m, -tput-rounds, -place-tasks, -place-clients, -place-windows, -place-window and -progress must be positive")
	}
	if cfg.wantPart(partSnapshots) && (cfg.snapSlot < 100*time.Millisecond || cfg.snapWindow <= 0 || cfg.snapCycles < 1) {
		return fmt.Errorf("-snap-slot must be at least 100ms, -snap-window and -snap-cycles positive")
	}
	if cfg.wantPart(partGrowth) {
		if _, err := parseSteps(cfg.growthSteps); err != nil {
			return err
		}
		if cfg.growthList < 1 || cfg.growthWindow <= 0 || cfg.growthWindows < 1 {
			return fmt.Errorf("-growth-list, -growth-window and -growth-windows must be positive")
		}
	}
	if cfg.only != "etcd" {
		if cfg.goferBin == "" {
			return fmt.Errorf("set -gofer-bin or GOFER_BIN")
		}
		abs, err := filepath.Abs(cfg.goferBin)
		if err != nil {
			return err
		}
		cfg.goferBin = abs
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("gofer binary: %w", err)
		}
	}
	if cfg.only != "gofer" && !(cfg.skipWrites && cfg.skipFailover) {
		p, err := exec.LookPath(cfg.etcdBin)
		if err != nil {
			return fmt.Errorf("etcd binary: %w (apt-get install etcd-server)", err)
		}
		cfg.etcdBin = p
	}
	if cfg.runs < 1 || cfg.n1 < 1 || cfg.nHigh < 1 || cfg.high < 1 || cfg.etcdConns < 1 {
		return fmt.Errorf("-runs, -n1, -nhigh, -c and -etcd-conns must be positive")
	}
	return nil
}

// report writes to stdout and keeps a copy for the results file.
type report struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (r *report) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := fmt.Sprintf(format, args...)
	os.Stdout.WriteString(s)
	r.buf.WriteString(s)
}

func run(cfg config) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	workDir := cfg.workDir
	if workDir == "" {
		d, err := os.MkdirTemp("", "gofer-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		workDir = d
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	reg := newProcs(filepath.Join(workDir, "pids"))
	cleanupLabels.file = filepath.Join(workDir, "docker-labels")
	var cleanOnce sync.Once
	cleanup := func() {
		cleanOnce.Do(func() {
			reg.killAll()
			// After the gofer nodes are gone nothing starts containers:
			// remove what the raw runs and the clusters left behind.
			removeContainers()
			if !cfg.keep {
				os.RemoveAll(workDir)
			} else {
				fmt.Fprintf(os.Stderr, "bench: kept %s\n", workDir)
			}
		})
	}
	defer cleanup()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\nbench: %v: stopping every process the benchmark started\n", s)
		cancel()
		cleanup()
		os.Exit(130)
	}()

	rep := &report{}
	code, err := bench(ctx, cfg, reg, workDir, rep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		if code == 0 {
			code = 1
		}
	}
	if cfg.out != "" && rep.buf.Len() > 0 {
		if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err == nil {
			if err := os.WriteFile(cfg.out, []byte(rep.buf.String()), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
		}
	}
	return code
}

// sysResults is what the table needs from one system.
type sysResults struct {
	low, high       []runStats
	lowCPU, highCPU []cpuDelta
	failover        []failoverResult
	// failoverStop: the trials with a SIGSTOPped leader.
	failoverStop []failoverResult
}

func (r *sysResults) addFailover(f failoverFault, fr failoverResult) {
	if f == faultStop {
		r.failoverStop = append(r.failoverStop, fr)
	} else {
		r.failover = append(r.failover, fr)
	}
}

func bench(ctx context.Context, cfg config, reg *procs, workDir string, rep *report) (int, error) {
	payloads := makePayloads(1024, 256)
	// The write and failover clusters are started only when one of those
	// parts runs; the runs benchmarks start clusters of their own.
	kv := !(cfg.skipWrites && cfg.skipFailover)
	doEtcd, doGofer := kv && cfg.only != "gofer", kv && cfg.only != "etcd"

	rep.printf("gofer bench  %s  (%d CPUs, %s, load avg %s)\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.Version(), loadAvg())
	var etcdC *etcdCluster
	var goferC, walC *goferCluster
	var err error
	if doEtcd {
		rep.printf("starting etcd: 3 members on 127.0.0.1, --heartbeat-interval=%d --election-timeout=%d (%s)\n",
			etcdHeartbeatMS, etcdElectionMS, etcdVersion(cfg.etcdBin))
		etcdC, err = startEtcd(ctx, reg, cfg.etcdBin, filepath.Join(workDir, "etcd"), 3, payloads)
		if err != nil {
			return 1, err
		}
		defer etcdC.stop()
	}
	if doGofer {
		rep.printf("starting gofer: 3 nodes on 127.0.0.1, raft heartbeat_timeout=%s election_timeout=%s (%s)\n",
			cfg.goferHB, cfg.goferEl, cfg.goferBin)
		goferC, err = startGofer(ctx, reg, filepath.Join(workDir, "gofer"), 3, payloads, writeGoferOptions(cfg))
		if err != nil {
			return 1, err
		}
		defer goferC.stop()
		rep.printf("gofer: created %d namespaces; the measured write is PATCH /api/namespaces/{random id} {\"description\": <256 B>}\n", cfg.namespaces)
		if cfg.wal && !cfg.skipWrites {
			rep.printf("starting gofer-wal: 3 more nodes, the same settings with raft.log_store=wal (writes only)\n")
			walC, err = startGofer(ctx, reg, filepath.Join(workDir, "gofer-wal"), 3, payloads, writeGoferOptions(cfg, "GOFER_WEB_RAFT__LOG_STORE=wal"))
			if err != nil {
				return 1, fmt.Errorf("gofer-wal: %w", err)
			}
			defer walC.stop()
		}
	}
	allPIDs := func() []int { return clusterPIDs(etcdC, goferC, walC) }
	// The later stages (five nodes, runs, triggers) run alone: each stops
	// the write clusters first (stopping twice is harmless).
	stopWriteClusters := func() {
		if etcdC != nil {
			etcdC.stop()
		}
		if goferC != nil {
			goferC.stop()
		}
		if walC != nil {
			walC.stop()
		}
	}

	var gres, eres, wres sysResults
	if !cfg.skipWrites {
		rep.printf("\n== writes (256-byte payloads, to the leader; %d runs per configuration, alternating systems)\n", cfg.runs)
		var systems []writeSystem
		if doEtcd {
			systems = append(systems, etcdWriteSystem(ctx, cfg, "etcd", etcdC, &eres))
		}
		if doGofer {
			systems = append(systems, goferWriteSystem(ctx, "gofer", goferC, &gres))
		}
		if walC != nil {
			systems = append(systems, goferWriteSystem(ctx, "gofer-wal", walC, &wres))
		}
		if code, err := measureWrites(ctx, cfg, rep, systems, allPIDs); err != nil {
			return code, err
		}
	}

	if !cfg.skipFailover && cfg.trials > 0 {
		var cls []cluster
		var res []*sysResults
		if doEtcd {
			cls, res = append(cls, etcdC), append(res, &eres)
		}
		if doGofer {
			cls, res = append(cls, goferC), append(res, &gres)
		}
		for _, fault := range []failoverFault{faultKill, faultStop} {
			rep.printf("\n== failover (%s the leader → first successful write sent after the fault through a survivor; writers: one per survivor, %s per request)\n", fault, cfg.reqTimeout)
			for t := 0; t < cfg.trials; t++ {
				for i, cl := range cls {
					fr, err := failoverTrial(ctx, cl, fault, cfg.reqTimeout, cfg.failoverMax)
					if ctx.Err() != nil {
						return 130, ctx.Err()
					}
					if err != nil {
						rep.printf("  trial %d %-5s killed %s: ERROR %v\n", t+1, cl.Name(), fr.Killed, err)
						if fr.Took == 0 {
							res[i].addFailover(fault, fr)
							// The cluster may be unhealthy now; stop rather than
							// measure a broken cluster.
							return 1, fmt.Errorf("%s failover trial %d: %w", cl.Name(), t+1, err)
						}
					} else {
						rep.printf("  trial %d %-5s %s %s at %s → first write via %s after %s (%d failed attempts meanwhile)\n",
							t+1, cl.Name(), fault, fr.Killed, fr.KillAt.UTC().Format("15:04:05.000"), fr.Via, fr.Took.Round(time.Millisecond), fr.Failed)
					}
					res[i].addFailover(fault, fr)
				}
			}
		}
	}

	// The five-node writes, after the 3-node clusters are gone.
	var five *fiveResults
	if cfg.five && !cfg.skipWrites && (doEtcd || doGofer) {
		stopWriteClusters()
		five = &fiveResults{}
		code, err := benchFive(ctx, cfg, reg, workDir, rep, payloads, doEtcd, doGofer, five)
		if ctx.Err() != nil {
			return 130, ctx.Err()
		}
		if err != nil {
			// Still print what was measured.
			rep.printf("\nfive-node: FAILED: %v\n", err)
			summary, _ := table(cfg, gres, eres, wres, five, nil)
			rep.printf("\n%s", summary)
			return code, err
		}
	}

	// The runs benchmarks run alone: the write clusters are stopped first.
	var rres *runsResults
	if !cfg.skipRuns {
		stopWriteClusters()
		var err error
		rres, err = benchRuns(ctx, cfg, reg, workDir, rep)
		if ctx.Err() != nil {
			return 130, ctx.Err()
		}
		if err != nil {
			// Still print what was measured.
			rep.printf("\nruns: FAILED: %v\n", err)
			summary, _ := table(cfg, gres, eres, wres, five, rres)
			rep.printf("\n%s", summary)
			return 1, err
		}
	}

	// The trigger benchmark runs alone too, after the others.
	var tres *triggerResults
	if !cfg.skipTriggers {
		stopWriteClusters()
		var err error
		tres, err = benchTriggers(ctx, cfg, reg, workDir, rep)
		if ctx.Err() != nil {
			return 130, ctx.Err()
		}
		if err != nil {
			rep.printf("\ntriggers: FAILED: %v\n", err)
			return 1, err
		}
	}

	misses := 0
	if !(cfg.skipWrites && cfg.skipFailover && cfg.skipRuns) {
		summary, m := table(cfg, gres, eres, wres, five, rres)
		rep.printf("\n%s", summary)
		misses += m
	}
	misses += printTriggers(rep, cfg, tres)
	rep.printf("load avg at the end: %s\n", loadAvg())
	if cfg.strict && misses > 0 {
		return 3, nil
	}
	return 0, nil
}

func etcdVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "etcd ?"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// profiler fetches CPU profiles from gofer nodes that serve pprof (a
// profiling build; the product binary does not). If such a build also
// serves /debug/raftmetrics (timing samples, reset with ?reset=1), those
// are saved beside the profiles.
type profiler struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	msgs    []string
	metrics map[string]string // path -> URL, fetched after the run
}

func startProfiles(ctx context.Context, c *goferCluster, dir, tag string, seconds int) *profiler {
	p := &profiler{}
	li, err := c.Leader(ctx)
	if err != nil {
		p.msgs = append(p.msgs, "pprof: "+err.Error())
		return p
	}
	targets := []int{li, (li + 1) % len(c.nodes)}
	_ = os.MkdirAll(dir, 0o755)
	p.metrics = map[string]string{}
	for k, i := range targets {
		role := "leader"
		if k > 0 {
			role = "follower"
		}
		n := c.nodes[i]
		base := filepath.Join(dir, fmt.Sprintf("gofer-%s-%s-%s", tag, role, n.name))
		path := base + ".pprof"
		murl := fmt.Sprintf("http://%s/debug/raftmetrics", n.pprofAddr)
		if resp, err := http.Get(murl + "?reset=1"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.metrics[base+".metrics.txt"] = murl
			}
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", n.pprofAddr, seconds)
			resp, err := http.Get(url)
			if err != nil {
				p.note("pprof %s: %v", n.name, err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				p.note("pprof %s: %s", n.name, resp.Status)
				return
			}
			f, err := os.Create(path)
			if err != nil {
				p.note("pprof: %v", err)
				return
			}
			_, err = io.Copy(f, resp.Body)
			f.Close()
			if err != nil {
				p.note("pprof %s: %v", n.name, err)
				return
			}
			p.note("pprof: saved %s", path)
		}()
	}
	return p
}

func (p *profiler) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, fmt.Sprintf(format, args...))
}

func (p *profiler) wait(rep *report) {
	for path, url := range p.metrics {
		resp, err := http.Get(url)
		if err != nil {
			p.note("metrics: %v", err)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			err = os.WriteFile(path, b, 0o644)
		}
		if err != nil {
			p.note("metrics: %v", err)
			continue
		}
		p.note("metrics: saved %s", path)
	}
	p.wg.Wait()
	for _, m := range p.msgs {
		rep.printf("  %s\n", m)
	}
}
