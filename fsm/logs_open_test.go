package fsm

import (
	"bytes"
	"io"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// A task finished while its output was still being collected keeps its
// log open: late output is stored, and only the collector's last append
// closes it. A finish without the flag (every entry written before it
// existed) closes the log with the task, as before; a retry never leaves
// a log open.
func TestTaskFinishedWithItsLogOpenClosesOnTheLastAppend(t *testing.T) {
	x := newRunFixture(t)
	a := x.scheduledTask()
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 0, Data: []byte("early\n"), MaxBytes: 100})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 1, Status: model.TaskStatusSuccessful, LogsOpen: true})
	if tk := x.task(1, "aaa"); !tk.Terminal() || !tk.LogsOpen {
		t.Fatalf("finished with its log open: %+v", tk)
	}
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 6, Data: []byte("late\n"), MaxBytes: 100})
	if tk := x.task(1, "aaa"); !tk.LogsOpen || logText(x, 1, "aaa") != "early\nlate\n" {
		t.Fatalf("after late output: open %t, log %q", tk.LogsOpen, logText(x, 1, "aaa"))
	}
	// The close carries no data (the output ended).
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 11, MaxBytes: 100, Last: true})
	if tk := x.task(1, "aaa"); tk.LogsOpen || tk.LogBytes != 11 || logText(x, 1, "aaa") != "early\nlate\n" {
		t.Fatalf("after the last append: %+v, log %q", tk, logText(x, 1, "aaa"))
	}

	b := ref(1, "bbb")
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: b, Attempt: 1, Container: "c"})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: b, Attempt: 1, Status: model.TaskStatusFailed, RetryAt: 1, LogsOpen: true})
	if tk := x.task(1, "bbb"); tk.LogsOpen {
		t.Fatalf("a task waiting for its retry has an open log: %+v", tk)
	}
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: b, Attempt: 2, Container: "c2"})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: b, Attempt: 2, Status: model.TaskStatusSuccessful})
	if tk := x.task(1, "bbb"); !tk.Terminal() || tk.LogsOpen {
		t.Fatalf("finished without the flag: %+v, want its log closed", tk)
	}
}

// A task's LogBytes is the size of its stored log, every chunk counted
// (the truncation marker included, and output of every attempt): the API
// answers "past the end" and the end of a closed log from it.
func TestLogBytesIsTheStoredLogsSize(t *testing.T) {
	x := newRunFixture(t)
	a := x.scheduledTask()
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 0, Data: []byte("first try\n"), MaxBytes: 30})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 1, Status: model.TaskStatusFailed, RetryAt: 1})
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 2, Container: "c2"})
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 2, Offset: 0, Data: []byte("second try, and far more than the cap\n"), MaxBytes: 30})
	log := logText(x, 1, "aaa")
	if tk := x.task(1, "aaa"); tk.LogBytes != int64(len(log)) || !tk.LogsTruncated {
		t.Fatalf("LogBytes %d, stored log %d bytes (%q)", tk.LogBytes, len(log), log)
	}
}

// Once a complete task's log is closed it takes nothing more: output a
// collector appends after the close (one the leader gave up on) is
// dropped, and the answer says Full so the collector stops. Entries of
// envelope versions 1 and 2 keep what older binaries did: they never
// leave a log open, and they store such output.
func TestAppendAfterTheLogClosedStoresNothing(t *testing.T) {
	x := newRunFixture(t)
	a := x.scheduledTask()
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 0, Data: []byte("early\n"), MaxBytes: 100})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 1, Status: model.TaskStatusSuccessful, LogsOpen: true})
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 6, MaxBytes: 100, Last: true})
	res := x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 6, Data: []byte("after the close\n"), MaxBytes: 100}).(*LogAppended)
	if tk := x.task(1, "aaa"); !res.Full || tk.LogOffset != 6 || tk.LogBytes != 6 || logText(x, 1, "aaa") != "early\n" {
		t.Fatalf("append after the close: answer %+v, task offset %d bytes %d, log %q; want nothing stored and Full", res, tk.LogOffset, tk.LogBytes, logText(x, 1, "aaa"))
	}

	// A task finished with its whole log (never open) is closed too.
	b := ref(1, "bbb")
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: b, Attempt: 1, Container: "c"})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: b, Attempt: 1, Status: model.TaskStatusSuccessful})
	if res := x.ok(CmdLogAppend, LogAppend{TaskRef: b, Attempt: 1, Data: []byte("late\n"), MaxBytes: 100}).(*LogAppended); !res.Full || logText(x, 1, "bbb") != "" {
		t.Fatalf("append to a closed log: %+v, log %q", res, logText(x, 1, "bbb"))
	}

	// An older binary's entries: the flag is ignored and late output kept.
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
	x.b.version = envelopeVersionHash
	x.ok(CmdRunStart, RunStart{RunRef: ref(2, "").RunRef})
	old := ref(2, "aaa")
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: old, Attempt: 1, Container: "c"})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: old, Attempt: 1, Status: model.TaskStatusSuccessful, LogsOpen: true})
	x.ok(CmdLogAppend, LogAppend{TaskRef: old, Attempt: 1, Data: []byte("late\n"), MaxBytes: 100})
	if tk := x.task(2, "aaa"); tk.LogsOpen || logText(x, 2, "aaa") != "late\n" {
		t.Fatalf("version 2 entries: open %t, log %q; want closed at completion and the late output stored", tk.LogsOpen, logText(x, 2, "aaa"))
	}
	if open := x.openLogs(1 << 62); len(open) != 0 {
		t.Fatalf("version 2 entries indexed open logs: %v", open)
	}
}

// The open-log index lists exactly the complete tasks whose log is open,
// with their end time, so the leader can close them: a finish with the
// flag adds the task, the last append removes it, a retry never adds it,
// and deleting the pipeline removes its entries. It survives a snapshot
// and restore (it is part of the state file).
func TestOpenLogIndexFollowsTheFlag(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
	x.ok(CmdRunStart, RunStart{RunRef: ref(1, "").RunRef})
	a, b := ref(1, "aaa"), ref(1, "bbb")
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c"})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 1, Status: model.TaskStatusFailed, RetryAt: 1, LogsOpen: true})
	if open := x.openLogs(1 << 62); len(open) != 0 {
		t.Fatalf("a retry indexed an open log: %v", open)
	}
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 2, Container: "c2"})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 2, Status: model.TaskStatusSuccessful, LogsOpen: true})
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: b, Attempt: 1, Container: "c"})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: b, Attempt: 1, Status: model.TaskStatusSuccessful, LogsOpen: true})
	endA, endB := x.task(1, "aaa").Ended, x.task(1, "bbb").Ended
	if open := x.openLogs(endA); len(open) != 1 || open[0] != "aaa" {
		t.Fatalf("open logs ended by %d: %v, want aaa", endA, open)
	}
	if open := x.openLogs(endB); len(open) != 2 {
		t.Fatalf("open logs ended by %d: %v, want aaa and bbb", endB, open)
	}
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 2, Offset: 0, MaxBytes: 100, Last: true})
	if open := x.openLogs(endB); len(open) != 1 || open[0] != "bbb" {
		t.Fatalf("after aaa's close: %v, want bbb", open)
	}

	restored := testFSM(t, t.TempDir())
	snap, err := x.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if open := (&runFixture{t: t, f: restored}).openLogs(endB); len(open) != 1 || open[0] != "bbb" {
		t.Fatalf("restored index: %v, want bbb", open)
	}

	x.ok(CmdPipelineDelete, PipelineDelete{NamespaceID: "default", PipelineID: "dag"})
	if open := x.openLogs(1 << 62); len(open) != 0 {
		t.Fatalf("the deleted pipeline's entries are left: %v", open)
	}
}

// openLogs lists the ids of the tasks in the open-log index that ended by.
func (x *runFixture) openLogs(by int64) []string {
	x.t.Helper()
	var ids []string
	if err := x.f.View(func(tx *bbolt.Tx) error {
		due, _, err := store.OpenLogsEndedBy(tx, by)
		for _, t := range due {
			ids = append(ids, t.TaskID)
		}
		return err
	}); err != nil {
		x.t.Fatal(err)
	}
	return ids
}
