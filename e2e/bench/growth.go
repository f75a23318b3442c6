package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// growth (-runs-parts growth; not in the default parts): how the cost of
// running a cluster grows with the finished task executions in its state
// (issue 15's growth table). One 3-node noop-engine cluster (the (d)
// cluster and pipeline) is preloaded step by step up to each of
// -growth-steps finished tasks, and each step measures, in this order:
// the leader's state.db and the rest of its data dir (raft log and
// snapshots), the leader's RSS, the p50 of -growth-list GET list-runs
// requests, a user snapshot (GET /api/cluster/snapshot) saved to a file,
// the restore of that file (POST /api/cluster/snapshot) into a fresh
// single node, a SIGKILLed follower's restart until its health knows the
// leader and has applied the leader's index, and last a short placements
// measurement like (d)'s. The first step is the baseline of the
// placement ratio; the target is every step from 1M finished tasks on
// within 10% of it.

const partGrowth = "growth"

// growthTargetAt is where issue 15 sets the placement target: from 1M
// finished tasks on, within 10% of the empty state's rate.
const growthTargetAt = 1_000_000

// growthRow is one step's measurements.
type growthRow struct {
	finished           int64 // finished tasks in state when the step began
	stateDB, restBytes int64
	rssKB              int64
	majFaults          uint64 // the leader's major faults since it started
	listP50            time.Duration
	listNoisePct       float64
	snapBytes          int64
	snapSave, restore  time.Duration
	restart            time.Duration
	windows            []placeWindow
	rate               float64 // best placement window
	preloadErr         string  // requests that failed while preloading
}

type growthResults struct {
	rows []growthRow
}

// parseSteps reads -growth-steps: ascending finished-task counts.
func parseSteps(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n < 0 || (len(out) > 0 && n <= out[len(out)-1]) {
			return nil, fmt.Errorf("-growth-steps: want ascending non-negative counts, got %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func benchGrowth(ctx context.Context, cfg config, reg *procs, dir string, rep *report) (*growthResults, error) {
	res := &growthResults{}
	steps, err := parseSteps(cfg.growthSteps)
	if err != nil {
		return res, err
	}
	rep.printf("\n== growth: the (d) cluster (noop engine, %d-task runs, %d clients) measured at %s finished tasks;\n", cfg.placeTasks, cfg.placeClients, cfg.growthSteps)
	rep.printf("   per step: leader state.db and rest of data dir, leader VmRSS, p50 of %d list-runs GETs, snapshot save (GET /api/cluster/snapshot),\n", cfg.growthList)
	rep.printf("   its restore (POST /api/cluster/snapshot) into a fresh single node, SIGKILLed follower restart → healthy, placements (%d × %s windows)\n", cfg.growthWindows, cfg.growthWindow)
	rc, err := startRunsCluster(ctx, cfg, reg, filepath.Join(dir, "cluster"), "noop", cfg.placeClients, false)
	if err != nil {
		return res, err
	}
	defer rc.stop()
	pipeline := "bench-growth-" + benchID
	if err := deployIndependentTasks(ctx, rc, cfg, pipeline, "bench: growth"); err != nil {
		return res, err
	}
	leaderDir := filepath.Join(dir, "cluster", rc.c.nodes[rc.leader].name)
	stateDB := filepath.Join(leaderDir, "state.db")
	rep.printf("   gofer cluster %s, leader %s\n", rc.clusterID, rc.c.nodes[rc.leader].name)
	p := &placer{rc: rc, pipeline: pipeline, timeout: cfg.runTimeout + 60*time.Second}
	tasks := int64(cfg.placeTasks)
	for _, step := range steps {
		want := (step + tasks - 1) / tasks
		t0 := time.Now()
		_, _, perr := p.preload(ctx, cfg, want, rep, func() string { return "state.db " + mib1(fileSize(stateDB)) })
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		row := growthRow{finished: p.completed.Load() * tasks}
		if perr != nil {
			// A request that timed out (a stall of the leader) is a
			// finding of this step, not the end of the table: note it
			// with the raft snapshots that overlapped the preload.
			row.preloadErr = fmt.Sprintf("preload: %v (raft snapshots meanwhile on: %s)", perr, rc.snapshotsDuring(t0, time.Now()))
			rep.printf("  step %d: %s\n", step, row.preloadErr)
			p.resetErr()
		}
		rep.printf("  step %d: %d finished tasks in state\n", step, row.finished)
		row.stateDB = fileSize(stateDB)
		row.restBytes = dirSize(leaderDir) - row.stateDB
		row.rssKB = vmRSS(rc.c.nodes[rc.leader].proc.pid())
		row.majFaults = majorFaults(rc.c.nodes[rc.leader].proc.pid())
		if row.listP50, row.listNoisePct, err = listRunsP50(ctx, cfg, rc, pipeline); err != nil {
			return res, err
		}
		snapFile := filepath.Join(dir, fmt.Sprintf("backup-%d.snap", step))
		if row.snapSave, row.snapBytes, err = saveSnapshot(ctx, rc, snapFile); err != nil {
			return res, err
		}
		row.restore, err = restoreFresh(ctx, cfg, reg, filepath.Join(dir, fmt.Sprintf("restore-%d", step)), snapFile)
		os.Remove(snapFile)
		if err != nil {
			return res, err
		}
		if row.restart, err = restartFollower(ctx, rc); err != nil {
			return res, err
		}
		rep.printf("  step %d: state.db %s (+%s raft log/snapshots), leader RSS %s (%d major faults since start), list p50 %s, snapshot %s saved in %s, restored in %s, follower restart → healthy %s\n",
			step, mib1(row.stateDB), mib1(row.restBytes), mib1(row.rssKB<<10), row.majFaults, row.listP50.Round(10*time.Microsecond),
			mib1(row.snapBytes), row.snapSave.Round(time.Millisecond), row.restore.Round(time.Millisecond), row.restart.Round(time.Millisecond))
		mcfg := cfg
		// A warm-up of half a window: the windows' runs land in the next
		// step's state, so they stay short.
		// With -pprof, the first window of each step saves profiles of the
		// leader and a follower (gofer-placements-growth-<step>-*.pprof).
		mcfg.placeWindow, mcfg.placeWindows, mcfg.placeWarm = cfg.growthWindow, cfg.growthWindows, cfg.growthWindow/2
		if row.windows, err = p.measure(ctx, mcfg, fmt.Sprintf("%dk finished", (row.finished+500)/1000), fmt.Sprintf("growth-%d", step), rep); err != nil {
			return res, err
		}
		row.rate = best(row.windows)
		res.rows = append(res.rows, row)
	}
	return res, nil
}

// table prints one row per step; placements are the best quiet window
// and their ratio to the first step's.
func (g *growthResults) table(cfg config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "== growth summary (noop engine, %d-task runs; restore = into a fresh single node; restart = SIGKILLed follower → knows the leader and applied its index)\n", cfg.placeTasks)
	fmt.Fprintf(&b, "%10s %10s %10s %9s %9s %10s %10s %9s %9s %10s %8s  %s\n",
		"finished", "state.db", "raft+snap", "snap", "save", "restore", "restart", "RSS", "list p50", "placem/s", "vs 1st", "notes")
	for i, r := range g.rows {
		ratio := r.rate / max(g.rows[0].rate, 1e-9)
		var notes []string
		if r.preloadErr != "" {
			notes = append(notes, "STALL: "+r.preloadErr)
		}
		if r.listNoisePct > cfg.noisyPct {
			notes = append(notes, fmt.Sprintf("list NOISY (%.0f%% other load)", r.listNoisePct))
		}
		for _, w := range r.windows {
			if w.noisy {
				notes = append(notes, fmt.Sprintf("window NOISY (%.0f%%)", w.cpu.ForeignPct))
			}
			if w.snapshots != "" {
				notes = append(notes, "raft snapshot on "+w.snapshots)
			}
		}
		if i > 0 && r.finished >= growthTargetAt {
			verdict := "MISS"
			if ratio >= 0.9 {
				verdict = "PASS"
			}
			notes = append(notes, "target ≥ 0.90: "+verdict)
		}
		fmt.Fprintf(&b, "%10d %10s %10s %9s %8.2fs %9.2fs %9.2fs %9s %7.2fms %10.0f %8.2f  %s\n",
			r.finished, mib1(r.stateDB), mib1(r.restBytes), mib1(r.snapBytes), r.snapSave.Seconds(), r.restore.Seconds(),
			r.restart.Seconds(), mib1(r.rssKB<<10), msf(r.listP50), r.rate, ratio, strings.Join(notes, "; "))
	}
	return b.String()
}

// misses counts the rows from growthTargetAt finished tasks on that are
// slower than the first row by more than 10%.
func (g *growthResults) misses() int {
	n := 0
	for i, r := range g.rows {
		if i > 0 && r.finished >= growthTargetAt && r.rate < 0.9*g.rows[0].rate {
			n++
		}
	}
	return n
}

// listRunsP50 is the p50 of -growth-list sequential GETs of the
// pipeline's first page of runs (default page size) on the leader, and
// the other load on the machine over at least a second from their start
// (the requests alone are too short to sample /proc).
func listRunsP50(ctx context.Context, cfg config, rc *runsCluster, pipeline string) (time.Duration, float64, error) {
	url := rc.base + "/api/namespaces/default/pipelines/" + pipeline + "/runs"
	all := rc.serverPIDs()
	c0 := takeCPU(all, all)
	var took []time.Duration
	for i := 0; i < cfg.growthList; i++ {
		t0 := time.Now()
		status, body, _, err := rc.c.do(ctx, rc.hc, http.MethodGet, url, nil)
		if err != nil {
			return 0, 0, fmt.Errorf("list runs: %w", err)
		}
		if status != http.StatusOK {
			return 0, 0, fmt.Errorf("list runs: %d %.200s", status, body)
		}
		took = append(took, time.Since(t0))
	}
	if !sleepCtx(ctx, time.Until(c0.at.Add(time.Second))) {
		return 0, 0, ctx.Err()
	}
	return newDist(took).p(0.5), c0.to(takeCPU(all, all)).ForeignPct, nil
}

// saveSnapshot streams a user backup from the leader into path.
func saveSnapshot(ctx context.Context, rc *runsCluster, path string) (time.Duration, int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	t0 := time.Now()
	if err := streamAPI(ctx, rc.c, http.MethodGet, rc.base+"/api/cluster/snapshot", nil, f); err != nil {
		return 0, 0, fmt.Errorf("snapshot save: %w", err)
	}
	took := time.Since(t0)
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	return took, st.Size(), nil
}

// restoreFresh starts a single noop node in dir, times the restore of the
// backup at path into it, and stops and removes it.
func restoreFresh(ctx context.Context, cfg config, reg *procs, dir, path string) (time.Duration, error) {
	c, err := startGofer(ctx, reg, dir, 1, nil, goferOptions{bin: cfg.goferBin, heartbeat: cfg.goferHB, election: cfg.goferEl,
		extraEnv: []string{"GOFER_WEB_SCHEDULER__ENGINE=noop"}})
	if err != nil {
		return 0, fmt.Errorf("restore node: %w", err)
	}
	defer os.RemoveAll(dir)
	defer c.stop()
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	t0 := time.Now()
	if err := streamAPI(ctx, c, http.MethodPost, c.nodes[0].url+"/api/cluster/snapshot", f, io.Discard); err != nil {
		return 0, fmt.Errorf("snapshot restore: %w", err)
	}
	return time.Since(t0), nil
}

// streamClient has no overall timeout: a backup of a large state takes
// as long as it takes (the server bounds it).
var streamClient = &http.Client{}

// streamAPI sends body (octet-stream) and copies a 200 answer into out,
// without holding either in memory.
func streamAPI(ctx context.Context, c *goferCluster, method, url string, body io.Reader, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("gofer-api-version", "v0")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := streamClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}

// restartFollower SIGKILLs a follower, restarts it and times the restart
// until its health knows the leader and has applied the leader's index
// (taken while the follower is down; nothing writes meanwhile).
func restartFollower(ctx context.Context, rc *runsCluster) (time.Duration, error) {
	f := (rc.leader + 1) % len(rc.c.nodes)
	rc.c.Kill(f)
	lh, err := rc.c.health(ctx, rc.leader)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := rc.c.Restart(f); err != nil {
		return 0, err
	}
	// A fixed 20 ms poll (waitFor backs off to 250 ms) keeps the
	// resolution of the measurement.
	for deadline := t0.Add(10 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if err := exited(rc.c.nodes[f].proc); err != nil {
			return 0, err
		}
		h, err := rc.c.health(ctx, f)
		if err == nil && h.KnownLeader && h.AppliedIndex >= lh.AppliedIndex {
			return time.Since(t0), nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s not healthy 10m after its restart: %v %+v (leader applied %d)", rc.c.nodes[f].name, err, h, lh.AppliedIndex)
		}
	}
}

// vmRSS reads a process's resident set (kB) from /proc/<pid>/status.
func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// dirSize sums the sizes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func mib1(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
