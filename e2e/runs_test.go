package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestRuns runs pipelines on real Docker containers, on a single node and
// on a three-node cluster whose nodes share the machine's engine: DAG
// conditions and parallel branches, run queueing under parallelism,
// timeouts, retries, cancelling a run and a task, an image that does not
// exist, logs followed from a follower, and the rules for starting runs
// (idempotency keys, disabled pipelines, paused ingress, run ids,
// `gofer run watch` exit codes). The independent cases share one cluster
// and run at once (each on its own pipeline); the start rules pause the
// whole cluster's ingress, so they run alone afterwards. At the end every
// container the cluster started must be gone.
func TestRuns(t *testing.T) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d-node", size), func(t *testing.T) {
			rc := runsNewCluster(t, size)
			// Pipeline ids carry the cluster size, so the two clusters'
			// runs are told apart in logs and failures.
			sfx := fmt.Sprintf("%dn", size)
			// The independent cases run at once, each on its own pipeline.
			// (t.Run from goroutines rather than t.Parallel, which -parallel
			// would cap at the machine's two cores.)
			var wg sync.WaitGroup
			for _, tc := range []struct {
				name string
				fn   func(*testing.T, *runsCluster, string)
			}{
				{"dag", runsTestDAG},
				{"parallelism-queue", runsTestQueue},
				{"timeout", runsTestTimeout},
				{"retries", runsTestRetries},
				{"cancel-run", runsTestCancelRun},
				{"cancel-task", runsTestCancelTask},
				{"missing-image", runsTestMissingImage},
				{"follow-logs", runsTestFollowLogs},
			} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t.Run(tc.name, func(t *testing.T) { tc.fn(t, rc, sfx) })
				}()
			}
			wg.Wait()
			t.Run("start-rules", func(t *testing.T) { runsTestStartRules(t, rc, sfx) })
			// The executor removes every finished container (the sweep, every
			// 30 s, whatever it missed).
			rc.noContainersLeft(t, 40*time.Second)
		})
	}
}

// runsTestDAG: success, failure with its exit code, a Failure-conditioned
// task that runs, a Success-conditioned task that is skipped, an Any task
// after a failure, two parallel branches that overlap in time, the run's
// failed status naming the failed task, and the environment's precedence
// (system < task variables < run variables).
func runsTestDAG(t *testing.T, rc *runsCluster, sfx string) {
	p := "dag-" + sfx
	envs := &sdk.TaskConfig{ID: "envs", Image: runsGoferImage, Command: []string{"debug", "envs"},
		Variables: map[string]string{"PREC_TASK": "task", "PREC_BOTH": "task", "GOFER_TASK_IMAGE": "task-wins-over-system", "prec_case": "task"}}
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "DAG semantics", Tasks: []*sdk.TaskConfig{
		runsSh("good", "echo good ran"),
		runsSh("bad", "echo bad ran; exit 3"),
		runsAfter(runsSh("on-failure", "echo on-failure ran"), sdk.RequiredParentStatusFailure, "bad"),
		runsAfter(runsSh("on-success", "echo on-success ran"), sdk.RequiredParentStatusSuccess, "bad"),
		runsAfter(runsSh("after-any", "echo after-any ran"), sdk.RequiredParentStatusAny, "bad"),
		runsAfter(runsSh("branch-a", "echo branch-a ran; sleep 5"), sdk.RequiredParentStatusSuccess, "good"),
		runsAfter(runsSh("branch-b", "echo branch-b ran; sleep 5"), sdk.RequiredParentStatusSuccess, "good"),
		envs,
	}})
	run := rc.start(t, p, map[string]string{"PREC_BOTH": "run", "PREC_RUN": "run", "PREC_CASE": "run"})
	r := rc.wait(t, p, run.RunID, 90*time.Second)
	tasks := rc.tasks(t, p, r.RunID)
	dump := rc.describe(p, r.RunID)

	if r.Status != model.RunStatusFailed || r.StatusReason == nil || r.StatusReason.Reason != model.ReasonAbnormalExit ||
		!strings.Contains(r.StatusReason.Description, `"bad"`) {
		t.Errorf("run: want failed (abnormal_exit) with a reason naming task \"bad\"; got %s %+v\n%s", r.Status, r.StatusReason, dump)
	}
	want := map[string]model.TaskStatus{"good": "successful", "bad": "failed", "on-failure": "successful", "on-success": "skipped",
		"after-any": "successful", "branch-a": "successful", "branch-b": "successful", "envs": "successful"}
	for id, status := range want {
		te := tasks[id]
		if te == nil {
			t.Fatalf("run has no task %q\n%s", id, dump)
		}
		if te.State != model.TaskStateComplete || te.Status != status {
			t.Errorf("task %s: want complete/%s, got %s/%s %+v", id, status, te.State, te.Status, te.StatusReason)
		}
		if status == model.TaskStatusSuccessful {
			if te.ExitCode == nil || *te.ExitCode != 0 || te.Attempt != 1 || len(te.Attempts) != 1 {
				t.Errorf("task %s: want one attempt that exited 0, got attempt %d, exit %v, attempts %+v", id, te.Attempt, te.ExitCode, te.Attempts)
			}
		}
	}
	for _, id := range []string{"good", "bad", "on-failure", "after-any", "branch-a", "branch-b"} {
		if logs := runsLogs(t, rc.cl, p, r.RunID, id); !strings.Contains(logs, id+" ran") {
			t.Errorf("task %s's log lacks %q: %q", id, id+" ran", logs)
		}
	}

	bad := tasks["bad"]
	if bad.ExitCode == nil || *bad.ExitCode != 3 || bad.StatusReason == nil || bad.StatusReason.Reason != model.ReasonAbnormalExit ||
		!strings.Contains(bad.StatusReason.Description, "exited with code 3") {
		t.Errorf("task bad: want exit code 3 and reason abnormal_exit (\"exited with code 3\"), got exit %v reason %+v", bad.ExitCode, bad.StatusReason)
	}
	skipped := tasks["on-success"]
	if skipped.StatusReason == nil || skipped.StatusReason.Reason != model.ReasonFailedPrecondition ||
		!strings.Contains(skipped.StatusReason.Description, `"bad"`) {
		t.Errorf("task on-success: want reason failed_precondition naming its parent \"bad\", got %+v", skipped.StatusReason)
	}
	if skipped.Attempt != 0 || len(skipped.Attempts) != 0 || skipped.Started != 0 || skipped.Container != "" {
		t.Errorf("task on-success was skipped but shows an attempt: attempt %d, attempts %+v, started %d, container %q",
			skipped.Attempt, skipped.Attempts, skipped.Started, skipped.Container)
	}
	// A child is scheduled only after its parent ended.
	for child, parent := range map[string]string{"on-failure": "bad", "after-any": "bad", "branch-a": "good", "branch-b": "good"} {
		c, par := tasks[child], tasks[parent]
		if c.Scheduled < par.Ended || par.Ended == 0 {
			t.Errorf("task %s was scheduled at %d, before its parent %s ended at %d", child, c.Scheduled, parent, par.Ended)
		}
	}
	// The two branches (5 s each) ran at the same time.
	a, b := tasks["branch-a"], tasks["branch-b"]
	t.Logf("parallel branches started %d ms apart", max(a.Started-b.Started, b.Started-a.Started))
	if !(a.Started > 0 && b.Started > 0 && a.Started < b.Ended && b.Started < a.Ended) {
		t.Errorf("parallel branches did not overlap: branch-a ran %s..%s, branch-b %s..%s (ms after the run was created)",
			runsMillis(a.Started, r.Created), runsMillis(a.Ended, r.Created), runsMillis(b.Started, r.Created), runsMillis(b.Ended, r.Created))
	}

	// Environment precedence, as the container saw it.
	got := map[string]string{}
	for _, line := range strings.Split(runsLogs(t, rc.cl, p, r.RunID, "envs"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	wantEnv := map[string]string{
		"GOFER_NAMESPACE_ID": "default", "GOFER_PIPELINE_ID": p, "GOFER_RUN_ID": strconv.FormatInt(r.RunID, 10),
		"GOFER_TASK_ID": "envs", "GOFER_TASK_ATTEMPT": "1",
		"GOFER_TASK_IMAGE": "task-wins-over-system", // task variable over a system one
		"PREC_TASK":        "task",                  // task variable
		"PREC_BOTH":        "run",                   // run variable over a task one
		"PREC_RUN":         "run",                   // run variable
		"PREC_CASE":        "run",                   // run variable over a task one differing in case
	}
	for k, v := range wantEnv {
		if got[k] != v {
			t.Errorf("task envs saw %s=%q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["prec_case"]; ok {
		t.Errorf("task envs saw both prec_case and PREC_CASE; the run's PREC_CASE should replace the task's prec_case")
	}
	if api := got["GOFER_API_BASE_URL"]; !runsMentionsAnyNode(api, rc.Cluster) {
		t.Errorf("task envs saw GOFER_API_BASE_URL=%q, which names no node of the cluster", api)
	}
	// The API reports the environment the container got.
	for k, v := range wantEnv {
		if tasks["envs"].Variables[k] != v {
			t.Errorf("the API's variables of task envs have %s=%q, the container saw %q", k, tasks["envs"].Variables[k], v)
		}
	}
}

func runsMentionsAnyNode(s string, c *Cluster) bool {
	for _, n := range c.Nodes {
		if s != "" && strings.Contains(s, n.APIAddr) {
			return true
		}
	}
	return false
}

// runsTestQueue: with parallelism 1, three runs started at once run one
// after the other in the order they were accepted, the later ones pending
// meanwhile.
func runsTestQueue(t *testing.T, rc *runsCluster, sfx string) {
	p := "queue-" + sfx
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "queue", Parallelism: 1, Tasks: []*sdk.TaskConfig{runsSh("nap", "echo napping; sleep 1")}})
	runs := make([]*model.Run, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = rc.cl.StartRun(context.Background(), p, nil)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("start: %v", err)
		}
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].RunID < runs[j].RunID })
	for i, r := range runs {
		if r.RunID != int64(i+1) {
			t.Fatalf("run ids of a new pipeline: want 1, 2, 3, got %d at position %d", r.RunID, i)
		}
	}

	// Watch the queue drain.
	sawQueue := false
	var violations []string
	WaitFor(t, 60*time.Second, func() error {
		list, err := rc.cl.ListRuns(context.Background(), p, client.Page{})
		if err != nil {
			return err
		}
		state := map[int64]model.RunState{}
		for _, r := range list {
			state[r.RunID] = r.State
		}
		running := 0
		for _, s := range state {
			if s == model.RunStateRunning {
				running++
			}
		}
		if running > 1 {
			violations = append(violations, fmt.Sprintf("%d runs running at once: %v", running, state))
		}
		for id := int64(2); id <= 3; id++ {
			if state[id] != model.RunStatePending && state[id-1] != model.RunStateComplete {
				violations = append(violations, fmt.Sprintf("run %d left the queue while run %d was %s: %v", id, id-1, state[id-1], state))
			}
		}
		if state[1] == model.RunStateRunning && state[2] == model.RunStatePending && state[3] == model.RunStatePending {
			sawQueue = true
		}
		for id := int64(1); id <= 3; id++ {
			if state[id] != model.RunStateComplete {
				return fmt.Errorf("run %d is %s", id, state[id])
			}
		}
		return nil
	})
	for _, v := range violations {
		t.Error(v)
	}
	if !sawQueue {
		t.Errorf("never saw run 1 running while runs 2 and 3 were pending")
	}
	var prev *model.Run
	var prevTask *model.TaskExecution
	for _, r := range runs {
		r = rc.wait(t, p, r.RunID, 10*time.Second)
		te := rc.task(t, p, r.RunID, "nap")
		if r.Status != model.RunStatusSuccessful || te.Status != model.TaskStatusSuccessful {
			t.Errorf("run %d: want successful, got %s (task %s)\n%s", r.RunID, r.Status, te.Status, rc.describe(p, r.RunID))
		}
		if prev != nil {
			if r.Started < prev.Ended {
				t.Errorf("run %d started at %d, before run %d ended at %d", r.RunID, r.Started, prev.RunID, prev.Ended)
			}
			if te.Scheduled < prevTask.Ended {
				t.Errorf("run %d's task was scheduled at %d, before run %d's task ended at %d", r.RunID, te.Scheduled, prev.RunID, prevTask.Ended)
			}
		}
		prev, prevTask = r, te
	}
}

// runsTestTimeout: a task that outlives its 1s timeout is stopped (its
// sleep ignores SIGTERM, so it is killed after the stop grace) and fails
// with reason timeout, long before its 30 s sleep would have ended.
func runsTestTimeout(t *testing.T, rc *runsCluster, sfx string) {
	p := "timeout-" + sfx
	slow := runsSh("slow", "echo sleeping; exec sleep 30")
	slow.Timeout = "1s"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "timeout", Tasks: []*sdk.TaskConfig{slow}})
	began := time.Now()
	run := rc.start(t, p, nil)
	// Sanity bound: well before the 30 s sleep ends by itself.
	r := rc.wait(t, p, run.RunID, 20*time.Second)
	took := time.Since(began)
	te := rc.task(t, p, r.RunID, "slow")
	if te.Status != model.TaskStatusFailed || te.StatusReason == nil || te.StatusReason.Reason != model.ReasonTimeout ||
		!strings.Contains(te.StatusReason.Description, "1s timeout") {
		t.Errorf("task slow: want failed with reason timeout (\"1s timeout\"), got %s %+v", te.Status, te.StatusReason)
	}
	if te.ExitCode == nil || *te.ExitCode != 137 {
		t.Errorf("task slow ignores SIGTERM, so it must have been killed (exit 137) after the grace; got exit %v", te.ExitCode)
	}
	if te.Attempt != 1 || len(te.Attempts) != 1 {
		t.Errorf("task slow has no retries: want one attempt, got %d (%+v)", te.Attempt, te.Attempts)
	}
	if r.Status != model.RunStatusFailed || r.StatusReason == nil || r.StatusReason.Reason != model.ReasonTimeout {
		t.Errorf("run: want failed with reason timeout, got %s %+v", r.Status, r.StatusReason)
	}
	t.Logf("the timed-out run took %s from start to complete", took.Round(time.Millisecond))
}

// runsTestRetries: a task failing its first attempt succeeds on its
// second, both recorded, the log marking where attempt 2 began; a task
// that always fails with retries 1 ends failed after exactly two attempts.
func runsTestRetries(t *testing.T, rc *runsCluster, sfx string) {
	p := "retry-" + sfx
	flaky := runsSh("flaky", `echo "attempt $GOFER_TASK_ATTEMPT running"; [ "$GOFER_TASK_ATTEMPT" -ge 2 ]`)
	flaky.Retries, flaky.RetryBackoff = 2, "200ms"
	doomed := runsSh("doomed", `echo "attempt $GOFER_TASK_ATTEMPT running"; exit 7`)
	doomed.Retries, doomed.RetryBackoff = 1, "200ms"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "retries", Tasks: []*sdk.TaskConfig{flaky, doomed}})
	run := rc.start(t, p, nil)
	r := rc.wait(t, p, run.RunID, 60*time.Second)
	tasks := rc.tasks(t, p, r.RunID)
	dump := rc.describe(p, r.RunID)

	f := tasks["flaky"]
	if f.Status != model.TaskStatusSuccessful || f.Attempt != 2 || len(f.Attempts) != 2 {
		t.Fatalf("task flaky: want successful on attempt 2 with two attempts recorded, got %s on attempt %d\n%s", f.Status, f.Attempt, dump)
	}
	a1, a2 := f.Attempts[0], f.Attempts[1]
	if a1.Attempt != 1 || a1.Status != model.TaskStatusFailed || a1.ExitCode == nil || *a1.ExitCode != 1 ||
		a1.StatusReason == nil || a1.StatusReason.Reason != model.ReasonAbnormalExit {
		t.Errorf("flaky attempt 1: want failed, exit 1, abnormal_exit; got %+v", a1)
	}
	if a2.Attempt != 2 || a2.Status != model.TaskStatusSuccessful || a2.ExitCode == nil || *a2.ExitCode != 0 {
		t.Errorf("flaky attempt 2: want successful, exit 0; got %+v", a2)
	}
	if a1.Container == a2.Container || !strings.HasSuffix(a1.Container, ".1") || !strings.HasSuffix(a2.Container, ".2") {
		t.Errorf("flaky's attempts must run in their own containers (name.1, name.2), got %q and %q", a1.Container, a2.Container)
	}
	// The retry waited for its backoff (200ms; a conservative bound).
	if a2.Started-a1.Ended < 100 {
		t.Errorf("flaky's attempt 2 started %d ms after attempt 1 ended; the retry backoff is 200ms", a2.Started-a1.Ended)
	}
	logs := runsLogs(t, rc.cl, p, r.RunID, "flaky")
	runsInOrder(t, "flaky's log", logs, "attempt 1 running", "[gofer] attempt 2 of 3 starting", "attempt 2 running")
	if strings.Contains(logs, "attempt 3") {
		t.Errorf("flaky succeeded on attempt 2 but its log mentions attempt 3: %q", logs)
	}

	d := tasks["doomed"]
	if d.Status != model.TaskStatusFailed || d.Attempt != 2 || len(d.Attempts) != 2 || d.ExitCode == nil || *d.ExitCode != 7 {
		t.Errorf("task doomed: want failed after exactly 2 attempts with exit 7, got %s after %d (%d recorded), exit %v\n%s",
			d.Status, d.Attempt, len(d.Attempts), d.ExitCode, dump)
	}
	for i, a := range d.Attempts {
		if a.Attempt != i+1 || a.Status != model.TaskStatusFailed || a.ExitCode == nil || *a.ExitCode != 7 {
			t.Errorf("doomed attempt %d: want failed with exit 7, got %+v", i+1, a)
		}
	}
	runsInOrder(t, "doomed's log", runsLogs(t, rc.cl, p, r.RunID, "doomed"), "attempt 1 running", "[gofer] attempt 2 of 2 starting", "attempt 2 running")
	if r.Status != model.RunStatusFailed || r.StatusReason == nil || !strings.Contains(r.StatusReason.Description, `"doomed"`) {
		t.Errorf("run: want failed naming task \"doomed\", got %s %+v", r.Status, r.StatusReason)
	}
}

// runsInOrder checks that s holds each part, in this order.
func runsInOrder(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	rest := s
	for _, part := range parts {
		i := strings.Index(rest, part)
		if i < 0 {
			t.Errorf("%s lacks %q after the earlier parts %q: %q", what, part, parts, s)
			return
		}
		rest = rest[i+len(part):]
	}
}

// runsGone waits until Docker has no container of that name.
func runsGone(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		info, err := runsDocker(t).ContainerInspect(ctx, name)
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("container %s still exists (%s)", name, info.State.Status)
	})
}

// runsTestCancelRun: cancelling a run stops its running task (SIGTERM,
// which the debug waiter honours), the run ends cancelled with reason
// user_cancelled and the task cancelled, and the container is gone within
// the grace.
func runsTestCancelRun(t *testing.T, rc *runsCluster, sfx string) {
	p := "cancelrun-" + sfx
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "cancel a run", Tasks: []*sdk.TaskConfig{
		{ID: "waiter", Image: runsGoferImage, Command: []string{"debug", "wait"}, Variables: map[string]string{"WAIT_DURATION": "60s"}},
	}})
	run := rc.start(t, p, nil)
	te := rc.waitTask(t, p, run.RunID, "waiter", 30*time.Second, "running", func(te *model.TaskExecution) bool { return te.State == model.TaskStateRunning })
	// Its SIGTERM handler is installed once it has said it waits.
	WaitFor(t, 20*time.Second, func() error {
		if logs := runsLogs(t, rc.cl, p, run.RunID, "waiter"); !strings.Contains(logs, "debug wait: waiting") {
			return fmt.Errorf("waiter has not started waiting: %q", logs)
		}
		return nil
	})
	cancelled, err := rc.cl.CancelRun(context.Background(), p, run.RunID)
	if err != nil {
		t.Fatalf("cancel run: %v", err)
	}
	if cancelled.Cancel == nil {
		t.Errorf("the cancel answer shows no cancellation: %+v", cancelled)
	}
	// The container stops within the grace (it exits at SIGTERM) and is
	// removed; the slack covers the engine's and the executor's own time.
	runsGone(t, te.Container, runsStopGrace+10*time.Second)
	r := rc.wait(t, p, run.RunID, 20*time.Second)
	if r.Status != model.RunStatusCancelled || r.StatusReason == nil || r.StatusReason.Reason != model.ReasonUserCancelled {
		t.Errorf("run: want cancelled with reason user_cancelled, got %s %+v", r.Status, r.StatusReason)
	}
	te = rc.task(t, p, r.RunID, "waiter")
	if te.Status != model.TaskStatusCancelled || te.StatusReason == nil || te.StatusReason.Reason != model.ReasonCancelled {
		t.Errorf("task waiter: want cancelled (reason cancelled), got %s %+v", te.Status, te.StatusReason)
	}
	if te.ExitCode == nil || *te.ExitCode != 0 {
		t.Errorf("task waiter exits 0 on SIGTERM; got exit %v (killed instead of stopped?)", te.ExitCode)
	}
	if logs := runsLogs(t, rc.cl, p, r.RunID, "waiter"); !strings.Contains(logs, "received SIGTERM, exiting") {
		t.Errorf("task waiter's log does not show the SIGTERM it got: %q", logs)
	}
}

// runsTestCancelTask: `gofer task cancel --wait-for 1s` stops one task
// that ignores SIGTERM (killed after the 1 s grace) while its sibling
// keeps running and finishes normally; the run ends cancelled.
func runsTestCancelTask(t *testing.T, rc *runsCluster, sfx string) {
	p := "canceltask-" + sfx
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "cancel a task", Tasks: []*sdk.TaskConfig{
		runsSh("stubborn", `trap "" TERM; echo ignoring SIGTERM; sleep 60`),
		runsSh("sibling", `echo sibling started; sleep 6; echo sibling done`),
	}})
	run := rc.start(t, p, nil)
	rc.waitTask(t, p, run.RunID, "stubborn", 30*time.Second, "running", func(te *model.TaskExecution) bool { return te.State == model.TaskStateRunning })
	WaitFor(t, 20*time.Second, func() error {
		if logs := runsLogs(t, rc.cl, p, run.RunID, "stubborn"); !strings.Contains(logs, "ignoring SIGTERM") {
			return fmt.Errorf("stubborn has not installed its trap: %q", logs)
		}
		return nil
	})
	url := rc.Leader().URL
	if fs := rc.Followers(); len(fs) > 0 {
		url = fs[0].URL // followers forward the cancel
	}
	out, code := rc.cli(t, url, "task", "cancel", p, strconv.FormatInt(run.RunID, 10), "stubborn", "--wait-for", "1s")
	if code != 0 || !strings.Contains(out, "Cancelling task") {
		t.Fatalf("gofer task cancel: exit %d\n%s", code, out)
	}
	if sib := rc.task(t, p, run.RunID, "sibling"); sib.State == model.TaskStateComplete {
		t.Fatalf("sibling already ended before the cancel took effect; the test needs it running: %+v", sib)
	}
	te := rc.waitTask(t, p, run.RunID, "stubborn", 30*time.Second, "complete", func(te *model.TaskExecution) bool { return te.State == model.TaskStateComplete })
	if te.Status != model.TaskStatusCancelled || te.StatusReason == nil || te.StatusReason.Reason != model.ReasonCancelled {
		t.Errorf("task stubborn: want cancelled, got %s %+v", te.Status, te.StatusReason)
	}
	if te.Cancel == nil || te.Cancel.GraceMillis != 1000 {
		t.Errorf("task stubborn: want a cancellation with a 1s grace, got %+v", te.Cancel)
	}
	if te.ExitCode == nil || *te.ExitCode != 137 {
		t.Errorf("task stubborn ignores SIGTERM, so it must have been killed (exit 137) after the grace; got exit %v", te.ExitCode)
	}
	if te.Cancel != nil {
		// It outlived SIGTERM: only the SIGKILL after the grace ended it.
		if lived := te.Ended - te.Cancel.Requested; lived < 900 || lived > 30000 {
			t.Errorf("task stubborn ended %d ms after the cancel; want about the 1 s grace (and well before its 60 s sleep)", lived)
		}
	}
	r := rc.wait(t, p, run.RunID, 30*time.Second)
	sib := rc.task(t, p, r.RunID, "sibling")
	if sib.Status != model.TaskStatusSuccessful || sib.ExitCode == nil || *sib.ExitCode != 0 {
		t.Errorf("task sibling: want successful (exit 0), got %s exit %v %+v", sib.Status, sib.ExitCode, sib.StatusReason)
	}
	if logs := runsLogs(t, rc.cl, p, r.RunID, "sibling"); !strings.Contains(logs, "sibling done") {
		t.Errorf("task sibling's log lacks its last line: %q", logs)
	}
	if r.Status != model.RunStatusCancelled || r.StatusReason == nil || r.StatusReason.Reason != model.ReasonUserCancelled ||
		!strings.Contains(r.StatusReason.Description, `"stubborn"`) {
		t.Errorf("run: want cancelled (user_cancelled) naming task \"stubborn\", got %s %+v", r.Status, r.StatusReason)
	}
}

// runsTestMissingImage: an image that is neither present nor pullable
// fails the task promptly with reason scheduler_error naming the image.
func runsTestMissingImage(t *testing.T, rc *runsCluster, sfx string) {
	p := "noimage-" + sfx
	const image = "gofer/no-such-image-e2e:missing"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "missing image", Tasks: []*sdk.TaskConfig{{ID: "ghost", Image: image}}})
	run := rc.start(t, p, nil)
	r := rc.wait(t, p, run.RunID, 30*time.Second)
	te := rc.task(t, p, r.RunID, "ghost")
	if te.Status != model.TaskStatusFailed || te.StatusReason == nil || te.StatusReason.Reason != model.ReasonSchedulerError ||
		!strings.Contains(te.StatusReason.Description, image) {
		t.Errorf("task ghost: want failed with reason scheduler_error naming %s, got %s %+v", image, te.Status, te.StatusReason)
	}
	if te.ExitCode != nil {
		t.Errorf("task ghost never ran, yet has exit code %d", *te.ExitCode)
	}
	if r.Status != model.RunStatusFailed || r.StatusReason == nil || r.StatusReason.Reason != model.ReasonSchedulerError {
		t.Errorf("run: want failed with reason scheduler_error, got %s %+v", r.Status, r.StatusReason)
	}
	if te.Container != "" {
		runsGone(t, te.Container, 10*time.Second)
	}
}

// runsTestFollowLogs: a task's log followed from a follower arrives line
// by line while the task prints and the stream ends when the task does,
// with exactly what the leader stores; `gofer task logs --follow` against
// a follower prints it all and exits 0 (served by the follower with
// --stale, forwarded to the leader without).
func runsTestFollowLogs(t *testing.T, rc *runsCluster, sfx string) {
	p := "follow-" + sfx
	const lines = 20
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "follow logs", Tasks: []*sdk.TaskConfig{{ID: "printer", Image: runsGoferImage,
		Command:   []string{"debug", "log"},
		Variables: map[string]string{"LOG_LINES": strconv.Itoa(lines), "LOG_INTERVAL": "100ms", "LOGS_HEADER": "follow test header"}}}})
	leader := rc.Leader()
	node := leader
	if fs := rc.Followers(); len(fs) > 0 {
		node = fs[0]
	}
	t.Logf("following from %s (leader %s)", node.Name, leader.Name)
	wantLog := "follow test header\n"
	for i := 1; i <= lines; i++ {
		stream := "stdout"
		if i%2 == 0 {
			stream = "stderr"
		}
		wantLog += fmt.Sprintf("line %d of %d (%s)\n", i, lines, stream)
	}

	run := rc.start(t, p, nil)
	// This node alone, reading its own replica once it has the run.
	fcl := node.Client(rc.Token).AtLeast(rc.cl.LastIndex())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	body, err := fcl.TaskLogs(ctx, p, run.RunID, "printer", true)
	if err != nil {
		t.Fatalf("follow logs on %s: %v", node.Name, err)
	}
	defer body.Close()
	var got strings.Builder
	whileRunning := 0
	br := bufio.NewReader(body)
	for {
		line, err := br.ReadString('\n')
		got.WriteString(line)
		if strings.HasPrefix(line, "line ") && whileRunning == 0 {
			// Is the task still running as this line arrives? The
			// leader's state is ahead of the follower's.
			if te := rc.task(t, p, run.RunID, "printer"); te.State != model.TaskStateComplete {
				whileRunning++
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("follow logs on %s broke after %q: %v", node.Name, got.String(), err)
		}
	}
	te := rc.task(t, p, run.RunID, "printer")
	if te.State != model.TaskStateComplete || te.Status != model.TaskStatusSuccessful {
		t.Errorf("the follow stream ended but the task is %s/%s", te.State, te.Status)
	}
	if whileRunning == 0 {
		t.Errorf("no log line arrived while the task was still running: the stream did not follow")
	}
	leaderLog := runsLogs(t, leader.Client(rc.Token), p, run.RunID, "printer")
	if got.String() != leaderLog {
		t.Errorf("followed log on %s differs from the leader's stored log:\nfollowed: %q\nleader:   %q", node.Name, got.String(), leaderLog)
	}
	if err := sameLinesPerStream(leaderLog, wantLog); err != nil {
		t.Errorf("stored log: %v\nwant %q\ngot  %q", err, wantLog, leaderLog)
	}

	// The CLI, against the follower, while a second run prints.
	run2 := rc.start(t, p, nil)
	WaitFor(t, 20*time.Second, func() error {
		_, err := node.Client(rc.Token).GetTask(context.Background(), p, run2.RunID, "printer")
		return err
	})
	id := strconv.FormatInt(run2.RunID, 10)
	type result struct {
		out  string
		code int
	}
	modes := map[string][]string{
		"served by the follower (--stale)": {"--stale", "task", "logs", "--follow", p, id, "printer"},
		"forwarded to the leader":          {"task", "logs", "--follow", p, id, "printer"},
	}
	results := map[string]result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for mode, args := range modes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, code := rc.cli(t, node.URL, args...)
			mu.Lock()
			results[mode] = result{out, code}
			mu.Unlock()
		}()
	}
	wg.Wait()
	te2 := rc.task(t, p, run2.RunID, "printer")
	if te2.State != model.TaskStateComplete {
		t.Errorf("gofer task logs --follow returned before the task completed (%s)", te2.State)
	}
	leaderLog2 := runsLogs(t, leader.Client(rc.Token), p, run2.RunID, "printer")
	if err := sameLinesPerStream(leaderLog2, wantLog); err != nil {
		t.Errorf("stored log of run %d: %v\nwant %q\ngot  %q", run2.RunID, err, wantLog, leaderLog2)
	}
	for mode, res := range results {
		if res.code != 0 || res.out != leaderLog2 {
			t.Errorf("gofer task logs --follow on %s, %s: exit %d, output %q; want exit 0 and %q", node.Name, mode, res.code, res.out, leaderLog2)
		}
	}
	rc.wait(t, p, run.RunID, 10*time.Second)
	rc.wait(t, p, run2.RunID, 10*time.Second)
}

// runsTestStartRules: the same Idempotency-Key and request return the same
// run, the key with another request is refused (422); run
// ids count up per pipeline; a disabled pipeline and paused ingress refuse
// new runs with 409 and a message saying what to do; `gofer run watch`
// exits 1 for a failed run and 0 for a successful one.
func runsTestStartRules(t *testing.T, rc *runsCluster, sfx string) {
	ctx := context.Background()
	p, p2 := "rules-"+sfx, "rules2-"+sfx
	for _, id := range []string{p, p2} {
		rc.deploy(t, &sdk.PipelineConfig{ID: id, Name: "start rules", Tasks: []*sdk.TaskConfig{
			{ID: "quick", Image: runsBusybox, Command: []string{"sh", "-c", `echo "exiting $WANT_EXIT"; exit "$WANT_EXIT"`},
				Variables: map[string]string{"WANT_EXIT": "0"}},
		}})
	}
	url := rc.Leader().URL
	if fs := rc.Followers(); len(fs) > 0 {
		url = fs[len(fs)-1].URL
	}

	first, err := rc.cl.StartRunWithKey(ctx, p, "e2e-same-key", nil)
	if err != nil {
		t.Fatalf("start with a key: %v", err)
	}
	again, err := rc.cl.StartRunWithKey(ctx, p, "e2e-same-key", nil)
	if err != nil {
		t.Fatalf("start again with the same key: %v", err)
	}
	if first.RunID != 1 || again.RunID != first.RunID || again.IdempotencyKey != "e2e-same-key" {
		t.Errorf("the same Idempotency-Key must return the same run (1): got runs %d and %d (key %q)", first.RunID, again.RunID, again.IdempotencyKey)
	}
	// The key is bound to its request: other variables are another request.
	if _, err := rc.cl.StartRunWithKey(ctx, p, "e2e-same-key", map[string]string{"OTHER": "yes"}); !client.IsStatus(err, 422) ||
		!strings.Contains(err.Error(), "Idempotency-Key") {
		t.Errorf("the same Idempotency-Key with other variables: want 422 naming Idempotency-Key, got %v", err)
	}
	other, err := rc.cl.StartRunWithKey(ctx, p, "e2e-other-key", nil)
	if err != nil {
		t.Fatalf("start with another key: %v", err)
	}
	plain := rc.start(t, p, nil)
	firstOfP2 := rc.start(t, p2, nil)
	if other.RunID != 2 || plain.RunID != 3 || firstOfP2.RunID != 1 {
		t.Errorf("run ids count up per pipeline: want %s 2, 3 and %s 1; got %d, %d and %d", p, p2, other.RunID, plain.RunID, firstOfP2.RunID)
	}
	list, err := rc.cl.ListRuns(ctx, p, client.Page{})
	if err != nil || len(list) != 3 {
		t.Errorf("pipeline %s: want 3 runs, got %d (%v)", p, len(list), err)
	}

	// A disabled pipeline refuses runs, through the API and the CLI.
	if _, err := rc.cl.SetPipelineState(ctx, p2, model.PipelineStateDisabled); err != nil {
		t.Fatalf("disable %s: %v", p2, err)
	}
	_, err = rc.cl.StartRun(ctx, p2, nil)
	if !client.IsStatus(err, 409) || !strings.Contains(err.Error(), "disabled") || !strings.Contains(err.Error(), "gofer pipeline enable") {
		t.Errorf("starting a run of a disabled pipeline: want 409 saying it is disabled and how to enable it, got %v", err)
	}
	if out, code := rc.cli(t, url, "pipeline", "run", p2); code == 0 || !strings.Contains(out, "disabled") {
		t.Errorf("gofer pipeline run on a disabled pipeline: want a non-zero exit saying it is disabled, got exit %d: %s", code, out)
	}
	if _, err := rc.cl.SetPipelineState(ctx, p2, model.PipelineStateActive); err != nil {
		t.Fatalf("enable %s: %v", p2, err)
	}

	// Paused ingress refuses runs cluster-wide until resumed.
	if out, code := rc.cli(t, url, "system", "pause-runs"); code != 0 {
		t.Fatalf("gofer system pause-runs: exit %d: %s", code, out)
	}
	_, err = rc.cl.StartRun(ctx, p, nil)
	if !client.IsStatus(err, 409) || !strings.Contains(err.Error(), "paused") || !strings.Contains(err.Error(), "resume-runs") {
		t.Errorf("starting a run while runs are paused: want 409 saying so and how to resume, got %v", err)
	}
	if out, code := rc.cli(t, url, "system", "resume-runs"); code != 0 {
		t.Fatalf("gofer system resume-runs: exit %d: %s", code, out)
	}
	resumed := rc.start(t, p, nil)
	if resumed.RunID != 4 {
		t.Errorf("refused starts must not use up run ids: want run 4, got %d", resumed.RunID)
	}

	// gofer run watch: 0 for a successful run, 1 for a failed one.
	failing := rc.start(t, p, map[string]string{"WANT_EXIT": "5"})
	out, code := rc.cli(t, url, "run", "watch", p, strconv.FormatInt(failing.RunID, 10))
	if code != 1 || !strings.Contains(out, "failed") {
		t.Errorf("gofer run watch of a failing run: want exit 1 saying it failed, got exit %d:\n%s", code, out)
	}
	out, code = rc.cli(t, url, "run", "watch", p, strconv.FormatInt(resumed.RunID, 10))
	if code != 0 || !strings.Contains(out, "successful") {
		t.Errorf("gofer run watch of a successful run: want exit 0, got exit %d:\n%s", code, out)
	}
	out, code = rc.cli(t, url, "pipeline", "run", p, "-v", "WANT_EXIT=0", "--watch")
	if code != 0 || !strings.Contains(out, "Started run 6") {
		t.Errorf("gofer pipeline run --watch of a succeeding run: want exit 0, got exit %d:\n%s", code, out)
	}
	out, code = rc.cli(t, url, "pipeline", "run", p, "-v", "WANT_EXIT=2", "--watch")
	if code != 1 || !strings.Contains(out, "Started run 7") {
		t.Errorf("gofer pipeline run --watch of a failing run: want exit 1, got exit %d:\n%s", code, out)
	}
	if te := rc.task(t, p, 7, "quick"); te.ExitCode == nil || *te.ExitCode != 2 {
		t.Errorf("run 7's task: want exit 2 (run variable over the task's WANT_EXIT=0), got %v", te.ExitCode)
	}
	for id := int64(1); id <= 7; id++ {
		rc.wait(t, p, id, 30*time.Second)
	}
	rc.wait(t, p2, 1, 30*time.Second)
}

// sameLinesPerStream checks that got holds exactly want's lines, in
// want's order within each stream (a line's stream is its "(stdout)" or
// "(stderr)" suffix). The order across the two streams is Docker's: it
// reads a container's stdout and stderr through separate pipes, and on a
// loaded machine a stderr line can be stored after the stdout line
// printed 100 ms later. Gofer keeps what Docker hands it; what it must
// not do is lose, repeat or reorder lines of one stream.
func sameLinesPerStream(got, want string) error {
	split := func(log string) map[string][]string {
		streams := map[string][]string{}
		for _, line := range strings.SplitAfter(log, "\n") {
			if line == "" {
				continue
			}
			stream := "other"
			for _, s := range []string{"(stdout)", "(stderr)"} {
				if strings.HasSuffix(line, s+"\n") {
					stream = s
				}
			}
			streams[stream] = append(streams[stream], line)
		}
		return streams
	}
	g, w := split(got), split(want)
	for _, stream := range []string{"other", "(stdout)", "(stderr)"} {
		if !slices.Equal(g[stream], w[stream]) {
			return fmt.Errorf("the %s lines differ: got %q, want %q", stream, g[stream], w[stream])
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("got %d bytes, want %d", len(got), len(want))
	}
	return nil
}
