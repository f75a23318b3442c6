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
// every 1 s; the latency of a tick is the run's committed creation time (the
// leader's clock in the raft entry that created it, the run's `created`)
// minus the tick's scheduled time (the run's GOFER_EXTENSION_SCHEDULED_TIME).
//
// The anchor, side by side: a crontab-style ticker in this process that at
// each whole second plus 500 ms (so it never contends with the extension's
// write) POSTs a run with an idempotency key, as a cron job running `curl`
// would, but without cron's one-minute resolution or a process start per
// tick. Its latency is measured the same way. The difference between the two
// is what the extension adds (its timer, the SDK, the trigger key check).
//
// Both talk to the leader first. The scheduler engine is noop: a run's
// containers are not what is measured, and Docker starting them would only
// add noise to the clock.

const (
	varScheduled  = "GOFER_EXTENSION_SCHEDULED_TIME"
	anchorOffset  = 500 * time.Millisecond
	triggerTarget = 50 * time.Millisecond
	triggerMaxTgt = 200 * time.Millisecond
)

type triggerResults struct {
	ticks, anchorTicks int
	ext, anchor        dist
	// anchorAnswered is scheduled → the anchor's POST answered 201 (after
	// the raft commit and apply), bounding what created leaves out.
	anchorAnswered dist
	missing, dups  int
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
	rc, err := startRunsCluster(ctx, tcfg, reg, dir, "noop", 4, false)
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
	if err := ext.start(); err != nil {
		return nil, err
	}
	defer ext.kill()

	// The anchor ticks for the same span.
	began := time.Now()
	span := time.Duration(cfg.triggerTicks+2) * time.Second
	var wg sync.WaitGroup
	anchorErrs := make(chan error, 1)
	var answered []time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		next := time.Now().Truncate(time.Second).Add(time.Second + anchorOffset)
		for next.Before(began.Add(span)) {
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
			next = next.Add(time.Second)
		}
	}()
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	deadline := time.NewTimer(span)
	defer deadline.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-progress.C:
			rep.printf("  %s of %s\n", time.Since(began).Round(time.Second), span)
		case <-deadline.C:
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

	res := &triggerResults{}
	extRuns, err := listRunTimes(ctx, rc, "ticks")
	if err != nil {
		return nil, err
	}
	anchorRuns, err := listRunTimes(ctx, rc, "anchor")
	if err != nil {
		return nil, err
	}
	var extLat, anchorLat []time.Duration
	seen := map[int64]bool{}
	for _, r := range extRuns {
		if seen[r.scheduledMs] {
			res.dups++
		}
		seen[r.scheduledMs] = true
		extLat = append(extLat, time.Duration(r.createdMs-r.scheduledMs)*time.Millisecond)
	}
	if len(extRuns) > 0 {
		first, last := extRuns[0].scheduledMs, extRuns[len(extRuns)-1].scheduledMs
		res.missing = int((last-first)/1000) + 1 - len(seen)
	}
	for _, r := range anchorRuns {
		anchorLat = append(anchorLat, time.Duration(r.createdMs-r.scheduledMs)*time.Millisecond)
	}
	res.ticks, res.anchorTicks = len(extRuns), len(anchorRuns)
	res.ext, res.anchor, res.anchorAnswered = newDist(extLat), newDist(anchorLat), newDist(answered)
	return res, nil
}

type runTime struct{ scheduledMs, createdMs int64 }

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
				out = append(out, runTime{scheduledMs: n, createdMs: r.Created})
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
	rep.printf("\n== trigger accuracy: scheduled tick → run committed (run.created − scheduled time)\n")
	rep.printf("%-34s %8s %8s %8s %8s %8s   %s\n", "", "ticks", "p50", "p99", "max", "min", "target")
	rep.printf("%-34s %8d %8s %8s %8s %8s   p99 ≤ %s %s, max ≤ %s %s\n", "interval extension (every 1s)", r.ticks,
		fmtMS(r.ext.p(0.5)), fmtMS(r.ext.p(0.99)), fmtMS(r.ext.p(1)), fmtMS(r.ext.p(0)),
		triggerTarget, mark(r.ext.p(0.99) <= triggerTarget), triggerMaxTgt, mark(len(r.ext) > 0 && r.ext.p(1) <= triggerMaxTgt))
	rep.printf("%-34s %8d %8s %8s %8s %8s   (anchor)\n", "ticker+POST anchor (no extension)", r.anchorTicks,
		fmtMS(r.anchor.p(0.5)), fmtMS(r.anchor.p(0.99)), fmtMS(r.anchor.p(1)), fmtMS(r.anchor.p(0)))
	rep.printf("%-34s %8d %8s %8s %8s %8s   (anchor: scheduled → 201 answered)\n", "  the anchor's POST answered", len(r.anchorAnswered),
		fmtMS(r.anchorAnswered.p(0.5)), fmtMS(r.anchorAnswered.p(0.99)), fmtMS(r.anchorAnswered.p(1)), fmtMS(r.anchorAnswered.p(0)))
	rep.printf("ticks fired %d (want ≥ %d %s), duplicate ticks %d (want 0 %s), ticks with no run %d (want 0 %s)\n",
		r.ticks, cfg.triggerTicks, mark(r.ticks >= cfg.triggerTicks), r.dups, mark(r.dups == 0), r.missing, mark(r.missing == 0))
	rep.printf("run.created is the leader's clock when it accepted the write (the command's meta), in whole ms, before the\n" +
		"raft commit; the anchor's answered row includes the commit and apply, bounding what created leaves out.\n")
	rep.printf("The anchor is a crontab-style job without cron: a timer to each whole second (+500 ms, so it never\n" +
		"contends with the extension's write) that POSTs a run with an idempotency key, as `curl` from cron would;\n" +
		"Debian's cron has one-minute resolution and forks a process per job, so it could not make 120 one-second ticks.\n")
	return misses
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
