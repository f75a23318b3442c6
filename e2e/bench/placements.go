package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// (d) control-plane placements per second: a 3-node cluster whose
// scheduler is the no-op engine (containers "run" instantly and exit 0),
// a pipeline of -place-tasks independent tasks, closed-loop clients that
// each start a run and start the next one when it completes. A placement
// is a TaskSchedule commit; they are counted from the leader's event
// stream by the leader's own stamp (scheduled_task_execution events
// emitted inside the window). Measured on an empty state, then again after
// -preload-runs runs (100,000 finished tasks by default) went through the
// same executor.

// placeWindow is one measured window.
type placeWindow struct {
	dur                   time.Duration
	placements, completed int
	runsCompleted         int
	rate                  float64 // placements/s
	cpu                   cpuDelta
	leaderCPU             float64 // leader CPU seconds
	noisy                 bool
	start                 time.Time
	snapshots             string // nodes that were snapshotting during the window
}

func (w placeWindow) String() string {
	per := 0.0
	if w.placements > 0 {
		per = 1e6 * w.cpu.ServerSec / float64(w.placements)
	}
	return fmt.Sprintf("%6.0f placements/s  (%d TaskSchedule in %s, %d tasks completed, %d runs completed)  | srv CPU %.0fµs/placement (leader %.0f%% of it), client %.2f cores, other load %.0f%%",
		w.rate, w.placements, w.dur.Round(time.Millisecond), w.completed, w.runsCompleted, per,
		100*w.leaderCPU/max(w.cpu.ServerSec, 1e-9), w.cpu.ClientSec/w.dur.Seconds(), w.cpu.ForeignPct)
}

// placeResults is what the table needs from (d).
type placeResults struct {
	tasks, clients        int
	before, after         []placeWindow
	bestBefore, bestAft   float64
	finishedBeforeAfter   int // finished tasks in state when the "after" windows began
	preloadRuns           int
	preloadDur            time.Duration
	preloadRate           float64 // tasks/s during the preload
	beforeDone, afterDone bool
}

// placer drives closed-loop clients against one pipeline.
type placer struct {
	rc        *runsCluster
	pipeline  string
	timeout   time.Duration
	started   atomic.Int64
	completed atomic.Int64
	errors    atomic.Int64
	errMu     sync.Mutex
	firstErr  error
}

func (p *placer) fail(err error) {
	p.errors.Add(1)
	p.errMu.Lock()
	if p.firstErr == nil {
		p.firstErr = err
	}
	p.errMu.Unlock()
}

// drive runs clients goroutines; each starts a run, waits until it is
// complete and starts the next while more() says so. It returns when
// every run it started has completed.
func (p *placer) drive(ctx context.Context, clients int, more func() bool) {
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && more() {
				run, err := p.rc.startRun(ctx, p.pipeline)
				if err != nil {
					p.fail(err)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				p.started.Add(1)
				tr := p.rc.events.track(p.pipeline, run)
				if err := p.rc.events.wait(ctx, tr, p.timeout); err != nil {
					p.fail(fmt.Errorf("run %d: %w", run, err))
					return
				}
				p.rc.events.forget(p.pipeline, run)
				p.completed.Add(1)
			}
		}()
	}
	wg.Wait()
}

// resetErr forgets the errors so far.
func (p *placer) resetErr() {
	p.errMu.Lock()
	p.firstErr = nil
	p.errors.Store(0)
	p.errMu.Unlock()
}

func (p *placer) err() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if p.firstErr == nil {
		return nil
	}
	return fmt.Errorf("%d error(s), first: %w", p.errors.Load(), p.firstErr)
}

// measure drives the clients through a warm-up and then consecutive
// windows; a window with more than -noisy % other load is followed by one
// more (up to -retry-noisy times).
func (p *placer) measure(ctx context.Context, cfg config, tag, fileTag string, rep *report) ([]placeWindow, error) {
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.drive(ctx, cfg.placeClients, func() bool { return !stop.Load() })
	}()
	defer func() {
		stop.Store(true)
		<-done
	}()
	if !sleepCtx(ctx, cfg.placeWarm) {
		return nil, ctx.Err()
	}
	all := p.rc.serverPIDs()
	leader := []int{p.rc.c.nodes[p.rc.leader].proc.pid()}
	var windows []placeWindow
	type span struct{ from, to int64 }
	var spans []span
	extra := 0
	for i := 0; i < cfg.placeWindows+extra; i++ {
		var prof *profiler
		if cfg.pprofDir != "" && i == 0 {
			prof = startProfiles(ctx, p.rc.c, cfg.pprofDir, "placements-"+fileTag, min(cfg.pprofSeconds, int(cfg.placeWindow/time.Second)))
		}
		c0, l0 := takeCPU(all, all), takeCPU(leader, all)
		completed0 := p.completed.Load()
		t0 := time.Now()
		if !sleepCtx(ctx, cfg.placeWindow) {
			return nil, ctx.Err()
		}
		t1 := time.Now()
		cpu, lcpu := c0.to(takeCPU(all, all)), l0.to(takeCPU(leader, all))
		w := placeWindow{dur: t1.Sub(t0), cpu: cpu, leaderCPU: lcpu.ServerSec, runsCompleted: int(p.completed.Load() - completed0)}
		w.noisy = cpu.ForeignPct > cfg.noisyPct
		if w.noisy && extra < cfg.retryNoisy {
			extra++
		}
		windows = append(windows, w)
		spans = append(spans, span{t0.UnixMilli(), t1.UnixMilli()})
		if prof != nil {
			prof.wait(rep)
		}
	}
	stop.Store(true)
	<-done
	if err := p.err(); err != nil {
		return nil, err
	}
	// Every run has completed, so the stream has delivered every event
	// emitted inside the windows.
	for i := range windows {
		w := &windows[i]
		w.placements = p.rc.events.countEmitted(evScheduledTask, spans[i].from, spans[i].to)
		w.completed = p.rc.events.countEmitted(evCompletedTask, spans[i].from, spans[i].to)
		w.rate = float64(w.placements) / (float64(spans[i].to-spans[i].from) / 1000)
		w.start = time.UnixMilli(spans[i].from)
		w.snapshots = p.rc.snapshotsDuring(w.start, time.UnixMilli(spans[i].to))
		note := ""
		if w.noisy {
			note = "  (noisy)"
		}
		if w.snapshots != "" {
			note += "  (raft snapshot on " + w.snapshots + ")"
		}
		rep.printf("  %s window %d [%s]: %s%s\n", tag, i+1, w.start.UTC().Format("15:04:05"), w, note)
	}
	return windows, nil
}

// best is the highest placement rate among the quiet windows (all windows
// if every one was noisy).
func best(ws []placeWindow) float64 {
	b, bq := 0.0, 0.0
	quiet := false
	for _, w := range ws {
		b = max(b, w.rate)
		if !w.noisy {
			quiet = true
			bq = max(bq, w.rate)
		}
	}
	if quiet {
		return bq
	}
	return b
}

// quietNote says which windows best chose from.
func quietNote(sets ...[]placeWindow) string {
	for _, ws := range sets {
		quiet := false
		for _, w := range ws {
			quiet = quiet || !w.noisy
		}
		if !quiet {
			return "a state had no quiet window, so its best noisy one counts"
		}
	}
	return "quiet windows only"
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func benchPlacements(ctx context.Context, cfg config, reg *procs, dir string, rep *report) (*placeResults, error) {
	res := &placeResults{tasks: cfg.placeTasks, clients: cfg.placeClients}
	rep.printf("\n== (d) placements: gofer 3 nodes, scheduler.engine=noop (no containers), no run concurrency limits; a pipeline of %d independent tasks;\n", cfg.placeTasks)
	rep.printf("   %d closed-loop clients (start a run on the leader, wait for completed_run, repeat); placements = TaskSchedule commits stamped inside each %s window, after %s warm-up\n",
		cfg.placeClients, cfg.placeWindow, cfg.placeWarm)
	rc, err := startRunsCluster(ctx, cfg, reg, dir, "noop", cfg.placeClients, false)
	if err != nil {
		return res, err
	}
	defer rc.stop()
	pipeline := "bench-place-" + benchID
	if err := deployIndependentTasks(ctx, rc, cfg, pipeline, "bench: placements"); err != nil {
		return res, err
	}
	rep.printf("   gofer cluster %s, leader %s\n", rc.clusterID, rc.c.nodes[rc.leader].name)
	p := &placer{rc: rc, pipeline: pipeline, timeout: cfg.runTimeout + 60*time.Second}

	res.before, err = p.measure(ctx, cfg, "empty state", "empty", rep)
	if err != nil {
		return res, err
	}
	res.bestBefore, res.beforeDone = best(res.before), true

	// Preload: bring the finished tasks in state up to preloadRuns × tasks.
	todo, dur, err := p.preload(ctx, cfg, int64(cfg.preloadRuns), rep, nil)
	if err != nil {
		return res, err
	}
	if todo > 0 {
		res.preloadRuns, res.preloadDur = int(todo), dur
		res.preloadRate = float64(todo*int64(cfg.placeTasks)) / dur.Seconds()
	}
	res.finishedBeforeAfter = rc.events.total(evCompletedTask)
	rep.printf("  %d finished tasks (%d runs) in state now\n", res.finishedBeforeAfter, p.completed.Load())
	res.after, err = p.measure(ctx, cfg, fmt.Sprintf("%dk finished", (res.finishedBeforeAfter+500)/1000), "preloaded", rep)
	if err != nil {
		return res, err
	}
	res.bestAft, res.afterDone = best(res.after), true
	rep.printf("  best window (%s): %.0f/s on an empty state, %.0f/s with %d finished tasks: %+.1f%%\n",
		quietNote(res.before, res.after), res.bestBefore, res.bestAft, res.finishedBeforeAfter, 100*(res.bestAft-res.bestBefore)/res.bestBefore)
	return res, nil
}

// snapshotsDuring names the nodes whose log shows a raft snapshot (from
// "starting snapshot" to "snapshot complete", log compaction included)
// overlapping [from, to]. A snapshot writes the whole state file and then
// deletes the compacted entries from the raft log, so it is the part of a
// node's work that grows with the state.
func (rc *runsCluster) snapshotsDuring(from, to time.Time) string {
	var names []string
	for _, n := range rc.c.nodes {
		b, err := os.ReadFile(n.proc.logPath)
		if err != nil {
			continue
		}
		var begin time.Time
		hit := false
		for _, line := range strings.Split(string(b), "\n") {
			at, ok := logTime(line)
			if !ok {
				continue
			}
			switch {
			case strings.Contains(line, "starting snapshot"):
				begin = at
			case strings.Contains(line, "snapshot complete") && !begin.IsZero():
				if begin.Before(to) && at.After(from) {
					hit = true
				}
				begin = time.Time{}
			}
		}
		if !begin.IsZero() && begin.Before(to) {
			hit = true // still snapshotting
		}
		if hit {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// logTime reads the timestamp that starts a gofer log line
// ("2026-11-29T17:36:52.578Z [INFO] …").
func logTime(line string) (time.Time, bool) {
	ts, _, ok := strings.Cut(line, " ")
	if !ok || len(ts) < 20 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	return t, err == nil
}

// deployIndependentTasks deploys the placement benchmarks' pipeline:
// -place-tasks tasks with no dependencies, each running "true", with no
// parallelism limit.
func deployIndependentTasks(ctx context.Context, rc *runsCluster, cfg config, id, name string) error {
	var tasks []taskConfig
	for i := 1; i <= cfg.placeTasks; i++ {
		tasks = append(tasks, task(fmt.Sprintf("task%02d", i), cfg.runsImage, []string{"true"}))
	}
	return rc.deploy(ctx, pipelineConfig{ID: id, Name: name, Parallelism: 0, Tasks: tasks})
}

// preload drives the clients until want runs of the pipeline have
// completed (counting the ones already measured), printing progress every
// -progress with status() appended when it is set. It returns how many runs
// it added and how long that took.
func (p *placer) preload(ctx context.Context, cfg config, want int64, rep *report, status func() string) (int64, time.Duration, error) {
	have := p.completed.Load()
	todo := want - have
	if todo <= 0 {
		return 0, 0, nil
	}
	rep.printf("  preload: %d more runs × %d tasks through the same executor (%d clients), so that %d finished tasks are in state\n",
		todo, cfg.placeTasks, cfg.placeClients, want*int64(cfg.placeTasks))
	var reserved atomic.Int64
	reserved.Store(have)
	t0 := time.Now()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(cfg.progressEvery)
		defer tick.Stop()
		last, lastAt := p.completed.Load(), time.Now()
		for {
			select {
			case <-stopProgress:
				return
			case now := <-tick.C:
				c := p.completed.Load()
				extra := ""
				if status != nil {
					extra = ", " + status()
				}
				rep.printf("  preload: %6d/%d runs complete (%d tasks), %.0f tasks/s over the last %s, %s elapsed%s\n",
					c, want, c*int64(cfg.placeTasks), float64((c-last)*int64(cfg.placeTasks))/now.Sub(lastAt).Seconds(),
					now.Sub(lastAt).Round(time.Second), now.Sub(t0).Round(time.Second), extra)
				last, lastAt = c, now
			}
		}
	}()
	p.drive(ctx, cfg.placeClients, func() bool { return reserved.Add(1) <= want })
	close(stopProgress)
	<-progressDone
	if err := p.err(); err != nil {
		return 0, 0, fmt.Errorf("preload: %w", err)
	}
	if ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	dur := time.Since(t0)
	rep.printf("  preload: done, %d runs (%d tasks) in %s = %.0f tasks/s\n", todo, todo*int64(cfg.placeTasks),
		dur.Round(time.Second), float64(todo*int64(cfg.placeTasks))/dur.Seconds())
	return todo, dur, nil
}
