package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/fsm/fsmtest"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/docker"
	"github.com/goferhq/gofer/scheduler/docker/dockertest"
	"github.com/goferhq/gofer/scheduler/fake"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// These tests drive the executor over a real FSM (commands applied in
// order, as raft would on one node) and a scheduler: the in-memory fake
// (scheduler/fake, which passes the same conformance suite as Docker) for
// the executor's own logic, the real Docker scheduler where the engine's
// behaviour is part of what is tested. Faults are injected by wrapping
// either one: a scheduler call or a replication that fails, a stale view
// of state.

// realDocker is nil when there is no engine and dockertest.SkipEnv is set;
// the tests that need it skip then (needDocker).
var realDocker *docker.Scheduler

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	skip, err := dockertest.Prepare()
	if skip {
		fmt.Println("skipping the executor's Docker tests (" + dockertest.SkipEnv + "); the tests on the fake run")
		return m.Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if realDocker, err = docker.New(docker.Options{Network: "none", Logger: hclog.NewNullLogger()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// needDocker skips a test that needs the engine when there is none (only
// with dockertest.SkipEnv set: otherwise TestMain has failed already).
func needDocker(t *testing.T) {
	t.Helper()
	if realDocker == nil {
		t.Skip("needs a Docker engine (" + dockertest.SkipEnv + " is set)")
	}
}

// harness is one pipeline's run in a fresh FSM.
type harness struct {
	t         *testing.T
	f         *fsm.FSM
	direct    *fsm.Direct
	clusterID string
	ref       fsm.RunRef
	// sched is the scheduler whose containers the harness removes.
	sched scheduler.Scheduler

	mu sync.Mutex
	// fail, when set, fails the replication of matching commands.
	fail   func(fsm.CommandType, any) error
	counts map[fsm.CommandType]int
}

// newHarness is a harness over the real Docker scheduler.
func newHarness(t *testing.T, cfg *sdk.PipelineConfig, vars map[string]string) *harness {
	t.Helper()
	needDocker(t)
	return newHarnessOn(t, realDocker, cfg, vars)
}

// newFakeHarness is a harness over a fresh fake scheduler.
func newFakeHarness(t *testing.T, cfg *sdk.PipelineConfig, vars map[string]string) (*harness, *fake.Scheduler) {
	t.Helper()
	f := fake.New()
	return newHarnessOn(t, f, cfg, vars), f
}

func newHarnessOn(t *testing.T, sched scheduler.Scheduler, cfg *sdk.PipelineConfig, vars map[string]string) *harness {
	t.Helper()
	f := fsmtest.New(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	h := &harness{t: t, f: f, direct: &fsm.Direct{FSM: f, Actor: "test"}, clusterID: "test-" + hex.EncodeToString(b),
		counts: map[fsm.CommandType]int{}, sched: sched}
	t.Cleanup(h.removeContainers)
	h.must(fsm.CmdClusterInit, fsm.ClusterInit{ClusterID: h.clusterID, Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: model.DefaultNamespace, Name: "Default"}})
	h.must(fsm.CmdConfigRegister, fsm.ConfigRegister{NamespaceID: model.DefaultNamespace, Config: cfg})
	h.must(fsm.CmdConfigDeploy, fsm.ConfigDeploy{NamespaceID: model.DefaultNamespace, PipelineID: cfg.ID, Version: 1})
	res := h.must(fsm.CmdRunCreate, fsm.RunCreate{NamespaceID: model.DefaultNamespace, PipelineID: cfg.ID, Variables: vars})
	r := res.Value.(*fsm.RunCreated).Run
	h.ref = fsm.RunRef{NamespaceID: r.NamespaceID, PipelineID: r.PipelineID, RunID: r.RunID}
	return h
}

// apply is the executor's Applier.
func (h *harness) apply(ctx context.Context, t fsm.CommandType, body any) (*fsm.Result, error) {
	h.mu.Lock()
	h.counts[t]++
	fail := h.fail
	h.mu.Unlock()
	if fail != nil {
		if err := fail(t, body); err != nil {
			return nil, err
		}
	}
	return h.direct.Apply(ctx, t, body)
}

func (h *harness) count(t fsm.CommandType) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[t]
}

func (h *harness) must(t fsm.CommandType, body any) *fsm.Result {
	h.t.Helper()
	res, err := h.direct.Apply(context.Background(), t, body)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		h.t.Fatalf("command %d: %v", t, err)
	}
	return res
}

func (h *harness) run() *model.Run {
	var r *model.Run
	_ = h.f.View(func(tx *bbolt.Tx) (err error) {
		r, err = store.GetRun(tx, h.ref.NamespaceID, h.ref.PipelineID, h.ref.RunID)
		return err
	})
	return r
}

func (h *harness) task(id string) *model.TaskExecution {
	var te *model.TaskExecution
	_ = h.f.View(func(tx *bbolt.Tx) (err error) {
		te, err = store.GetTask(tx, h.ref.NamespaceID, h.ref.PipelineID, h.ref.RunID, id)
		return err
	})
	return te
}

func (h *harness) log(id string) string {
	var out []byte
	_ = h.f.View(func(tx *bbolt.Tx) error {
		chunks, _ := store.LogChunks(tx, h.ref.NamespaceID, h.ref.PipelineID, h.ref.RunID, id, 0, 1<<20)
		for _, c := range chunks {
			out = append(out, c...)
		}
		return nil
	})
	return string(out)
}

func (h *harness) taskRef(id string) fsm.TaskRef { return fsm.TaskRef{RunRef: h.ref, TaskID: id} }

// waitRun waits (bounded, so a hang fails instead of stalling the suite)
// for the run to complete.
func (h *harness) waitRun(within time.Duration) *model.Run {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if r := h.run(); r.State == model.RunStateComplete {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run not complete after %s: %+v", within, h.run())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *harness) removeContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := h.sched.List(ctx, map[string]string{LabelCluster: h.clusterID})
	if err != nil {
		h.t.Errorf("listing the test's containers: %v", err)
		return
	}
	for _, c := range list {
		_ = h.sched.Remove(ctx, c.Name)
	}
}

func (h *harness) config() Config {
	return Config{ClusterID: h.clusterID, Term: 1, StopGrace: time.Second, LogMaxBytes: 1 << 20, LogFlushInterval: 100 * time.Millisecond}
}

// startExecutor runs an executor until the test ends.
func (h *harness) startExecutor(s scheduler.Scheduler) *Executor {
	e := New(h.config(), h.deps(), s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	h.t.Cleanup(func() { cancel(); <-done })
	return e
}

func shTask(id, script string) *sdk.Task {
	return sdk.NewTask(id, dockertest.BusyboxImage).Command("sh", "-c", script)
}

func pipeline(id string, tasks ...*sdk.Task) *sdk.PipelineConfig {
	return sdk.NewPipeline(id, id).Tasks(tasks...).Config()
}

// A reconcile pass works from a snapshot; the worker it launches may see
// a task whose attempt already finished (the previous worker freed the
// key just after committing the result). It must not start that
// attempt's container again.
func TestStaleTaskCopyDoesNotStartTheAttemptAgain(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("stale-copy", shTask("only", "true")), nil)
	h.startExecutor(sched)
	if r := h.waitRun(time.Minute); r.Status != model.RunStatusSuccessful {
		t.Fatalf("run %s: %+v", r.Status, r.StatusReason)
	}
	finished := h.task("only")
	stale := *finished
	stale.State, stale.Status = model.TaskStateScheduled, model.TaskStatusUnknown

	starts := sched.Calls("Start")
	late := New(h.config(), h.deps(), sched)
	late.runTask(context.Background(), h.run(), &stale)
	late.wg.Wait()
	if n := sched.Calls("Start") - starts; n != 0 {
		t.Fatalf("a worker with a stale copy of a finished attempt started it %d more time(s)", n)
	}
	// The first worker removes its container after recording the result,
	// which can land just after the run completes. A container the stale
	// worker had started again would stay.
	var st scheduler.Status
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st, err = sched.Inspect(context.Background(), finished.Container); err == nil && st.State == scheduler.StateNotFound {
			if n := sched.Runs(finished.Container); n != 1 {
				t.Fatalf("the attempt's container ran %d times", n)
			}
			return
		}
	}
	t.Fatalf("container %s: %+v %v; want it gone", finished.Container, st, err)
}

// A stop the engine fails is asked again, so a cancelled task ends.
func TestStopIsAskedAgainUntilTheContainerEnds(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("stop-again", shTask("sleeper", "sleep 300")), nil)
	sched.Scripts = func(scheduler.StartRequest) fake.Script { return fake.Script{Hold: true, TermExit: 143} }
	sched.FailNext(1, "Stop")
	h.startExecutor(sched)
	deadline := time.Now().Add(time.Minute)
	waitFor(t, deadline, "the task to run", func() bool { return h.task("sleeper").State == model.TaskStateRunning })
	h.must(fsm.CmdTaskCancel, fsm.TaskCancel{TaskRef: h.taskRef("sleeper"), Cancel: model.Cancellation{Reason: model.ReasonUserCancelled, By: "test", GraceMillis: 1000}})
	r := h.waitRun(time.Minute)
	task := h.task("sleeper")
	if task.Status != model.TaskStatusCancelled || r.Status != model.RunStatusCancelled {
		t.Fatalf("task %s (%+v), run %s; want both cancelled", task.Status, task.StatusReason, r.Status)
	}
	if stops := sched.Calls("Stop"); stops < 2 {
		t.Fatalf("%d stop requests; the failed one should have been repeated", stops)
	}
}

// Output whose replication failed is sent again: the log has no hole.
func TestLogOutputIsKeptWhenItsReplicationFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline("log-retry", shTask("talker", "echo line-1; sleep 1; echo line-2; sleep 1; echo line-3")), nil)
	var once sync.Once
	h.fail = func(c fsm.CommandType, _ any) error {
		var err error
		if c == fsm.CmdLogAppend {
			once.Do(func() { err = errors.New("injected: no quorum") })
		}
		return err
	}
	h.startExecutor(realDocker)
	if r := h.waitRun(time.Minute); r.Status != model.RunStatusSuccessful {
		t.Fatalf("run %s", r.Status)
	}
	if got, want := h.log("talker"), "line-1\nline-2\nline-3\n"; got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
}

// A command that cannot be replicated is retried with backoff, not on
// every pass.
func TestFailingReplicationIsRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("backoff", shTask("never", "true")), nil)
	h.fail = func(c fsm.CommandType, _ any) error {
		if c == fsm.CmdTaskSchedule {
			return errors.New("injected: entry too large")
		}
		return nil
	}
	h.startExecutor(sched)
	time.Sleep(3 * time.Second)
	// Backoff from 100 ms doubling: about 5 tries in 3 s. Relaunched on
	// every pass it would be hundreds.
	if n := h.count(fsm.CmdTaskSchedule); n < 2 || n > 12 {
		t.Fatalf("%d TaskSchedule attempts in 3s; want a few, spaced by backoff", n)
	}
}

// An environment too large to replicate fails the task with a reason,
// once, and the run ends.
func TestOversizedEnvironmentFailsTheTask(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("big-env", shTask("big", "true")), map[string]string{"BIG": strings.Repeat("x", 300<<10)})
	h.startExecutor(sched)
	r := h.waitRun(time.Minute)
	task := h.task("big")
	if r.Status != model.RunStatusFailed || task.Status != model.TaskStatusFailed || task.StatusReason == nil ||
		task.StatusReason.Reason != model.ReasonSchedulerError || !strings.Contains(task.StatusReason.Description, "environment") {
		t.Fatalf("run %s, task %s %+v; want failed with a reason naming the environment", r.Status, task.Status, task.StatusReason)
	}
	if n := h.count(fsm.CmdTaskSchedule); n != 0 {
		t.Fatalf("%d TaskSchedule commands for an environment that cannot be replicated", n)
	}
}

// A task that references a secret that does not exist fails with a
// reason that names it, and no container starts with the literal marker.
func TestSecretMarkerFailsTheTaskWithAReason(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("marker", shTask("uses-secret", "true").Variable("API_KEY", sdk.PipelineSecret("api_key"))), nil)
	h.startExecutor(sched)
	r := h.waitRun(time.Minute)
	task := h.task("uses-secret")
	if r.Status != model.RunStatusFailed || task.Status != model.TaskStatusFailed || task.StatusReason == nil ||
		task.StatusReason.Reason != model.ReasonFailedPrecondition || !strings.Contains(task.StatusReason.Description, `pipeline_secret "api_key"`) {
		t.Fatalf("run %s, task %s %+v; want failed_precondition naming the secret", r.Status, task.Status, task.StatusReason)
	}
	if n := h.count(fsm.CmdTaskRunning); n != 0 {
		t.Fatalf("%d TaskRunning commands for a task whose secret cannot be resolved", n)
	}
}

// scriptedLogs replaces the container's log stream (the container itself
// is real): each call to Logs returns the next reader.
type scriptedLogs struct {
	scheduler.Scheduler
	mu      sync.Mutex
	readers []io.ReadCloser
}

func (s *scriptedLogs) Logs(ctx context.Context, name string, follow bool) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.readers[0]
	if len(s.readers) > 1 {
		s.readers = s.readers[1:]
	}
	return r, nil
}

// A new leader resumes a task's log at the stored offset; a secret that
// began before that offset (the old leader stored its start, masked, and
// held the rest because it may also begin another secret) is masked to
// its end.
func TestResumedLogMasksASecretThatBeganBeforeTheOffset(t *testing.T) {
	t.Parallel()
	const a, b = "token-AAAA-end1", "end1-BBBB-secret" // a's end begins b
	h := newHarness(t, pipeline("resume-mask", shTask("t", "sleep 4").
		Variable("A", sdk.PipelineSecret("a")).Variable("B", sdk.PipelineSecret("b"))), nil)
	keys, err := seal.NewKeyring("9f3c1a7e5b2d4086c1e9a3f7b5d20846")
	if err != nil {
		t.Fatal(err)
	}
	box := keys.Primary()
	for key, value := range map[string]string{"a": a, "b": b} {
		sealed, err := box.Seal([]byte(value), seal.PipelineLocation(model.DefaultNamespace, "resume-mask", key))
		if err != nil {
			t.Fatal(err)
		}
		h.must(fsm.CmdSecretPut, fsm.SecretPut{NamespaceID: model.DefaultNamespace, PipelineID: "resume-mask", Key: key,
			Sealed: sealed, KeyCheck: box.KeyCheck()})
	}
	cfg := h.config()
	cfg.Secrets = keys

	// The first leader sees "xx" and a, then loses leadership.
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("xx" + a))
	sched := &scriptedLogs{Scheduler: realDocker, readers: []io.ReadCloser{pr}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = New(cfg, h.deps(), sched).Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for h.task("t").LogOffset < 2+int64(len(a)-len("end1")) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the first leader stored %q", h.log("t"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done

	// The next one reads the whole output again and resumes at the offset.
	sched.mu.Lock()
	sched.readers = []io.ReadCloser{io.NopCloser(strings.NewReader("xx" + a + "QQ"))}
	sched.mu.Unlock()
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { defer close(done); _ = New(cfg, h.deps(), sched).Run(ctx) }()
	defer func() { cancel(); <-done }()
	h.waitRun(time.Minute)
	if got, want := h.log("t"), "xx"+strings.Repeat("*", len(a))+"QQ"; got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
}

// deps builds the executor from the harness's state and applier.
func (h *harness) deps() leadership.Deps {
	return leadership.Deps{State: h.f, Apply: leadership.ApplyFunc(h.apply), Logger: hclog.NewNullLogger()}
}
