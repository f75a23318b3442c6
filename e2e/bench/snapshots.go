package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// (e) placements while a follower snapshots (-runs-parts snapshots; not in
// the default parts): the placements cluster of (d) with a short
// raft.snapshot_slot, preloaded with -preload-runs runs, then measured in
// consecutive -snap-window windows over -snap-cycles full cycles of
// snapshot turns (3 × slot each). Every node's log is past the threshold
// all along, so each follower snapshots in each of its turns (the leader
// in every other one: it waits for twice the threshold); each window is
// sorted by the raft snapshots that overlapped it (raft's own "starting
// snapshot" … "snapshot complete" log lines): none, a follower's, the
// leader's. The result is the mean rate of follower windows over the mean
// of quiet ones; the target is within 20%.

const partSnapshots = "snapshots"

type snapResults struct {
	stateBytes              int64
	quiet, follower, leader []placeWindow
}

func meanRate(ws []placeWindow) float64 {
	if len(ws) == 0 {
		return 0
	}
	s := 0.0
	for _, w := range ws {
		s += w.rate
	}
	return s / float64(len(ws))
}

func benchSnapshots(ctx context.Context, cfg config, reg *procs, dir string, rep *report) (*snapResults, error) {
	res := &snapResults{}
	env := []string{
		"GOFER_WEB_RAFT__SNAPSHOT_SLOT=" + cfg.snapSlot.String(),
		"GOFER_WEB_RAFT__SNAPSHOT_INTERVAL=1s",
	}
	ccfg := cfg
	ccfg.goferEnv = strings.TrimPrefix(strings.Join(env, ",")+","+cfg.goferEnv, ",")
	ccfg.goferEnv = strings.TrimSuffix(ccfg.goferEnv, ",")
	rep.printf("\n== (e) placements while a follower snapshots: the (d) cluster with raft.snapshot_slot=%s (a cycle of turns is %s), %d clients, %d-task runs\n",
		cfg.snapSlot, 3*cfg.snapSlot, cfg.placeClients, cfg.placeTasks)
	rc, err := startRunsCluster(ctx, ccfg, reg, dir, "noop", cfg.placeClients, false)
	if err != nil {
		return res, err
	}
	defer rc.stop()
	pipeline := "bench-snap-" + benchID
	if err := deployIndependentTasks(ctx, rc, cfg, pipeline, "bench: snapshots"); err != nil {
		return res, err
	}
	leaderName := rc.c.nodes[rc.leader].name
	rep.printf("   gofer cluster %s, leader %s\n", rc.clusterID, leaderName)
	p := &placer{rc: rc, pipeline: pipeline, timeout: cfg.runTimeout + 60*time.Second}

	want := int64(cfg.preloadRuns)
	t0 := time.Now()
	stateDB := filepath.Join(dir, leaderName, "state.db")
	if _, _, err := p.preload(ctx, cfg, want, rep, func() string { return "state.db " + mib(fileSize(stateDB)) }); err != nil {
		return res, err
	}
	res.stateBytes = fileSize(filepath.Join(dir, leaderName, "state.db"))
	rep.printf("  preload: %d runs (%d tasks) in %s; leader's state.db %s\n", want, want*int64(cfg.placeTasks),
		time.Since(t0).Round(time.Second), mib(res.stateBytes))

	mcfg := cfg
	mcfg.placeWindow = cfg.snapWindow
	mcfg.placeWindows = int(time.Duration(cfg.snapCycles) * 3 * cfg.snapSlot / cfg.snapWindow)
	mcfg.retryNoisy = 0
	mcfg.pprofDir = ""
	windows, err := p.measure(ctx, mcfg, "snap", "snapshots", rep)
	if err != nil {
		return res, err
	}
	for _, w := range windows {
		switch {
		case w.snapshots == "":
			res.quiet = append(res.quiet, w)
		case strings.Contains(","+w.snapshots+",", ","+leaderName+","):
			res.leader = append(res.leader, w)
		default:
			res.follower = append(res.follower, w)
		}
	}
	q, f, l := meanRate(res.quiet), meanRate(res.follower), meanRate(res.leader)
	rep.printf("  state.db %s; windows of %s: %d quiet %.0f/s, %d with a follower snapshotting %.0f/s, %d with the leader snapshotting %.0f/s\n",
		mib(res.stateBytes), cfg.snapWindow, len(res.quiet), q, len(res.follower), f, len(res.leader), l)
	if q > 0 && len(res.follower) > 0 {
		ratio := f / q
		rep.printf("  follower snapshotting / quiet = %.2f (target ≥ 0.80): %s\n", ratio, map[bool]string{true: "met", false: "MISSED"}[ratio >= 0.8])
	} else {
		rep.printf("  no ratio: need both quiet windows and follower windows (raise -snap-cycles, or the state is too small to see snapshots)\n")
	}
	if q > 0 && len(res.leader) > 0 {
		rep.printf("  leader snapshotting / quiet = %.2f\n", l/q)
	}
	return res, nil
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
