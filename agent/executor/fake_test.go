package executor

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/fake"
	"github.com/goferhq/gofer/store/model"
)

// The executor's own decisions on the fake scheduler (scheduler/fake): a
// container's exit, output and timing are what its script says, and the
// scheduler fails when told to, so each path is taken deterministically
// and without an engine.

// byTask chooses each container's script by its task and attempt
// ("task" or "task/attempt", the latter first).
func byTask(scripts map[string]fake.Script) func(scheduler.StartRequest) fake.Script {
	return func(req scheduler.StartRequest) fake.Script {
		if s, ok := scripts[req.Labels[LabelTask]+"/"+req.Labels[LabelAttempt]]; ok {
			return s
		}
		return scripts[req.Labels[LabelTask]]
	}
}

func out(lines ...string) []fake.Line {
	var l []fake.Line
	for _, s := range lines {
		l = append(l, fake.Line{Stderr: strings.HasPrefix(s, "err"), Text: s})
	}
	return l
}

// A task's result is its container's exit: 0 succeeds, anything else
// fails with the code (and is retried when the task has retries); the
// log holds both streams; each attempt's container runs once and is
// removed after its result is recorded.
func TestTaskResultIsItsContainersExit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		retries  int
		scripts  map[string]fake.Script
		status   model.TaskStatus
		reason   string
		exit     int
		attempts int
		log      string
	}{
		{"success", 0, map[string]fake.Script{"t": {Output: out("out 1", "err 1", "out 2")}},
			model.TaskStatusSuccessful, "", 0, 1, "out 1\nerr 1\nout 2\n"},
		{"failure", 0, map[string]fake.Script{"t": {Output: out("err bad input"), Exit: 3}},
			model.TaskStatusFailed, model.ReasonAbnormalExit, 3, 1, "err bad input\n"},
		{"retried", 2, map[string]fake.Script{"t/1": {Output: out("first"), Exit: 3}, "t/2": {Output: out("second")}},
			model.TaskStatusSuccessful, "", 0, 2, "first\n[gofer] attempt 2 of 3 starting\nsecond\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task := shTask("t", "true")
			if tc.retries > 0 {
				task = task.Retries(tc.retries, 10*time.Millisecond)
			}
			h, sched := newFakeHarness(t, pipeline("exit-"+tc.name, task), nil)
			sched.Scripts = byTask(tc.scripts)
			h.startExecutor(sched)
			h.waitRun(time.Minute)
			te := h.task("t")
			if te.Status != tc.status || te.ExitCode == nil || *te.ExitCode != tc.exit || te.Attempt != tc.attempts ||
				(tc.reason != "" && (te.StatusReason == nil || te.StatusReason.Reason != tc.reason)) {
				t.Fatalf("task %s, exit %v, attempt %d, reason %+v; want %s, exit %d, attempt %d, reason %q",
					te.Status, te.ExitCode, te.Attempt, te.StatusReason, tc.status, tc.exit, tc.attempts, tc.reason)
			}
			if got := h.log("t"); got != tc.log {
				t.Fatalf("log %q, want %q", got, tc.log)
			}
			for a := 1; a <= tc.attempts; a++ {
				name := ContainerName(h.clusterID, te, a)
				if n := sched.Runs(name); n != 1 {
					t.Fatalf("attempt %d's container ran %d times", a, n)
				}
				waitFor(t, time.Now().Add(time.Minute), "the container's removal", func() bool {
					st, err := sched.Inspect(context.Background(), name)
					return err == nil && st.State == scheduler.StateNotFound
				})
			}
		})
	}
}

// An unreachable scheduler is retried with backoff until the start goes
// through; the container runs once.
func TestStartIsRetriedWhileTheSchedulerIsUnavailable(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("start-retry", shTask("t", "true")), nil)
	sched.Scripts = byTask(map[string]fake.Script{"t": {Output: out("started at last")}})
	sched.FailNext(2, "Start")
	h.startExecutor(sched)
	if r := h.waitRun(time.Minute); r.Status != model.RunStatusSuccessful {
		t.Fatalf("run %s", r.Status)
	}
	if n := sched.Calls("Start"); n != 3 {
		t.Fatalf("%d Start calls, want 2 refused and 1 that went through", n)
	}
	te := h.task("t")
	if n := sched.Runs(te.Container); n != 1 || h.log("t") != "started at last\n" || te.Attempt != 1 {
		t.Fatalf("container ran %d times, log %q, attempt %d; want one run of attempt 1", n, h.log("t"), te.Attempt)
	}
}

// previousLeader records what a leader that died mid-attempt left: the run
// started and attempt 1 scheduled (and running, if running is set). It
// returns the attempt's container request, as that leader made it.
func previousLeader(h *harness, task string, running bool) scheduler.StartRequest {
	h.t.Helper()
	h.must(fsm.CmdRunStart, fsm.RunStart{RunRef: h.ref})
	te := h.task(task)
	name := ContainerName(h.clusterID, te, 1)
	h.must(fsm.CmdTaskSchedule, fsm.TaskSchedule{TaskRef: h.taskRef(task), Attempt: 1, Container: name, Variables: map[string]string{}})
	if running {
		h.must(fsm.CmdTaskRunning, fsm.TaskRunning{TaskRef: h.taskRef(task), Attempt: 1})
	}
	te = h.task(task)
	return scheduler.StartRequest{Name: name, Image: te.Task.Image, Command: te.Task.Command, Labels: containerLabels(h.clusterID, te, 1, 1)}
}

// A new leader adopts the container a previous leader started (it does
// not start another), follows it to its exit and records that.
func TestRecoveryAdoptsTheRunningContainer(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("adopt", shTask("t", "true")), nil)
	sched.Scripts = byTask(map[string]fake.Script{"t": {Output: out("from the old leader's time"), Hold: true}})
	req := previousLeader(h, "t", true)
	if err := sched.Start(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	h.startExecutor(sched)
	waitFor(t, time.Now().Add(time.Minute), "the new leader to wait on the container", func() bool { return sched.Calls("Wait") > 0 })
	sched.Print(req.Name, fake.Line{Text: "after the failover"})
	sched.Exit(req.Name, 0)
	h.waitRun(time.Minute)
	te := h.task("t")
	if te.Status != model.TaskStatusSuccessful || sched.Calls("Start") != 1 || sched.Runs(req.Name) != 1 {
		t.Fatalf("task %s, %d Start calls, %d runs; want successful with only the old leader's start", te.Status, sched.Calls("Start"), sched.Runs(req.Name))
	}
	if got, want := h.log("t"), "from the old leader's time\nafter the failover\n"; got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
}

// lateStart hides a container from the first Inspect of its name and
// lets the previous leader's start land right then: the new leader saw
// no container, so it starts one, gets ErrAlreadyExists, and must adopt
// the container under the attempt's name.
type lateStart struct {
	*fake.Scheduler
	req  scheduler.StartRequest
	once sync.Once
}

func (l *lateStart) Inspect(ctx context.Context, name string) (scheduler.Status, error) {
	hidden := false
	l.once.Do(func() {
		hidden = true
		if err := l.Scheduler.Start(ctx, l.req); err != nil {
			panic(err)
		}
	})
	if hidden {
		return scheduler.Status{State: scheduler.StateNotFound}, nil
	}
	return l.Scheduler.Inspect(ctx, name)
}

func TestStartConflictAdoptsTheContainer(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("conflict", shTask("t", "true")), nil)
	sched.Scripts = byTask(map[string]fake.Script{"t": {Output: out("the old leader's container"), Exit: 5, Hold: true}})
	req := previousLeader(h, "t", false)
	h.startExecutor(&lateStart{Scheduler: sched, req: req})
	waitFor(t, time.Now().Add(time.Minute), "the adopted attempt to run", func() bool { return h.task("t").State == model.TaskStateRunning })
	sched.Exit(req.Name, 5)
	h.waitRun(time.Minute)
	te := h.task("t")
	if sched.Calls("Start") != 2 || sched.Runs(req.Name) != 1 {
		t.Fatalf("%d Start calls, %d runs; want the new leader's start refused and one run", sched.Calls("Start"), sched.Runs(req.Name))
	}
	if te.Status != model.TaskStatusFailed || te.ExitCode == nil || *te.ExitCode != 5 || h.log("t") != "the old leader's container\n" {
		t.Fatalf("task %s exit %v log %q; want the adopted container's exit 5 and output", te.Status, te.ExitCode, h.log("t"))
	}
}

// A container the previous leader created but never started is started
// by the new one: that container, once.
func TestRecoveryStartsTheCreatedContainer(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("created", shTask("t", "true")), nil)
	sched.Scripts = byTask(map[string]fake.Script{"t": {Output: out("created, then started")}})
	req := previousLeader(h, "t", false)
	if err := sched.Create(req); err != nil {
		t.Fatal(err)
	}
	h.startExecutor(sched)
	if r := h.waitRun(time.Minute); r.Status != model.RunStatusSuccessful {
		t.Fatalf("run %s", r.Status)
	}
	if sched.Runs(req.Name) != 1 || h.log("t") != "created, then started\n" {
		t.Fatalf("%d runs, log %q; want the created container run once", sched.Runs(req.Name), h.log("t"))
	}
}

// A task recorded running whose container the scheduler positively does
// not have is lost (and, without retries, failed).
func TestRecoveryOfAVanishedContainerIsLost(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("lost", shTask("t", "true")), nil)
	previousLeader(h, "t", true)
	sched.FailNext(3, "Inspect") // unreachable at first: never guessed about
	h.startExecutor(sched)
	h.waitRun(time.Minute)
	te := h.task("t")
	if te.Status != model.TaskStatusFailed || te.StatusReason == nil || te.StatusReason.Reason != model.ReasonLost {
		t.Fatalf("task %s %+v; want failed as lost", te.Status, te.StatusReason)
	}
	if n := sched.Calls("Start"); n != 0 {
		t.Fatalf("%d Start calls for an attempt that had run", n)
	}
}

// Cancelling a running task stops its container with the cancellation's
// grace; the task is cancelled with the exit the stop caused.
func TestCancelStopsTheContainer(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("cancel", shTask("t", "sleep 300")), nil)
	sched.Scripts = byTask(map[string]fake.Script{"t": {Output: out("working"), Hold: true, TermExit: 143}})
	h.startExecutor(sched)
	waitFor(t, time.Now().Add(time.Minute), "the task to run", func() bool { return h.task("t").State == model.TaskStateRunning })
	h.must(fsm.CmdTaskCancel, fsm.TaskCancel{TaskRef: h.taskRef("t"), Cancel: model.Cancellation{Reason: model.ReasonUserCancelled, By: "tester", GraceMillis: 2000}})
	r := h.waitRun(time.Minute)
	te := h.task("t")
	if r.Status != model.RunStatusCancelled || te.Status != model.TaskStatusCancelled || te.ExitCode == nil || *te.ExitCode != 143 ||
		te.StatusReason == nil || !strings.Contains(te.StatusReason.Description, "tester") {
		t.Fatalf("run %s, task %s exit %v %+v; want both cancelled by tester with exit 143", r.Status, te.Status, te.ExitCode, te.StatusReason)
	}
	if n := sched.Calls("Stop"); n != 1 {
		t.Fatalf("%d Stop calls, want 1", n)
	}
}

// A task's resources from the pipeline config reach its container
// request; a task without them asks for the scheduler's defaults (zero).
func TestTaskResourcesReachTheScheduler(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("resources", shTask("big", "true").Resources(250, 64), shTask("plain", "true")), nil)
	var mu sync.Mutex
	got := map[string][2]int{}
	sched.Scripts = func(req scheduler.StartRequest) fake.Script {
		mu.Lock()
		defer mu.Unlock()
		got[req.Labels[LabelTask]] = [2]int{req.CPU, req.MemoryMB}
		return fake.Script{}
	}
	h.startExecutor(sched)
	if r := h.waitRun(time.Minute); r.Status != model.RunStatusSuccessful {
		t.Fatalf("run %s", r.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["big"] != [2]int{250, 64} || got["plain"] != [2]int{0, 0} {
		t.Fatalf("requests' cpu and memory %v, want big 250/64 and plain 0/0", got)
	}
}
