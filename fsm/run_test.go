package fsm

import (
	"errors"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// runFixture is an FSM with pipeline "dag" (tasks a, b→a) deployed.
type runFixture struct {
	t testing.TB
	f *FSM
	b *logBuilder
}

// scheduledTask starts run 1 of the dag pipeline and schedules attempt
// 1 of its task aaa in container "c", the start of most log tests.
func (x *runFixture) scheduledTask() TaskRef {
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
	x.ok(CmdRunStart, RunStart{RunRef: ref(1, "").RunRef})
	a := ref(1, "aaa")
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c"})
	return a
}

func newRunFixture(t *testing.T) *runFixture {
	f := testFSM(t, t.TempDir())
	b := &logBuilder{t: t}
	x := &runFixture{t: t, f: f, b: b}
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG", Timeout: "1h", Tasks: []*sdk.TaskConfig{
		{ID: "aaa", Image: "busybox", Retries: 1},
		{ID: "bbb", Image: "busybox", DependsOn: map[string]sdk.RequiredParentStatus{"aaa": sdk.RequiredParentStatusSuccess}},
	}}
	x.ok(CmdClusterInit, ClusterInit{ClusterID: "c", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: "default"}})
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg})
	x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 1})
	return x
}

func (x *runFixture) apply(typ CommandType, body any) *Result {
	x.t.Helper()
	return resultOf(x.t, x.f.Apply(x.b.entry(typ, body)))
}

func (x *runFixture) ok(typ CommandType, body any) any {
	x.t.Helper()
	res := x.apply(typ, body)
	if res.Err != nil {
		x.t.Fatalf("command %d: %v", typ, res.Err)
	}
	return res.Value
}

func (x *runFixture) refused(typ CommandType, body any, want error) {
	x.t.Helper()
	if res := x.apply(typ, body); !errors.Is(res.Err, want) {
		x.t.Fatalf("command %d: got %v, want %v", typ, res.Err, want)
	}
}

func (x *runFixture) task(run int64, id string) *model.TaskExecution {
	x.t.Helper()
	var t *model.TaskExecution
	x.f.View(func(tx *bbolt.Tx) (err error) {
		t, err = store.GetTask(tx, "default", "dag", run, id)
		return err
	})
	return t
}

// finishRun takes a created run through both tasks to success, each
// task writing "out" to its log.
func (x *runFixture) finishRun(id int64) {
	x.t.Helper()
	r := ref(id, "")
	x.ok(CmdRunStart, RunStart{RunRef: r.RunRef})
	for _, task := range []string{"aaa", "bbb"} {
		x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: ref(id, task), Attempt: 1, Container: "c"})
		x.ok(CmdLogAppend, LogAppend{TaskRef: ref(id, task), Attempt: 1, Data: []byte("out"), MaxBytes: 100})
		x.ok(CmdTaskFinish, TaskFinish{TaskRef: ref(id, task), Attempt: 1, Status: model.TaskStatusSuccessful})
	}
	x.ok(CmdRunFinish, RunFinish{RunRef: r.RunRef, Status: model.RunStatusSuccessful})
}

func ref(run int64, task string) TaskRef {
	return TaskRef{RunRef: RunRef{NamespaceID: "default", PipelineID: "dag", RunID: run}, TaskID: task}
}

func TestRunCreate(t *testing.T) {
	x := newRunFixture(t)
	start := func(key string) *RunCreated {
		return x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", IdempotencyKey: key}).(*RunCreated)
	}
	first, second := start("k1"), start("")
	if first.Run.RunID != 1 || second.Run.RunID != 2 || first.Run.ConfigVersion != 1 || first.Run.TimeoutMillis != 3_600_000 {
		t.Fatalf("runs %+v %+v", first.Run, second.Run)
	}
	if again := start("k1"); !again.Existing || again.Run.RunID != 1 {
		t.Fatalf("same idempotency key gave %+v", again)
	}
	if tk := x.task(1, "bbb"); tk == nil || tk.State != model.TaskStateWaiting || tk.Task.DependsOn["aaa"] != sdk.RequiredParentStatusSuccess {
		t.Fatalf("task bbb %+v", tk)
	}
	var active []*model.Run
	x.f.View(func(tx *bbolt.Tx) (err error) { active, err = store.ActiveRuns(tx); return err })
	if len(active) != 2 || active[0].RunID != 1 {
		t.Fatalf("active runs %+v", active)
	}

	x.ok(CmdPipelineSetState, PipelineSetState{NamespaceID: "default", PipelineID: "dag", State: model.PipelineStateDisabled})
	x.refused(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"}, ErrConflict)
	x.ok(CmdPipelineSetState, PipelineSetState{NamespaceID: "default", PipelineID: "dag", State: model.PipelineStateActive})
	off := true
	x.ok(CmdSystemUpdate, SystemUpdate{IgnorePipelineRunEvents: &off})
	x.refused(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"}, ErrConflict)
}

func TestTaskLifecycleIsFenced(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
	a := ref(1, "aaa")
	x.refused(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c1"}, ErrConflict) // run still pending
	x.ok(CmdRunStart, RunStart{RunRef: a.RunRef})
	x.refused(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 2}, ErrConflict) // skipping attempt 1
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c1"})
	x.refused(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c1"}, ErrConflict) // twice
	x.refused(CmdTaskRunning, TaskRunning{TaskRef: a, Attempt: 2}, ErrConflict)
	x.ok(CmdTaskRunning, TaskRunning{TaskRef: a, Attempt: 1})
	one := 1
	// A failure with a retry sends the task back to waiting.
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 1, Status: model.TaskStatusFailed, ExitCode: &one,
		Reason: model.StatusReason{Reason: model.ReasonAbnormalExit}, RetryAt: 99999})
	if tk := x.task(1, "aaa"); tk.State != model.TaskStateWaiting || tk.NotBefore != 99999 || len(tk.Attempts) != 1 {
		t.Fatalf("after a retryable failure: %+v", tk)
	}
	x.refused(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 1, Status: model.TaskStatusFailed}, ErrConflict) // stale
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 2, Container: "c2"})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 2, Status: model.TaskStatusSuccessful})
	x.refused(CmdRunFinish, RunFinish{RunRef: a.RunRef, Status: model.RunStatusSuccessful}, ErrConflict) // bbb open
	x.ok(CmdTaskResolve, TaskResolve{TaskRef: ref(1, "bbb"), Status: model.TaskStatusSkipped})
	x.ok(CmdRunFinish, RunFinish{RunRef: a.RunRef, Status: model.RunStatusSuccessful})
	tk := x.task(1, "aaa")
	if tk.Status != model.TaskStatusSuccessful || len(tk.Attempts) != 2 || tk.LogChunks != 1 {
		t.Fatalf("task aaa %+v (the retry writes one attempt marker into the log)", tk)
	}
	var active []*model.Run
	x.f.View(func(tx *bbolt.Tx) (err error) { active, err = store.ActiveRuns(tx); return err })
	if len(active) != 0 {
		t.Fatal("a finished run stayed active")
	}
}

func TestCancelMarksUnfinishedTasks(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
	x.ok(CmdRunStart, RunStart{RunRef: ref(1, "").RunRef})
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: ref(1, "aaa"), Attempt: 1, Container: "c"})
	x.ok(CmdRunCancel, RunCancel{RunRef: ref(1, "").RunRef, Cancel: model.Cancellation{Reason: model.ReasonUserCancelled, By: "alice"}})
	for _, id := range []string{"aaa", "bbb"} {
		if tk := x.task(1, id); tk.Cancel == nil || tk.Cancel.By != "alice" {
			t.Fatalf("task %s not marked for cancellation: %+v", id, tk.Cancel)
		}
	}
	x.refused(CmdTaskSchedule, TaskSchedule{TaskRef: ref(1, "bbb"), Attempt: 1}, ErrConflict)
	// A cancelled task does not retry even if the executor asks.
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: ref(1, "aaa"), Attempt: 1, Status: model.TaskStatusFailed, RetryAt: 5})
	if tk := x.task(1, "aaa"); tk.State != model.TaskStateComplete {
		t.Fatalf("cancelled task retried: %+v", tk)
	}
}

func logText(x *runFixture, run int64, task string) string {
	var chunks [][]byte
	x.f.View(func(tx *bbolt.Tx) error {
		chunks, _ = store.LogChunks(tx, "default", "dag", run, task, 0, 1000)
		return nil
	})
	var b strings.Builder
	for _, c := range chunks {
		b.Write(c)
	}
	return b.String()
}

func TestLogAppendIsIdempotentAndCapped(t *testing.T) {
	x := newRunFixture(t)
	a := x.scheduledTask()
	appendAt := func(off int64, s string) {
		x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: off, Data: []byte(s), MaxBytes: 20})
	}
	appendAt(0, "hello ")
	appendAt(0, "hello world\n") // a second reader from the start: only "world\n" is new
	appendAt(6, "world\n")       // fully duplicate
	if got := logText(x, 1, "aaa"); got != "hello world\n" {
		t.Fatalf("log %q", got)
	}
	appendAt(12, "0123456789abcdef") // crosses the 20-byte cap
	appendAt(28, "ZZZZ")
	got := logText(x, 1, "aaa")
	if !strings.HasPrefix(got, "hello world\n01234567") || !strings.Contains(got, "log truncated") || strings.Contains(got, "ZZZZ") {
		t.Fatalf("capped log %q", got)
	}
	if tk := x.task(1, "aaa"); tk.LogOffset != 32 || !tk.LogsTruncated {
		t.Fatalf("task %+v", tk)
	}
	// Past the cap the result says the log is full, so the collector can
	// stop shipping output.
	if res := x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 32, Data: []byte("more"), MaxBytes: 20}); !res.(*LogAppended).Full {
		t.Fatalf("append past the cap: %+v, want Full", res)
	}
}

// A chunk that starts past what is stored would leave a hole no later
// append could fill: it is refused and changes nothing.
func TestLogAppendRefusesAGap(t *testing.T) {
	x := newRunFixture(t)
	a := x.scheduledTask()
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 0, Data: []byte("one\n"), MaxBytes: 100})
	if res := x.apply(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 8, Data: []byte("three\n"), MaxBytes: 100}); !errors.Is(res.Err, ErrConflict) {
		t.Fatalf("a chunk after a gap: %v, want ErrConflict", res.Err)
	}
	if got, tk := logText(x, 1, "aaa"), x.task(1, "aaa"); got != "one\n" || tk.LogOffset != 4 {
		t.Fatalf("after the refused chunk: log %q, offset %d", got, tk.LogOffset)
	}
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 4, Data: []byte("two\nthree\n"), MaxBytes: 100})
	if got := logText(x, 1, "aaa"); got != "one\ntwo\nthree\n" {
		t.Fatalf("log %q", got)
	}
}

func TestLogsExpireStopsAtUnfinishedRuns(t *testing.T) {
	x := newRunFixture(t)
	for i := 0; i < 3; i++ {
		x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
	}
	x.finishRun(1)
	x.finishRun(3) // run 2 is still pending
	if n := x.ok(CmdLogsExpire, LogsExpire{NamespaceID: "default", PipelineID: "dag", Through: 3}); n != 1 {
		t.Fatalf("expired %v runs, want 1 (run 2 blocks the rest)", n)
	}
	if logText(x, 1, "aaa") != "" || logText(x, 3, "aaa") != "out" || !x.task(1, "bbb").LogsExpired {
		t.Fatal("expiry removed the wrong logs")
	}
}

// RunChanges wakes the executor for progress, not for stored output.
func TestRunChangesIgnoreLogOutput(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
	x.ok(CmdRunStart, RunStart{RunRef: ref(1, "").RunRef})
	a := ref(1, "aaa")
	woken := func(typ CommandType, body any) bool {
		ch := x.f.RunChanges().Changed()
		x.ok(typ, body)
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	if !woken(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c"}) {
		t.Fatal("TaskSchedule did not wake RunChanges")
	}
	if woken(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Data: []byte("out"), MaxBytes: 100}) {
		t.Fatal("LogAppend woke RunChanges")
	}
	if !woken(CmdTaskRunning, TaskRunning{TaskRef: a, Attempt: 1}) {
		t.Fatal("TaskRunning did not wake RunChanges")
	}
	desc := "edited"
	if woken(CmdNamespaceUpdate, NamespaceUpdate{ID: "default", Description: &desc}) {
		t.Fatal("NamespaceUpdate woke RunChanges")
	}
}
