package fsm

import (
	"testing"

	"github.com/goferhq/gofer/store/model"
)

// A task finished while its output was still being collected keeps its
// log open: late output is stored, and only the collector's last append
// closes it. A finish without the flag (every entry written before it
// existed) closes the log with the task, as before; a retry never leaves
// a log open.
func TestTaskFinishedWithItsLogOpenClosesOnTheLastAppend(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
	x.ok(CmdRunStart, RunStart{RunRef: ref(1, "").RunRef})
	a := ref(1, "aaa")
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c"})
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
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
	x.ok(CmdRunStart, RunStart{RunRef: ref(1, "").RunRef})
	a := ref(1, "aaa")
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c"})
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 1, Offset: 0, Data: []byte("first try\n"), MaxBytes: 30})
	x.ok(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 1, Status: model.TaskStatusFailed, RetryAt: 1})
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 2, Container: "c2"})
	x.ok(CmdLogAppend, LogAppend{TaskRef: a, Attempt: 2, Offset: 0, Data: []byte("second try, and far more than the cap\n"), MaxBytes: 30})
	log := logText(x, 1, "aaa")
	if tk := x.task(1, "aaa"); tk.LogBytes != int64(len(log)) || !tk.LogsTruncated {
		t.Fatalf("LogBytes %d, stored log %d bytes (%q)", tk.LogBytes, len(log), log)
	}
}
