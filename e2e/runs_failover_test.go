package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/scheduler"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestRunsFailoverLeaderSIGKILLWhileTasksRun (G5–G8): a three-node cluster
// runs pipelines of multi-second tasks while its leader is SIGKILLed again
// and again (and restarted), with runs started between the kills. Docker is
// watched the whole time, through its event stream and a label scan every
// 200 ms. Afterwards:
//   - every run the API acknowledged exists, once, and is complete (G5);
//   - no task attempt ever had two containers ("0 task
//     attempts with two containers", stricter than G6's "live"), and every
//     container belongs to an attempt the API reports;
//   - runs succeed unless a task was lost, and a lost attempt was retried
//     or failed its run with reason lost;
//   - a successful attempt's container did start and exit 0, and the
//     task's log is whole, across the leader changes;
//   - no container is left 60 s after quiescence (G7);
//   - no container labelled with a killed leader's term was created after
//     it died (G8, loosely: the engine may finish a call in flight).
func TestRunsFailoverLeaderSIGKILLWhileTasksRun(t *testing.T) {
	// Debug logs: what each leader decided, should this fail.
	rc := runsNewCluster(t, 3, "GOFER_WEB_SERVER__LOG_LEVEL=debug")
	w := runsWatchDocker(t, rc.ID)
	defer w.stop()
	defer func() {
		if t.Failed() {
			runsKeepTimeline(t, w.snapshot(), w.kills)
		}
	}()
	ctx := context.Background()

	const p = "runs-failover"
	retried := func(tc *sdk.TaskConfig) *sdk.TaskConfig {
		tc.Retries, tc.RetryBackoff = 1, "200ms"
		return tc
	}
	tasks := []string{"alpha", "beta", "gamma"}
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "failover", Tasks: []*sdk.TaskConfig{
		retried(runsSh("alpha", "echo alpha started; sleep 2; echo alpha done")),
		retried(runsSh("beta", "echo beta started; sleep 3; echo beta done")),
		retried(runsAfter(runsSh("gamma", "echo gamma started; sleep 2; echo gamma done"), sdk.RequiredParentStatusSuccess, "alpha")),
	}})

	// Every start carries its own idempotency key and is retried with it
	// until acknowledged, so each key must end up as exactly one run.
	acked := map[string]int64{}
	seq := 0
	start := func(n int) {
		for range n {
			seq++
			key := fmt.Sprintf("runs-failover-%d", seq)
			WaitFor(t, 60*time.Second, func() error {
				r, err := rc.cl.StartRunWithKey(ctx, p, key, nil)
				if err != nil {
					return fmt.Errorf("start run with key %s: %w", key, err)
				}
				acked[key] = r.RunID
				return nil
			})
		}
	}
	// inFlight counts tasks that are scheduled or running, per the leader.
	inFlight := func() int {
		n := 0
		runs, err := rc.cl.ListRuns(ctx, p, client.Page{Limit: 1000})
		if err != nil {
			return 0
		}
		for _, r := range runs {
			if r.State != model.RunStateRunning {
				continue
			}
			list, _ := rc.cl.ListTasks(ctx, p, r.RunID)
			for _, te := range list {
				if te.State == model.TaskStateScheduled || te.State == model.TaskStateRunning {
					n++
				}
			}
		}
		return n
	}

	start(10)
	// Each kill lands at a different phase of the tasks' lives.
	delays := []time.Duration{1500 * time.Millisecond, 600 * time.Millisecond, 2500 * time.Millisecond, 1100 * time.Millisecond}
	for i, delay := range delays {
		time.Sleep(delay)
		var busy int
		WaitFor(t, 30*time.Second, func() error {
			if busy = inFlight(); busy == 0 {
				return fmt.Errorf("no task in flight")
			}
			return nil
		})
		old := rc.Leader()
		w.killed(old)
		old.Kill()
		leader := rc.Leader(old)
		t.Logf("kill %d: SIGKILLed leader %s with %d tasks in flight; %s took over", i+1, old.Name, busy, leader.Name)
		start(2) // while the killed node is down
		old.Start()
		rc.WaitForMembers(3)
		start(3)
	}
	lastRestart := time.Now()

	// G5: every acknowledged run reaches a terminal state.
	deadline := time.Now().Add(3 * time.Minute)
	for _, id := range acked {
		rc.wait(t, p, id, time.Until(deadline))
	}
	quiet := time.Now()
	t.Logf("%d runs started; all complete %s after the last restart", len(acked), quiet.Sub(lastRestart).Round(time.Millisecond))

	// 0 runs lost, none doubled: one run per key, and no other run.
	runs, err := rc.cl.ListRuns(ctx, p, client.Page{Limit: 1000})
	if err != nil {
		t.Fatalf("list runs: %v", err)
	}
	byID := map[int64]*model.Run{}
	for _, r := range runs {
		byID[r.RunID] = r
	}
	ids := map[int64]string{}
	for key, id := range acked {
		if prev, dup := ids[id]; dup {
			t.Errorf("keys %s and %s were both answered with run %d", prev, key, id)
		}
		ids[id] = key
		r := byID[id]
		if r == nil {
			t.Errorf("run %d (key %s) was acknowledged but does not exist", id, key)
			continue
		}
		if r.IdempotencyKey != key {
			t.Errorf("run %d carries key %q, want %q", id, r.IdempotencyKey, key)
		}
		if r.State != model.RunStateComplete {
			t.Errorf("run %d is %s, not complete", id, r.State)
		}
	}
	if len(runs) != len(acked) {
		t.Errorf("%d runs exist for %d acknowledged starts: a retried start made a second run", len(runs), len(acked))
	}

	// Outcomes, attempts and logs, from the API.
	type attemptKey struct {
		run     int64
		task    string
		attempt int
	}
	apiAttempts := map[attemptKey]model.Attempt{}
	lost, lostRetried, lostFailedRuns := 0, 0, 0
	for _, r := range runs {
		tasksOf := rc.tasks(t, p, r.RunID)
		runLost := false
		for _, id := range tasks {
			te := tasksOf[id]
			if te == nil {
				t.Errorf("run %d has no task %s", r.RunID, id)
				continue
			}
			for i, a := range te.Attempts {
				if a.Attempt != i+1 {
					t.Errorf("run %d task %s: attempt %d recorded at position %d", r.RunID, id, a.Attempt, i)
				}
				apiAttempts[attemptKey{r.RunID, id, a.Attempt}] = a
				if a.StatusReason != nil && a.StatusReason.Reason == model.ReasonLost {
					t.Logf("run %d task %s attempt %d was lost: %s", r.RunID, id, a.Attempt, a.StatusReason.Description)
					lost++
					if i+1 < len(te.Attempts) {
						lostRetried++
					} else {
						runLost = true
					}
				}
			}
			if te.Status == model.TaskStatusSuccessful {
				if logs := runsLogs(t, rc.cl, p, r.RunID, id); !strings.Contains(logs, id+" started") || !strings.Contains(logs, id+" done") {
					t.Errorf("run %d task %s succeeded but its log is not whole: %q", r.RunID, id, logs)
				}
			}
		}
		switch {
		case r.Status == model.RunStatusSuccessful:
		case r.Status == model.RunStatusFailed && runLost && r.StatusReason != nil && r.StatusReason.Reason == model.ReasonLost:
			lostFailedRuns++
		default:
			t.Errorf("run %d ended %s %+v though no task was lost for good\n%s", r.RunID, r.Status, r.StatusReason, rc.describe(p, r.RunID))
		}
	}
	t.Logf("lost attempts: %d (%d retried, %d runs failed as lost) of %d attempts", lost, lostRetried, lostFailedRuns, len(apiAttempts))

	// G7: the executor and the sweep leave nothing behind.
	rc.noContainersLeft(t, 60*time.Second)
	w.stop()

	// G6: one container per attempt, ever, and none the API does not know.
	seen := w.snapshot()
	if w.events == 0 {
		t.Fatalf("the Docker event stream reported no container of cluster %s", rc.ID)
	}
	perAttempt := map[attemptKey][]*runsSeen{}
	for _, c := range seen {
		run, err1 := strconv.ParseInt(c.Labels[scheduler.LabelRun], 10, 64)
		attempt, err2 := strconv.Atoi(c.Labels[scheduler.LabelAttempt])
		if err1 != nil || err2 != nil || c.Labels[scheduler.LabelPipeline] != p {
			t.Errorf("container %s %s has unexpected labels %v", c.ID[:12], c.Name, c.Labels)
			continue
		}
		k := attemptKey{run, c.Labels[scheduler.LabelTask], attempt}
		perAttempt[k] = append(perAttempt[k], c)
	}
	for k, cs := range perAttempt {
		if len(cs) > 1 {
			var desc []string
			started := 0
			for _, c := range cs {
				desc = append(desc, c.String())
				if !c.StartedAt.IsZero() {
					started++
				}
			}
			t.Errorf("run %d task %s attempt %d had %d containers (%d of them started):\n  %s", k.run, k.task, k.attempt, len(cs), started, strings.Join(desc, "\n  "))
		}
		if _, ok := apiAttempts[k]; !ok {
			t.Errorf("a container existed for run %d task %s attempt %d, which the API does not report", k.run, k.task, k.attempt)
		}
	}
	for k, a := range apiAttempts {
		cs := perAttempt[k]
		if len(cs) == 0 {
			if a.StatusReason == nil || a.StatusReason.Reason != model.ReasonSchedulerError {
				t.Errorf("run %d task %s attempt %d (%s) ran, but Docker never showed its container", k.run, k.task, k.attempt, a.Status)
			}
			continue
		}
		if cs[0].Name != a.Container {
			t.Errorf("run %d task %s attempt %d: the API says container %q, Docker showed %q", k.run, k.task, k.attempt, a.Container, cs[0].Name)
		}
		// A result needs a container that ran: a success must come from a
		// container that started and exited 0.
		if a.Status == model.TaskStatusSuccessful {
			ran := false
			for _, c := range cs {
				if !c.StartedAt.IsZero() && c.ExitCode == "0" {
					ran = true
				}
			}
			if !ran {
				var desc []string
				for _, c := range cs {
					desc = append(desc, c.String())
				}
				t.Errorf("run %d task %s attempt %d is recorded successful, but no container of it started and exited 0:\n  %s",
					k.run, k.task, k.attempt, strings.Join(desc, "\n  "))
			}
		}
	}
	t.Logf("docker: %d containers seen (%d create events, %d scans), %d attempts recorded by the API", len(seen), w.events, w.scans, len(apiAttempts))

	// G8, loosely: once a leader is dead, nothing is created under its
	// term (or an older one). The engine may still finish a create the
	// process sent before it died, hence the slack; the lag seen is logged.
	const slack = 5 * time.Second
	var lag time.Duration
	for _, k := range w.kills {
		for _, c := range seen {
			if c.term() > k.term || !c.Created.After(k.at) {
				continue
			}
			lag = max(lag, c.Created.Sub(k.at))
			if c.Created.After(k.at.Add(slack)) {
				t.Errorf("container %s (term %d) was created %s after leader %s of term %d was killed",
					c.Name, c.term(), c.Created.Sub(k.at).Round(time.Millisecond), k.node, k.term)
			}
		}
	}
	t.Logf("the engine created containers of a killed leader's term up to %s after the kill", lag.Round(time.Millisecond))
}

// runsSeen is one container the watcher saw.
type runsSeen struct {
	ID, Name string
	Labels   map[string]string
	// Created is when the engine created it (the create event's time, or
	// the list's second-granular stamp if only a scan saw it).
	Created time.Time
	precise bool
	// From the event stream: when it started (zero: never), died (with
	// its exit code) and was removed.
	StartedAt, DiedAt, DestroyedAt time.Time
	ExitCode                       string
}

func (c *runsSeen) String() string {
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format("15:04:05.000")
	}
	return fmt.Sprintf("%s %s term %s created %s started %s died %s (exit %s) removed %s", c.ID[:12], c.Name, c.Labels[scheduler.LabelTerm],
		at(c.Created), at(c.StartedAt), at(c.DiedAt), c.ExitCode, at(c.DestroyedAt))
}

func (c *runsSeen) term() uint64 {
	n, _ := strconv.ParseUint(c.Labels[scheduler.LabelTerm], 10, 64)
	return n
}

// runsKill records when a leader was SIGKILLed, and the term it led.
type runsKill struct {
	node string
	term uint64
	at   time.Time
}

// runsDockerWatch records every container of one cluster: Docker's event
// stream gives each create (even of a container that lives a few
// milliseconds); a label scan every 200 ms cross-checks it.
type runsDockerWatch struct {
	t         testing.TB
	clusterID string
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	once      sync.Once

	mu     sync.Mutex
	byID   map[string]*runsSeen
	events int
	scans  int
	kills  []runsKill
}

func runsWatchDocker(t testing.TB, clusterID string) *runsDockerWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &runsDockerWatch{t: t, clusterID: clusterID, cancel: cancel, byID: map[string]*runsSeen{}}
	label := filters.Arg("label", scheduler.LabelCluster+"="+clusterID)
	// The subscription is open once Events returns.
	opts := events.ListOptions{Filters: filters.NewArgs(filters.Arg("type", "container"), label,
		filters.Arg("event", "create"), filters.Arg("event", "start"), filters.Arg("event", "die"), filters.Arg("event", "destroy"))}
	msgs, errs := runsDocker(t).Events(ctx, opts)
	w.wg.Add(2)
	go func() {
		defer w.wg.Done()
		last := time.Now()
		for {
			select {
			case m := <-msgs:
				at := time.Unix(0, m.TimeNano)
				last = at
				labels := map[string]string{}
				for k, v := range m.Actor.Attributes {
					if strings.HasPrefix(k, "gofer.") {
						labels[k] = v
					}
				}
				w.mu.Lock()
				switch m.Action {
				case events.ActionCreate:
					w.events++
					w.record(m.Actor.ID, m.Actor.Attributes["name"], labels, at, true)
				default:
					w.record(m.Actor.ID, m.Actor.Attributes["name"], labels, time.Time{}, false)
					c := w.byID[m.Actor.ID]
					switch m.Action {
					case events.ActionStart:
						c.StartedAt = at
					case events.ActionDie:
						c.DiedAt, c.ExitCode = at, m.Actor.Attributes["exitCode"]
					case events.ActionDestroy:
						c.DestroyedAt = at
					}
				}
				w.mu.Unlock()
			case err := <-errs:
				if ctx.Err() != nil {
					return
				}
				// Resubscribe from the last event seen; nothing is missed.
				t.Logf("docker event stream broke (%v); resubscribing", err)
				opts.Since = strconv.FormatFloat(float64(last.UnixNano())/1e9, 'f', 9, 64)
				msgs, errs = runsDocker(t).Events(ctx, opts)
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
			list, err := runsDocker(t).ContainerList(lctx, container.ListOptions{All: true, Filters: filters.NewArgs(label)})
			lcancel()
			if err == nil {
				w.mu.Lock()
				w.scans++
				for _, c := range list {
					name := ""
					if len(c.Names) > 0 {
						name = strings.TrimPrefix(c.Names[0], "/")
					}
					w.record(c.ID, name, c.Labels, time.Unix(c.Created, 0), false)
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// record notes a container. The create event's time (precise) wins over
// the list's whole seconds.
func (w *runsDockerWatch) record(id, name string, labels map[string]string, created time.Time, precise bool) {
	if c, ok := w.byID[id]; ok {
		if c.Name == "" {
			c.Name = name
		}
		if len(c.Labels) == 0 {
			c.Labels = labels
		}
		if precise && !c.precise {
			c.Created, c.precise = created, true
		}
		return
	}
	w.byID[id] = &runsSeen{ID: id, Name: name, Labels: labels, Created: created, precise: precise}
}

// killed notes that n, the leader, is about to be SIGKILLed, and the
// term it won last (from raft's "election won: term=N" log line; the API
// does not show terms). If the line is missing, no term is older than 0.
func (w *runsDockerWatch) killed(n *Node) {
	var term uint64
	if data, err := os.ReadFile(n.logPath); err == nil {
		for _, m := range runsElectionWon.FindAllSubmatch(data, -1) {
			term, _ = strconv.ParseUint(string(m[1]), 10, 64)
		}
	}
	if term == 0 {
		w.t.Logf("no election won in %s's log; G8 is not checked for this kill", n.Name)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kills = append(w.kills, runsKill{node: n.Name, term: term, at: time.Now()})
}

var runsElectionWon = regexp.MustCompile(`election won: term=(\d+)`)

func (w *runsDockerWatch) stop() {
	w.once.Do(func() {
		w.cancel()
		w.wg.Wait()
	})
}

// snapshot lists the containers seen, oldest first.
func (w *runsDockerWatch) snapshot() []*runsSeen {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*runsSeen, 0, len(w.byID))
	for _, c := range w.byID {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// runsKeepTimeline writes every container the watcher saw, and the kills,
// to $GOFER_E2E_LOG_DIR (when set), for diagnosing a failure.
func runsKeepTimeline(t *testing.T, seen []*runsSeen, kills []runsKill) {
	dir := os.Getenv("GOFER_E2E_LOG_DIR")
	if dir == "" {
		return
	}
	dir = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	var b strings.Builder
	for _, k := range kills {
		fmt.Fprintf(&b, "%s kill %s (term %d)\n", k.at.Format("15:04:05.000"), k.node, k.term)
	}
	for _, c := range seen {
		fmt.Fprintln(&b, c.String())
	}
	_ = os.WriteFile(filepath.Join(dir, "docker.txt"), []byte(b.String()), 0o644)
}
