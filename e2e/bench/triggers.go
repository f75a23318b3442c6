package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The trigger benchmark: on a healthy 3-node cluster, the built-in interval
// extension (`gofer service extension interval`, a host process with the
// environment the supervisor gives it, MIN_INTERVAL=1s) fires a subscription
// every 1 s. A tick's latency is the moment its run is known committed minus
// the tick's scheduled time (the run's GOFER_EXTENSION_SCHEDULED_TIME).
//
// "Known committed" is when the run's queued_run event arrives on the
// leader's event stream, which this program follows. The state machine emits
// that event in the same apply as the run, and a node applies an entry only
// after raft committed it, so the arrival is never earlier than the commit; it
// adds the leader's apply, the stream's wake-up and the loopback read. The
// other way to see the commit, a recording proxy between the extension and
// Gofer timing each 201, would put one more HTTP hop into the path being
// measured (and into the anchor's, to keep them alike); the stream observes
// both rows from the same place without touching either path. The run's
// `created` (the leader's clock when it accepted the write, before the raft
// commit) is printed too, as secondary information.
//
// The anchor, side by side: a crontab-style ticker in this process that at
// each whole second plus 500 ms (so it never contends with the extension's
// write) POSTs a run with an idempotency key, as a cron job running `curl`
// would, but without cron's one-minute resolution or a process start per
// tick. Its latency is measured the same way, from the same stream. The
// difference between the two is what the extension adds (its timer, the
// SDK, the trigger key check).
//
// Only ticks after the extension is ready are measured: the subscription
// exists before the extension starts (the leader does not call a host
// process), so while it boots a tick can fall due, and its restore fires the
// latest one late (catch_up=latest). The window is the -trigger-ticks whole
// seconds after its health check first answered; the anchor ticks in the
// same window.
//
// Both talk to the leader first. The scheduler engine is noop: a run's
// containers are not what is measured, and Docker starting them would only
// add noise to the clock.

const (
	varScheduled  = "GOFER_EXTENSION_SCHEDULED_TIME"
	anchorOffset  = 500 * time.Millisecond
	triggerTarget = 50 * time.Millisecond
	triggerMaxTgt = 200 * time.Millisecond
	// eventGrace is how long after the window's last tick the events of
	// its runs may still take to arrive before they count as missing.
	eventGrace = 5 * time.Second
)

// tickRows are one ticker's latencies: scheduled → the run's event seen on
// the leader's stream (committed and applied; the judged value), and
// scheduled → the run's created stamp (before the commit).
type tickRows struct {
	seen, created dist
	// missing ticks of the window with no run, dups ticks with more than
	// one run, noEvent runs whose event never arrived.
	missing, dups, noEvent int
}

type triggerResults struct {
	window  int // ticks in the measured window
	readyIn time.Duration
	// extension runs outside the window, not measured: scheduled before
	// it (a tick due while it booted) and after it (before it was stopped).
	before, after  int
	ext, anchor    tickRows
	anchorAnswered dist // scheduled → the anchor's POST answered 201
}

func benchTriggers(ctx context.Context, cfg config, reg *procs, workDir string, rep *report) (*triggerResults, error) {
	dir := filepath.Join(workDir, "gofer-triggers")
	rep.printf("\n== triggers (interval extension every 1s, %d ticks; 3 nodes, engine noop)\n", cfg.triggerTicks)
	// The interval extension measured is the host process below; the
	// standard extensions are not installed (nothing else ticks).
	tcfg := cfg
	// The interval extension is a host process the leader cannot call:
	// subscriptions get the built-in check only.
	tcfg.goferEnv = strings.TrimPrefix(cfg.goferEnv+",GOFER_WEB_EXTENSIONS__INSTALL_STD_EXTENSIONS=false,GOFER_WEB_EXTENSIONS__CALL_EXTENSIONS=false", ",")
	// keepEvents: every run event is kept with its arrival time.
	rc, err := startRunsCluster(ctx, tcfg, reg, dir, "noop", 4, true)
	if err != nil {
		return nil, err
	}
	defer rc.stop()

	post := func(path string, body any, want int) ([]byte, error) {
		b, _ := json.Marshal(body)
		status, rb, _, err := rc.c.do(ctx, rc.hc, http.MethodPost, rc.base+path, b)
		if err != nil {
			return nil, err
		}
		if status != want {
			return nil, fmt.Errorf("POST %s: %d %s", path, status, rb)
		}
		return rb, nil
	}
	rb, err := post("/api/extensions", map[string]any{"id": "interval", "image": "gofer/extension-interval:bench",
		"settings": map[string]string{"MIN_INTERVAL": "1s"}}, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	var inst struct {
		Token struct {
			Secret string `json:"secret"`
		} `json:"token"`
	}
	if err := json.Unmarshal(rb, &inst); err != nil || inst.Token.Secret == "" {
		return nil, fmt.Errorf("install: no token secret in %s", rb)
	}
	for _, p := range []string{"ticks", "anchor"} {
		if err := rc.deploy(ctx, pipelineConfig{ID: p, Name: p, Tasks: []taskConfig{task("tick", cfg.runsImage, []string{"true"})}}); err != nil {
			return nil, err
		}
	}
	// Subscribed before the extension starts: the leader does not call a
	// host process, so the extension learns it only by restoring at boot.
	if _, err := post("/api/namespaces/default/pipelines/ticks/subscriptions", map[string]any{"extension_id": "interval",
		"subscription_id": "every1s", "settings": map[string]string{"every": "1s"}}, http.StatusCreated); err != nil {
		return nil, err
	}

	// The extension, with the leader first in its host list.
	hosts := []string{strings.TrimPrefix(rc.base, "http://")}
	for i, n := range rc.c.nodes {
		if i != rc.leader {
			hosts = append(hosts, strings.TrimPrefix(n.url, "http://"))
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	ext := reg.newProc("extension-interval", cfg.goferBin, []string{"service", "extension", "interval"}, []string{
		"GOFER_EXTENSION_SYSTEM_ID=interval",
		"GOFER_EXTENSION_SYSTEM_SECRET=" + inst.Token.Secret,
		"GOFER_EXTENSION_SYSTEM_USE_TLS=false",
		"GOFER_EXTENSION_SYSTEM_GOFER_HOST=" + strings.Join(hosts, ","),
		fmt.Sprintf("GOFER_EXTENSION_SYSTEM_BINDADDRESS=127.0.0.1:%d", port),
		"GOFER_EXTENSION_SYSTEM_LOG_LEVEL=warn",
		"MIN_INTERVAL=1s",
	}, filepath.Join(dir, "extension-interval.log"))
	booted := time.Now()
	if err := ext.start(); err != nil {
		return nil, err
	}
	defer ext.kill()
	ready, err := waitExtensionReady(ctx, ext, port)
	if err != nil {
		return nil, err
	}
	res := &triggerResults{window: cfg.triggerTicks, readyIn: ready.Sub(booted)}

	// The window: the first whole second after ready, and the next ones.
	first := ready.Truncate(time.Second).Add(time.Second)
	last := first.Add(time.Duration(cfg.triggerTicks-1) * time.Second)
	rep.printf("  extension ready after %s; measuring ticks %s … %s\n", res.readyIn.Round(time.Millisecond),
		first.UTC().Format("15:04:05"), last.UTC().Format("15:04:05"))

	// The anchor ticks in the same window, half a second after each tick.
	var wg sync.WaitGroup
	anchorErrs := make(chan error, 1)
	var answered []time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		for next := first.Add(anchorOffset); !next.After(last.Add(anchorOffset)); next = next.Add(time.Second) {
			t := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			body := fmt.Sprintf(`{"variables":{%q:%q}}`, varScheduled, strconv.FormatInt(next.UnixMilli(), 10))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rc.base+"/api/namespaces/default/pipelines/anchor/runs", strings.NewReader(body))
			req.Header.Set("gofer-api-version", "v0")
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+rc.c.token)
			req.Header.Set("Idempotency-Key", "anchor:"+strconv.FormatInt(next.Unix(), 10))
			resp, err := rc.hc.Do(req)
			if err == nil {
				answered = append(answered, time.Since(next))
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					err = fmt.Errorf("anchor run: %d", resp.StatusCode)
				}
			}
			if err != nil {
				select {
				case anchorErrs <- err:
				default:
				}
			}
		}
	}()
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	end := time.NewTimer(time.Until(last.Add(anchorOffset + time.Second)))
	defer end.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-progress.C:
			rep.printf("  %s of %s\n", time.Since(first).Round(time.Second), last.Sub(first)+time.Second)
		case <-end.C:
			break wait
		}
	}
	wg.Wait()
	ext.kill()
	select {
	case err := <-anchorErrs:
		return nil, err
	default:
	}

	inWindow := func(ms int64) bool { return ms >= first.UnixMilli() && ms <= last.Add(anchorOffset).UnixMilli() }
	extRuns, err := listRunTimes(ctx, rc, "ticks")
	if err != nil {
		return nil, err
	}
	anchorRuns, err := listRunTimes(ctx, rc, "anchor")
	if err != nil {
		return nil, err
	}
	var measured []runTime
	for _, r := range extRuns {
		switch {
		case inWindow(r.scheduledMs):
			measured = append(measured, r)
		case r.scheduledMs < first.UnixMilli():
			res.before++
		default:
			res.after++
		}
	}
	// Duplicates anywhere count, not only in the window.
	res.ext.dups = dupTicks(extRuns)
	var extOK, anchorOK []runTime
	if extOK, res.ext.noEvent, err = withEvents(ctx, rc, "ticks", measured, last.Add(eventGrace)); err != nil {
		return nil, err
	}
	if anchorOK, res.anchor.noEvent, err = withEvents(ctx, rc, "anchor", anchorRuns, last.Add(anchorOffset+eventGrace)); err != nil {
		return nil, err
	}
	res.ext.seen, res.ext.created = latencies(extOK)
	res.anchor.seen, res.anchor.created = latencies(anchorOK)
	res.ext.missing = cfg.triggerTicks - distinctTicks(measured)
	res.anchor.dups = dupTicks(anchorRuns)
	res.anchor.missing = cfg.triggerTicks - distinctTicks(anchorRuns)
	res.anchorAnswered = newDist(answered)
	return res, nil
}

// waitExtensionReady polls the extension's health route, which the SDK
// serves only after it restored its subscriptions, and returns when it
// first answered.
func waitExtensionReady(ctx context.Context, ext *proc, port int) (time.Time, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d/api/health", port)
	hc := &http.Client{Timeout: time.Second}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		if err := exited(ext); err != nil {
			return time.Time{}, err
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-timeout.C:
			return time.Time{}, fmt.Errorf("the interval extension was not healthy within 30s (log: %s)", ext.logPath)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// withEvents fills in each run's queued_run arrival on the leader's
// stream, waiting until by for events still on their way; it returns the
// runs that have one and how many never got one.
func withEvents(ctx context.Context, rc *runsCluster, pipeline string, runs []runTime, by time.Time) ([]runTime, int, error) {
	for {
		var ok []runTime
		for _, r := range runs {
			if e, found := rc.events.track(pipeline, r.runID).first(evQueuedRun, ""); found {
				r.seen = e.at
				ok = append(ok, r)
			}
		}
		if len(ok) == len(runs) || time.Now().After(by) {
			return ok, len(runs) - len(ok), streamErr(rc.events)
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// streamErr is why the event stream ended early, nil while it runs.
func streamErr(s *eventStream) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func latencies(runs []runTime) (seen, created dist) {
	var s, c []time.Duration
	for _, r := range runs {
		s = append(s, r.seen.Sub(time.UnixMilli(r.scheduledMs)))
		c = append(c, time.Duration(r.createdMs-r.scheduledMs)*time.Millisecond)
	}
	return newDist(s), newDist(c)
}

func distinctTicks(runs []runTime) int {
	seen := map[int64]bool{}
	for _, r := range runs {
		seen[r.scheduledMs] = true
	}
	return len(seen)
}

func dupTicks(runs []runTime) int { return len(runs) - distinctTicks(runs) }

type runTime struct {
	runID                  int64
	scheduledMs, createdMs int64
	seen                   time.Time // its queued_run event arrived (withEvents)
}

// listRunTimes reads every run of the pipeline: its scheduled time (the
// variable, unix seconds from the extension, unix ms from the anchor) and
// its committed creation time, oldest first.
func listRunTimes(ctx context.Context, rc *runsCluster, pipeline string) ([]runTime, error) {
	var out []runTime
	for offset := 0; ; offset += 500 {
		status, rb, _, err := rc.c.do(ctx, rc.hc, http.MethodGet, fmt.Sprintf("%s/api/namespaces/default/pipelines/%s/runs?limit=500&offset=%d", rc.base, pipeline, offset), nil)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("list runs of %s: %d %s", pipeline, status, rb)
		}
		var page struct {
			Runs []struct {
				RunID     int64 `json:"run_id"`
				Created   int64 `json:"created"`
				Variables []struct {
					Key   string `json:"key"`
					Value string `json:"value"`
				} `json:"variables"`
			} `json:"runs"`
		}
		if err := json.Unmarshal(rb, &page); err != nil {
			return nil, err
		}
		for _, r := range page.Runs {
			for _, v := range r.Variables {
				if v.Key != varScheduled {
					continue
				}
				n, err := strconv.ParseInt(v.Value, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("run of %s: %s=%q", pipeline, varScheduled, v.Value)
				}
				if n < 1e11 { // unix seconds (the extension)
					n *= 1000
				}
				out = append(out, runTime{runID: r.RunID, scheduledMs: n, createdMs: r.Created})
			}
		}
		if len(page.Runs) < 500 {
			break
		}
	}
	slices.SortFunc(out, func(a, b runTime) int { return int(a.scheduledMs - b.scheduledMs) })
	return out, nil
}

// printTriggers prints the table against the targets; it returns the
// number of targets missed.
func printTriggers(rep *report, cfg config, r *triggerResults) int {
	if r == nil {
		return 0
	}
	misses := 0
	mark := func(ok bool) string {
		if ok {
			return "ok"
		}
		misses++
		return "MISSED"
	}
	row := func(name string, d dist, note string) {
		rep.printf("%-36s %6d %8s %8s %8s %8s   %s\n", name, len(d), fmtMS(d.p(0.5)), fmtMS(d.p(0.99)), fmtMS(d.p(1)), fmtMS(d.p(0)), note)
	}
	rep.printf("\n== trigger accuracy: scheduled tick → run committed (its queued_run event seen on the leader's stream)\n")
	rep.printf("%-36s %6s %8s %8s %8s %8s   %s\n", "", "ticks", "p50", "p99", "max", "min", "target")
	row("interval extension (every 1s)", r.ext.seen, fmt.Sprintf("p99 ≤ %s %s, max ≤ %s %s", triggerTarget,
		mark(len(r.ext.seen) > 0 && r.ext.seen.p(0.99) <= triggerTarget), triggerMaxTgt, mark(len(r.ext.seen) > 0 && r.ext.seen.p(1) <= triggerMaxTgt)))
	row("ticker+POST anchor (no extension)", r.anchor.seen, "(anchor)")
	rep.printf("secondary:\n")
	row("  extension: run.created", r.ext.created, "(leader's stamp, before the commit)")
	row("  anchor: run.created", r.anchor.created, "(leader's stamp, before the commit)")
	row("  anchor: its POST answered 201", r.anchorAnswered, "(after the leader's commit and apply)")
	rep.printf("window: %d ticks from the first whole second after the extension was ready (%s after its start);\n"+
		"  extension runs outside the window, not measured: %d scheduled before it (due while it booted), %d after it\n",
		r.window, r.readyIn.Round(time.Millisecond), r.before, r.after)
	rep.printf("extension: ticks with no run %d (want 0 %s), duplicate runs %d (want 0 %s), runs whose event never came %d (want 0 %s)\n",
		r.ext.missing, mark(r.ext.missing == 0), r.ext.dups, mark(r.ext.dups == 0), r.ext.noEvent, mark(r.ext.noEvent == 0))
	rep.printf("anchor:    ticks with no run %d, duplicate runs %d, runs whose event never came %d\n",
		r.anchor.missing, r.anchor.dups, r.anchor.noEvent)
	rep.printf("Committed = the run's queued_run event arrived on the leader's event stream (read by this program): the\n" +
		"state machine emits it in the apply that creates the run, after raft committed the entry, so it is an upper\n" +
		"bound of the commit (it adds the leader's apply, the stream's wake-up and a loopback read). Chosen over a\n" +
		"recording proxy in front of Gofer, which would add an HTTP hop to the very path measured; the stream sees\n" +
		"both rows from one place. run.created is the leader's clock when it accepted the write, before the commit.\n")
	rep.printf("The anchor is a crontab-style job without cron: a timer to each whole second (+500 ms, so it never\n" +
		"contends with the extension's write) that POSTs a run with an idempotency key, as `curl` from cron would;\n" +
		"Debian's cron has one-minute resolution and forks a process per job, so it could not make 120 one-second ticks.\n")
	return misses
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
