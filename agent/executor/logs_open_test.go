package executor

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store/model"
)

// A container whose output is still being replicated when the drain wait
// runs out is finished with its log open (a follow stream of it does not
// end); the output that comes later is stored, and the log is closed once
// the output has ended, by a LogAppend that says it is the last.
func TestTaskFinishedBeforeItsOutputLeavesTheLogOpenUntilItEnds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline("late-logs", shTask("t", "true")), nil)
	cfg := h.config()
	cfg.LogDrainWait = 300 * time.Millisecond
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("early\n"))
	sched := &scriptedLogs{Scheduler: realDocker, readers: []io.ReadCloser{pr}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); New(cfg, h.deps(), sched).Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(time.Minute)
	for tk := h.task("t"); !tk.Terminal(); tk = h.task("t") {
		if time.Now().After(deadline) {
			t.Fatalf("the task never finished: %+v", tk)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tk := h.task("t"); !tk.LogsOpen || tk.Status != model.TaskStatusSuccessful || h.log("t") != "early\n" {
		t.Fatalf("finished while its output was still being read: %s, open %t, log %q; want successful with its log open", tk.Status, tk.LogsOpen, h.log("t"))
	}
	if n := h.count(fsm.CmdLogAppend); n == 0 {
		t.Fatal("no output was replicated")
	}

	// The output goes on after the finish, then ends.
	if _, err := pw.Write([]byte("late\n")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	for tk := h.task("t"); tk.LogsOpen; tk = h.task("t") {
		if time.Now().After(deadline) {
			t.Fatalf("the log was never closed: %+v, log %q", tk, h.log("t"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := h.log("t"); got != "early\nlate\n" {
		t.Fatalf("log %q, want the late output too", got)
	}
}
