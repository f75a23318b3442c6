package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The runs benchmarks (README "Runs"): Gofer's DAG executor on a 3-node
// cluster against raw `docker run --rm` of the same container, in the same
// run of this program:
//
//	(a) dispatch: start request → run complete, minus a raw docker run;
//	(b) step-to-step: task A exits → task B scheduled / its container starts;
//	(c) throughput: M runs at once vs `xargs -P` of raw docker runs;
//	(d) placements/s with the no-op scheduler, before and after 100k
//	    finished tasks are in state (placements.go);
//	(e) placements while a follower snapshots (snapshots.go) and the
//	    growth table (growth.go), only when -runs-parts names them.

// Parts of the runs benchmarks, for -runs-parts.
const (
	partDispatch   = "dispatch"
	partStep       = "step"
	partThroughput = "throughput"
	partPlacements = "placements"
)

var allRunParts = []string{partDispatch, partStep, partThroughput, partPlacements}

// benchID tags every raw container this process starts (label gofer.bench)
// and makes pipeline ids unique: container names carry the pipeline id but
// no cluster id, and other clusters (tests) may share the engine.
var benchID = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

const labelBench = "gofer.bench"

// cleanupLabels is every container label whose containers the benchmark
// removes at the end (and on Ctrl-C): the raw runs' gofer.bench=<id> and
// each cluster's gofer.cluster=<id>. The list is also written to a file
// that run.sh's trap reads, in case this program is killed.
type labelSet struct {
	mu     sync.Mutex
	labels []string
	file   string
}

var cleanupLabels = &labelSet{}

func (l *labelSet) add(label string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Contains(l.labels, label) {
		return
	}
	l.labels = append(l.labels, label)
	if l.file != "" {
		if f, err := os.OpenFile(l.file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, label)
			f.Close()
		}
	}
}

func (l *labelSet) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.labels)
}

// removeContainers force-removes every container carrying one of the
// cleanup labels. It runs after the gofer processes are gone, so nothing
// starts new ones meanwhile.
func removeContainers() {
	labels := cleanupLabels.all()
	if len(labels) == 0 {
		return
	}
	d, err := newDockerAPI()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, l := range labels {
		if n, err := d.removeByLabel(ctx, l); err != nil {
			fmt.Fprintf(os.Stderr, "bench: removing containers labelled %s: %v\n", l, err)
		} else if n > 0 {
			fmt.Fprintf(os.Stderr, "bench: removed %d leftover container(s) labelled %s\n", n, l)
		}
	}
}

// --- pipeline configs and the run API ---------------------------------------

type pipelineConfig struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Parallelism int64        `json:"parallelism"`
	Tasks       []taskConfig `json:"tasks"`
}

type taskConfig struct {
	ID        string            `json:"id"`
	Image     string            `json:"image"`
	Command   []string          `json:"command,omitempty"`
	DependsOn map[string]string `json:"depends_on"`
	Variables map[string]string `json:"variables"`
}

func task(id, image string, command []string, after ...string) taskConfig {
	deps := map[string]string{}
	for _, a := range after {
		deps[a] = "Success"
	}
	return taskConfig{ID: id, Image: image, Command: command, DependsOn: deps, Variables: map[string]string{}}
}

// runsCluster is a 3-node gofer cluster for the runs benchmarks, with an
// API client bound to the leader and the leader's event stream.
type runsCluster struct {
	c         *goferCluster
	leader    int
	base      string
	hc        *http.Client
	clusterID string
	events    *eventStream
	engine    string
}

// startRunsCluster starts 3 gofer nodes with the given scheduler engine
// and no run concurrency limits.
func startRunsCluster(ctx context.Context, cfg config, reg *procs, dir, engine string, clients int, keepEvents bool) (*runsCluster, error) {
	env := []string{
		"GOFER_WEB_SCHEDULER__ENGINE=" + engine,
		"GOFER_WEB_API__GLOBAL_RUN_CONCURRENCY_LIMIT=0",
		"GOFER_WEB_API__PIPELINE_RUN_CONCURRENCY_LIMIT=0",
	}
	if engine == "docker" {
		env = append(env, "GOFER_WEB_SCHEDULER__DOCKER__NETWORK="+cfg.runsNetwork)
	}
	if cfg.goferEnv != "" {
		env = append(env, strings.Split(cfg.goferEnv, ",")...)
	}
	c, err := startGofer(ctx, reg, dir, 3, nil, goferOptions{
		bin: cfg.goferBin, heartbeat: cfg.goferHB, election: cfg.goferEl, namespaces: 0,
		pprof: cfg.pprofDir != "", extraEnv: env,
	})
	if err != nil {
		return nil, err
	}
	rc := &runsCluster{c: c, hc: newHTTPClient(clients, 30*time.Second), engine: engine}
	fail := func(err error) (*runsCluster, error) {
		c.stop()
		return nil, err
	}
	if rc.leader, err = c.Leader(ctx); err != nil {
		return fail(err)
	}
	rc.base = c.nodes[rc.leader].url
	var h struct {
		ClusterID string `json:"cluster_id"`
	}
	status, body, _, err := c.do(ctx, healthClient, http.MethodGet, rc.base+"/api/system/health", nil)
	if err == nil && status == http.StatusOK {
		err = json.Unmarshal(body, &h)
	}
	if err != nil || h.ClusterID == "" {
		return fail(fmt.Errorf("cluster id from /api/system/health: %v %s", err, body))
	}
	rc.clusterID = h.ClusterID
	cleanupLabels.add("gofer.cluster=" + rc.clusterID)
	if rc.events, err = c.followEvents(ctx, rc.leader, keepEvents); err != nil {
		return fail(err)
	}
	return rc, nil
}

func (rc *runsCluster) stop() {
	if rc.events != nil {
		rc.events.close()
	}
	rc.hc.CloseIdleConnections()
	rc.c.stop()
}

// deploy registers the config as a new version and makes it live.
func (rc *runsCluster) deploy(ctx context.Context, pc pipelineConfig) error {
	body, _ := json.Marshal(map[string]any{"config": pc})
	base := rc.base + "/api/namespaces/default/pipelines/" + pc.ID
	status, rb, _, err := rc.c.do(ctx, rc.hc, http.MethodPost, base+"/configs", body)
	if err != nil {
		return err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return fmt.Errorf("register %s: %d %s", pc.ID, status, rb)
	}
	var reg struct { // upstream's answer: {"pipeline": {"metadata", "config"}}
		Pipeline struct {
			Config struct {
				Version int64 `json:"version"`
			} `json:"config"`
		} `json:"pipeline"`
	}
	if err := json.Unmarshal(rb, &reg); err != nil || reg.Pipeline.Config.Version == 0 {
		return fmt.Errorf("register %s: no version in %s", pc.ID, rb)
	}
	status, rb, _, err = rc.c.do(ctx, rc.hc, http.MethodPost, fmt.Sprintf("%s/configs/%d", base, reg.Pipeline.Config.Version), nil)
	if err != nil {
		return err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return fmt.Errorf("deploy %s v%d: %d %s", pc.ID, reg.Pipeline.Config.Version, status, rb)
	}
	return nil
}

// startRun starts a run of the pipeline's live version on the leader.
func (rc *runsCluster) startRun(ctx context.Context, pipeline string) (int64, error) {
	status, rb, _, err := rc.c.do(ctx, rc.hc, http.MethodPost, rc.base+"/api/namespaces/default/pipelines/"+pipeline+"/runs", []byte(`{"variables":{}}`))
	if err != nil {
		return 0, err
	}
	if status != http.StatusCreated {
		if len(rb) > 300 {
			rb = rb[:300]
		}
		return 0, fmt.Errorf("start %s: %d %s", pipeline, status, rb)
	}
	var out struct {
		Run struct {
			RunID int64 `json:"run_id"`
		} `json:"run"`
	}
	if err := json.Unmarshal(rb, &out); err != nil || out.Run.RunID == 0 {
		return 0, fmt.Errorf("start %s: no run id in %s", pipeline, rb)
	}
	return out.Run.RunID, nil
}

// apiRun is what GET …/runs/{id} says (epoch ms times).
type apiRun struct {
	State   string `json:"state"`
	Status  string `json:"status"`
	Created int64  `json:"created"`
	Started int64  `json:"started"`
	Ended   int64  `json:"ended"`
}

func (rc *runsCluster) getRun(ctx context.Context, pipeline string, run int64) (*apiRun, error) {
	status, rb, _, err := rc.c.do(ctx, rc.hc, http.MethodGet, fmt.Sprintf("%s/api/namespaces/default/pipelines/%s/runs/%d", rc.base, pipeline, run), nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("get run %d: %d %s", run, status, rb)
	}
	var out struct {
		Run apiRun `json:"run"`
	}
	return &out.Run, json.Unmarshal(rb, &out)
}

// containerKey keys the container of a task's first attempt in a
// dockerWatch. It is built from the labels the executor puts on every task
// container (gofer.pipeline, gofer.run, gofer.task, gofer.attempt), not from
// the container name, whose format is the executor's business.
func containerKey(pipeline string, run int64, taskID string) string {
	return fmt.Sprintf("task:%s/%d/%s/1", pipeline, run, taskID)
}

// goferContainerKey keys a container event: task containers of our
// clusters by their labels, raw runs by their gofer.bench.seq label, and
// "" for everyone else's.
func goferContainerKey(clusterIDs func() []string) func(map[string]string) string {
	return func(l map[string]string) string {
		if id := l["gofer.cluster"]; id != "" && slices.Contains(clusterIDs(), id) {
			return fmt.Sprintf("task:%s/%s/%s/%s", l["gofer.pipeline"], l["gofer.run"], l["gofer.task"], l["gofer.attempt"])
		}
		if l[labelBench] == benchID {
			return "raw:" + l[labelBench+".seq"]
		}
		return ""
	}
}

// --- raw docker runs --------------------------------------------------------

// rawArgs is the anchor's command line: the same image and command as the
// gofer task, on the same network mode, plus labels that identify the
// container in the event stream and for cleanup.
func rawArgs(cfg config, seq string) []string {
	return []string{"run", "--rm", "--network", cfg.runsNetwork, "--label", labelBench + "=" + benchID,
		"--label", labelBench + ".seq=" + seq, cfg.runsImage, "true"}
}

func rawCommandString(cfg config) string {
	return fmt.Sprintf("docker run --rm --network %s %s true", cfg.runsNetwork, cfg.runsImage)
}

// runCmd runs a command in its own process group (killed with the group
// when ctx ends or timeout passes, and by the kernel if this program dies)
// and returns how long it took. A timeout matters: a wedged engine leaves
// `docker run` waiting forever.
func runCmd(ctx context.Context, timeout time.Duration, name string, args []string, stdin string) (time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no exit after %s (is the Docker engine wedged? `docker ps -a` shows containers stuck in Created)", timeout)
		}
		return d, out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return d, out.String(), nil
}

// --- statistics ---------------------------------------------------------------

// dist is a sorted sample of durations.
type dist []time.Duration

func newDist(v []time.Duration) dist {
	s := slices.Clone(v)
	slices.Sort(s)
	return dist(s)
}

func (d dist) p(q float64) time.Duration { return percentile(d, q) }

func (d dist) mean() time.Duration {
	if len(d) == 0 {
		return 0
	}
	var s time.Duration
	for _, v := range d {
		s += v
	}
	return s / time.Duration(len(d))
}

func (d dist) String() string {
	if len(d) == 0 {
		return "n=0"
	}
	return fmt.Sprintf("n=%d  p50 %s  p90 %s  p99 %s  min %s  max %s  mean %s",
		len(d), ms(d.p(0.50)), ms(d.p(0.90)), ms(d.p(0.99)), ms(d[0]), ms(d[len(d)-1]), ms(d.mean()))
}

// phases collects named intervals per iteration and prints their medians:
// where the time of one dispatch goes.
type phases struct {
	order []string
	vals  map[string][]time.Duration
}

func newPhases() *phases { return &phases{vals: map[string][]time.Duration{}} }

// add records to−from under name when both ends are known.
func (p *phases) add(name string, from, to time.Time) {
	if from.IsZero() || to.IsZero() {
		return
	}
	if _, ok := p.vals[name]; !ok {
		p.order = append(p.order, name)
	}
	p.vals[name] = append(p.vals[name], to.Sub(from))
}

func (p *phases) get(name string) dist { return newDist(p.vals[name]) }

func (p *phases) print(rep *report, indent string) {
	for _, n := range p.order {
		d := newDist(p.vals[n])
		rep.printf("%s%-44s p50 %7s  p90 %7s  max %7s  (n=%d)\n", indent, n, ms(d.p(0.5)), ms(d.p(0.9)), ms(d[len(d)-1]), len(d))
	}
}

// --- the runs benchmarks ------------------------------------------------------

// runsResults is what the runs table needs.
type runsResults struct {
	network string
	// (a)
	dispatchDone          bool
	rawDispatch, goferRun dist
	// (b)
	stepDone           bool
	stepCtrl, stepFull dist // A exit → B scheduled (committed) / B container start
	stepBaseline       dist // raw back-to-back: A die → B start
	stepDecided        dist // A exit → B TaskSchedule stamped by the leader (ms resolution)
	stepExitReport     dist // the engine's own die → wait returns (probe)
	// (c)
	tputDone            bool
	tputGofer, tputRaw  float64 // containers/s (best round)
	tputRawP            int     // xargs -P that gave docker its best rate
	tputM, tputParallel int
	// (d)
	place *placeResults
	// (e), only with -runs-parts snapshots
	snaps *snapResults
	// the growth table, only with -runs-parts growth
	growth *growthResults
	// noise: containers other users of the engine started while we measured
	foreignContainers int
}

func (cfg config) wantPart(p string) bool {
	if cfg.skipRuns {
		return false
	}
	return slices.Contains(strings.Split(cfg.runsParts, ","), p)
}

// benchRuns runs the selected runs benchmarks.
func benchRuns(ctx context.Context, cfg config, reg *procs, workDir string, rep *report) (*runsResults, error) {
	res := &runsResults{network: cfg.runsNetwork}
	dockerParts := cfg.wantPart(partDispatch) || cfg.wantPart(partStep) || cfg.wantPart(partThroughput)
	if dockerParts {
		if err := benchDockerRuns(ctx, cfg, reg, workDir, rep, res); err != nil {
			return res, err
		}
	}
	if cfg.wantPart(partPlacements) {
		pr, err := benchPlacements(ctx, cfg, reg, filepath.Join(workDir, "gofer-noop"), rep)
		res.place = pr
		if err != nil {
			return res, err
		}
	}
	if cfg.wantPart(partSnapshots) {
		sr, err := benchSnapshots(ctx, cfg, reg, filepath.Join(workDir, "gofer-snap"), rep)
		res.snaps = sr
		if err != nil {
			return res, err
		}
	}
	if cfg.wantPart(partGrowth) {
		gr, err := benchGrowth(ctx, cfg, reg, filepath.Join(workDir, "gofer-growth"), rep)
		res.growth = gr
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func benchDockerRuns(ctx context.Context, cfg config, reg *procs, workDir string, rep *report, res *runsResults) error {
	d, err := newDockerAPI()
	if err != nil {
		return err
	}
	if err := d.ping(ctx); err != nil {
		return fmt.Errorf("the Docker engine does not answer (%v); the runs benchmarks need one (or use -skip-runs / -runs-parts placements)", err)
	}
	if !d.imagePresent(ctx, cfg.runsImage) {
		return fmt.Errorf("image %s is not present: run `make images` first", cfg.runsImage)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("the docker CLI is needed for the raw docker run anchor: %w", err)
	}
	cleanupLabels.add(labelBench + "=" + benchID)
	// One raw run first: an engine that cannot start a container fails the
	// part here, clearly, instead of in the middle of a measurement.
	if _, _, err := runCmd(ctx, cfg.runTimeout, "docker", rawArgs(cfg, "preflight"), ""); err != nil {
		return fmt.Errorf("preflight: %w", err)
	}

	rep.printf("\n== runs on Docker: gofer (3 nodes, scheduler.engine=docker, network %s, no run concurrency limits) vs raw `%s`\n",
		cfg.runsNetwork, rawCommandString(cfg))
	rep.printf("   docker engine %s; image %s; raw containers also carry --label %s=%s (cleanup and event matching)\n",
		d.version(ctx), cfg.runsImage, labelBench, benchID)
	var clusterIDs []string
	var idsMu sync.Mutex
	watch, err := d.watch(ctx, goferContainerKey(func() []string {
		idsMu.Lock()
		defer idsMu.Unlock()
		return clusterIDs
	}))
	if err != nil {
		return err
	}
	defer watch.close()
	foreign0 := watch.foreignStarts()
	defer func() { res.foreignContainers = watch.foreignStarts() - foreign0 }()

	rc, err := startRunsCluster(ctx, cfg, reg, filepath.Join(workDir, "gofer-docker"), "docker", max(cfg.tputM, 16), true)
	if err != nil {
		return err
	}
	defer rc.stop()
	idsMu.Lock()
	clusterIDs = append(clusterIDs, rc.clusterID)
	idsMu.Unlock()
	rep.printf("   gofer cluster %s, leader %s (events followed on the leader's /api/events/stream)\n", rc.clusterID, rc.c.nodes[rc.leader].name)

	if cfg.wantPart(partDispatch) {
		if err := benchDispatch(ctx, cfg, rc, watch, rep, res); err != nil {
			return fmt.Errorf("dispatch: %w", err)
		}
	}
	if cfg.wantPart(partStep) {
		if err := benchStep(ctx, cfg, rc, d, watch, rep, res); err != nil {
			return fmt.Errorf("step: %w", err)
		}
	}
	if cfg.wantPart(partThroughput) {
		if err := benchThroughput(ctx, cfg, rc, d, watch, rep, res); err != nil {
			return fmt.Errorf("throughput: %w", err)
		}
	}
	rep.printf("   other users of the engine started %d container(s) while these ran (noise)\n", watch.foreignStarts()-foreign0)
	if n, err := d.countByLabel(ctx, "gofer.cluster="+rc.clusterID); err == nil && n > 0 {
		rep.printf("   note: %d task container(s) of this cluster still exist (removed at the end)\n", n)
	}
	return nil
}

// waitGone waits until the container under key has been removed (so its
// removal does not overlap the next measurement).
func waitGone(w *dockerWatch, key string) {
	w.times(key, 3*time.Second, "destroy")
}

// dispatchOnce runs the 1-task pipeline once and returns start request →
// completed_run seen on the leader's stream.
func dispatchOnce(ctx context.Context, cfg config, rc *runsCluster, w *dockerWatch, pipeline string, ph *phases) (time.Duration, error) {
	t0 := time.Now()
	run, err := rc.startRun(ctx, pipeline)
	if err != nil {
		return 0, err
	}
	tr := rc.events.track(pipeline, run)
	if err := rc.events.wait(ctx, tr, cfg.runTimeout); err != nil {
		return 0, fmt.Errorf("run %d: %w", run, err)
	}
	end, _ := tr.first(evCompletedRun, "")
	if end.status != "successful" {
		return 0, fmt.Errorf("run %d ended %s", run, end.status)
	}
	name := containerKey(pipeline, run, "task")
	// The container's create, start and die precede the run's end, so
	// their events must be there: if they are not, the events are not
	// being matched (labels changed?) and every number below would be
	// wrong. Its destroy (the executor's Remove) follows the run's end.
	ct, ok := w.times(name, 5*time.Second, "create", "start", "die")
	if !ok {
		return 0, fmt.Errorf("run %d: no docker create/start/die events matched its task container (labels %s=%s etc.)", run, "gofer.pipeline", pipeline)
	}
	ct, _ = w.times(name, 2*time.Second, "destroy")
	if ph != nil {
		q, _ := tr.first(evQueuedRun, "")
		s, _ := tr.first(evStartedRun, "")
		ts, _ := tr.first(evScheduledTask, "task")
		tst, _ := tr.first(evStartedTask, "task")
		tc, _ := tr.first(evCompletedTask, "task")
		ph.add("request → queued_run (RunCreate committed)", t0, q.at)
		ph.add("queued_run → started_run (RunStart)", q.at, s.at)
		ph.add("started_run → scheduled_task (TaskSchedule)", s.at, ts.at)
		ph.add("scheduled_task → docker create", ts.at, ct.create)
		ph.add("docker create → docker start", ct.create, ct.start)
		ph.add("docker start → started_task (TaskRunning)", ct.start, tst.at)
		ph.add("docker start → docker die (the container)", ct.start, ct.die)
		ph.add("docker die → completed_task (TaskFinish)", ct.die, tc.at)
		ph.add("completed_task → completed_run (RunFinish)", tc.at, end.at)
		ph.add("(off the path) completed_run → docker destroy", end.at, ct.destroy)
	}
	rc.events.forget(pipeline, run)
	waitGone(w, name)
	w.forget(name)
	return end.at.Sub(t0), nil
}

// rawOnce runs the raw anchor once.
func rawOnce(ctx context.Context, cfg config, w *dockerWatch, seq string, ph *phases) (time.Duration, error) {
	t0 := time.Now()
	d, _, err := runCmd(ctx, cfg.runTimeout, "docker", rawArgs(cfg, seq), "")
	if err != nil {
		return 0, err
	}
	t1 := t0.Add(d)
	if ph != nil {
		ct, _ := w.times("raw:"+seq, 2*time.Second, "create", "start", "die", "destroy")
		ph.add("CLI exec → docker create", t0, ct.create)
		ph.add("docker create → docker start", ct.create, ct.start)
		ph.add("docker start → docker die (the container)", ct.start, ct.die)
		ph.add("docker die → docker destroy (--rm)", ct.die, ct.destroy)
		ph.add("docker destroy → CLI exit", ct.destroy, t1)
		w.forget("raw:" + seq)
	}
	return d, nil
}

func benchDispatch(ctx context.Context, cfg config, rc *runsCluster, w *dockerWatch, rep *report, res *runsResults) error {
	pipeline := "bench-dispatch-" + benchID
	if err := rc.deploy(ctx, pipelineConfig{ID: pipeline, Name: "bench: dispatch", Parallelism: 1,
		Tasks: []taskConfig{task("task", cfg.runsImage, []string{"true"})}}); err != nil {
		return err
	}
	order := "alternating (raw, gofer, gofer, raw, …) so both see the same machine"
	if !cfg.runsInterleave {
		order = "raw first, then gofer"
	}
	rep.printf("\n-- (a) dispatch: 1-task pipeline (%s true), start request → run complete on the leader's event stream; raw docker run timed from exec to exit; %d each after %d warm-up, %s\n",
		cfg.runsImage, cfg.dispatchN, cfg.dispatchWarm, order)
	for i := 0; i < cfg.dispatchWarm; i++ {
		if _, err := rawOnce(ctx, cfg, w, fmt.Sprintf("warm%d", i), nil); err != nil {
			return err
		}
		if _, err := dispatchOnce(ctx, cfg, rc, w, pipeline, nil); err != nil {
			return err
		}
	}
	gph, rph := newPhases(), newPhases()
	var raw, gof []time.Duration
	f0 := w.foreignStarts()
	doRaw := func(i int) error {
		d, err := rawOnce(ctx, cfg, w, fmt.Sprintf("a%d", i), rph)
		raw = append(raw, d)
		return err
	}
	doGofer := func() error {
		d, err := dispatchOnce(ctx, cfg, rc, w, pipeline, gph)
		gof = append(gof, d)
		return err
	}
	progress := func(i int) {
		if (i+1)%25 == 0 && i+1 < cfg.dispatchN {
			rep.printf("  … %d/%d\n", i+1, cfg.dispatchN)
		}
	}
	if cfg.runsInterleave {
		for i := 0; i < cfg.dispatchN; i++ {
			progress(i)
			first, second := func() error { return doRaw(i) }, doGofer
			if i%2 == 1 {
				first, second = second, first
			}
			if err := first(); err != nil {
				return err
			}
			if err := second(); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	} else {
		for i := 0; i < cfg.dispatchN; i++ {
			if err := doRaw(i); err != nil {
				return err
			}
		}
		for i := 0; i < cfg.dispatchN; i++ {
			if err := doGofer(); err != nil {
				return err
			}
		}
	}
	res.rawDispatch, res.goferRun, res.dispatchDone = newDist(raw), newDist(gof), true
	rep.printf("  raw docker run   %s\n", res.rawDispatch)
	rep.printf("  gofer dispatch   %s\n", res.goferRun)
	rep.printf("  difference       p50 %+.1fms  p99 %+.1fms   (other users of the engine started %d container(s) meanwhile)\n",
		msf(res.goferRun.p(0.5)-res.rawDispatch.p(0.5)), msf(res.goferRun.p(0.99)-res.rawDispatch.p(0.99)), w.foreignStarts()-f0)
	rep.printf("  where a raw docker run's time goes (docker event timestamps):\n")
	rph.print(rep, "    ")
	rep.printf("  where a gofer dispatch's time goes (event stream receipt on the leader + docker event timestamps):\n")
	gph.print(rep, "    ")
	return nil
}

func benchStep(ctx context.Context, cfg config, rc *runsCluster, dapi *dockerAPI, w *dockerWatch, rep *report, res *runsResults) error {
	pipeline := "bench-step-" + benchID
	if err := rc.deploy(ctx, pipelineConfig{ID: pipeline, Name: "bench: step to step", Parallelism: 1, Tasks: []taskConfig{
		task("first", cfg.runsImage, []string{"true"}),
		task("second", cfg.runsImage, []string{"true"}, "first"),
	}}); err != nil {
		return err
	}
	rep.printf("\n-- (b) step to step: a 2-task chain (a, then b on Success), %d runs; A exit = a's docker die event\n", cfg.stepN)
	var ctrl, full, decided []time.Duration
	ph := newPhases()
	f0 := w.foreignStarts()
	for i := 0; i < cfg.stepN+1; i++ {
		run, err := rc.startRun(ctx, pipeline)
		if err != nil {
			return err
		}
		tr := rc.events.track(pipeline, run)
		if err := rc.events.wait(ctx, tr, cfg.runTimeout); err != nil {
			return fmt.Errorf("run %d: %w", run, err)
		}
		if end, _ := tr.first(evCompletedRun, ""); end.status != "successful" {
			return fmt.Errorf("run %d ended %s", run, end.status)
		}
		na, nb := containerKey(pipeline, run, "first"), containerKey(pipeline, run, "second")
		ca, _ := w.times(na, 2*time.Second, "die")
		cb, _ := w.times(nb, 2*time.Second, "create", "start", "destroy")
		ac, _ := tr.first(evCompletedTask, "first")
		bs, _ := tr.first(evScheduledTask, "second")
		rc.events.forget(pipeline, run)
		w.forget(na)
		w.forget(nb)
		if i == 0 {
			continue // warm-up
		}
		if ca.die.IsZero() || cb.start.IsZero() || bs.at.IsZero() {
			return fmt.Errorf("run %d: missing timing (a die %v, b start %v, b scheduled %v)", run, ca.die, cb.start, bs.at)
		}
		ctrl = append(ctrl, bs.at.Sub(ca.die))
		full = append(full, cb.start.Sub(ca.die))
		decided = append(decided, time.UnixMilli(bs.emitted).Sub(ca.die.Truncate(time.Millisecond)))
		ph.add("a docker die → a completed_task (TaskFinish)", ca.die, ac.at)
		ph.add("a completed_task → b scheduled_task (TaskSchedule)", ac.at, bs.at)
		ph.add("b scheduled_task → b docker create", bs.at, cb.create)
		ph.add("b docker create → b docker start", cb.create, cb.start)
	}
	res.stepCtrl, res.stepFull, res.stepDecided, res.stepDone = newDist(ctrl), newDist(full), newDist(decided), true
	rep.printf("  A exit → B scheduled (TaskSchedule committed, seen on the leader; container start excluded)  %s\n", res.stepCtrl)
	rep.printf("  A exit → B scheduled (the leader's decision stamp, ms resolution)                             %s\n", res.stepDecided)
	rep.printf("  A exit → B container start (docker start event)                                              %s\n", res.stepFull)
	ph.print(rep, "    ")
	rep.printf("    (other users of the engine started %d container(s) meanwhile)\n", w.foreignStarts()-f0)
	if cfg.stepBaseline {
		var base []time.Duration
		for i := 0; i < cfg.stepN; i++ {
			sa, sb := fmt.Sprintf("b%da", i), fmt.Sprintf("b%db", i)
			if _, err := rawOnce(ctx, cfg, w, sa, nil); err != nil {
				return err
			}
			if _, err := rawOnce(ctx, cfg, w, sb, nil); err != nil {
				return err
			}
			ca, _ := w.times("raw:"+sa, 2*time.Second, "die")
			cb, _ := w.times("raw:"+sb, 2*time.Second, "start")
			w.forget("raw:" + sa)
			w.forget("raw:" + sb)
			if !ca.die.IsZero() && !cb.start.IsZero() {
				base = append(base, cb.start.Sub(ca.die))
			}
		}
		res.stepBaseline = newDist(base)
		rep.printf("  baseline: two raw docker runs back to back, A die → B start                                  %s\n", res.stepBaseline)
	}
	if cfg.stepProbe {
		var probe []time.Duration
		for i := 0; i < cfg.stepN; i++ {
			d, err := dapi.exitProbe(ctx, w, cfg.runsImage, cfg.runsNetwork, fmt.Sprintf("p%d", i))
			if err != nil {
				return fmt.Errorf("exit probe: %w", err)
			}
			probe = append(probe, d)
		}
		res.stepExitReport = newDist(probe)
		rep.printf("  floor: the engine's own exit report, die → wait(not-running) returns (API, no gofer)       %s\n", res.stepExitReport)
	}
	return nil
}

func benchThroughput(ctx context.Context, cfg config, rc *runsCluster, d *dockerAPI, w *dockerWatch, rep *report, res *runsResults) error {
	m := cfg.tputM
	par := cfg.tputParallelism
	if par <= 0 {
		par = m
	}
	pipeline := "bench-tput-" + benchID
	if err := rc.deploy(ctx, pipelineConfig{ID: pipeline, Name: "bench: throughput", Parallelism: int64(par),
		Tasks: []taskConfig{task("task", cfg.runsImage, []string{"true"})}}); err != nil {
		return err
	}
	var ps []int
	for _, f := range strings.Split(cfg.tputXargs, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 {
			return fmt.Errorf("-tput-xargs %q: want a list of positive numbers", cfg.tputXargs)
		}
		ps = append(ps, p)
	}
	rep.printf("\n-- (c) throughput: %d runs of the 1-task pipeline started at once (pipeline parallelism %d) vs `seq %d | xargs -P {%s} -I{} %s`; %d round(s), best of each\n",
		m, par, m, cfg.tputXargs, rawCommandString(cfg), cfg.tputRounds)
	res.tputM, res.tputParallel = m, par
	for round := 1; round <= cfg.tputRounds; round++ {
		for _, p := range ps {
			args := append([]string{"-P", strconv.Itoa(p), "-I{}", "docker"}, rawArgs(cfg, "tput")...)
			f0 := w.foreignStarts()
			dur, _, err := runCmd(ctx, cfg.runTimeout*time.Duration(1+m/p), "xargs", args, seqLines(m))
			if err != nil {
				return err
			}
			rate := float64(m) / dur.Seconds()
			rep.printf("  round %d raw  xargs -P %-2d  %d containers in %s = %.2f/s   (other containers meanwhile: %d)\n",
				round, p, m, dur.Round(time.Millisecond), rate, w.foreignStarts()-f0)
			if rate > res.tputRaw {
				res.tputRaw, res.tputRawP = rate, p
			}
		}
		f0 := w.foreignStarts()
		rate, wall, err := goferBurst(ctx, cfg, rc, pipeline, m)
		if err != nil {
			return err
		}
		rep.printf("  round %d gofer %d runs at once          in %s = %.2f/s   (other containers meanwhile: %d)\n",
			round, m, wall.Round(time.Millisecond), rate, w.foreignStarts()-f0)
		res.tputGofer = max(res.tputGofer, rate)
		// Let the executor remove the containers before the next round.
		_ = waitFor(30*time.Second, "task containers removed", func() error {
			n, err := d.countByLabel(ctx, "gofer.cluster="+rc.clusterID)
			if err == nil && n > 0 {
				err = fmt.Errorf("%d left", n)
			}
			return err
		})
	}
	res.tputDone = true
	rep.printf("  best: gofer %.2f/s, raw docker %.2f/s (xargs -P %d): %.2f×\n", res.tputGofer, res.tputRaw, res.tputRawP, res.tputGofer/res.tputRaw)
	return nil
}

func seqLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.String()
}

// goferBurst starts m runs at once and returns m / (first request → last
// run complete).
func goferBurst(ctx context.Context, cfg config, rc *runsCluster, pipeline string, m int) (float64, time.Duration, error) {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	runs := make([]int64, m)
	errs := make([]error, m)
	for i := 0; i < m; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			runs[i], errs[i] = rc.startRun(ctx, pipeline)
		}()
	}
	t0 := time.Now()
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, 0, err
		}
	}
	var last time.Time
	failed := 0
	for _, run := range runs {
		tr := rc.events.track(pipeline, run)
		if err := rc.events.wait(ctx, tr, cfg.runTimeout+time.Duration(m)*time.Second); err != nil {
			return 0, 0, fmt.Errorf("run %d: %w", run, err)
		}
		end, _ := tr.first(evCompletedRun, "")
		if end.status != "successful" {
			failed++
		}
		if end.at.After(last) {
			last = end.at
		}
		rc.events.forget(pipeline, run)
	}
	if failed > 0 {
		return 0, 0, fmt.Errorf("%d of %d runs did not succeed", failed, m)
	}
	wall := last.Sub(t0)
	return float64(m) / wall.Seconds(), wall, nil
}

func (rc *runsCluster) serverPIDs() []int {
	var out []int
	for _, n := range rc.c.nodes {
		out = append(out, n.proc.pid())
	}
	return out
}
