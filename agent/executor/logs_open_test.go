package executor

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store/model"
)

// A container whose output is still being replicated when the drain wait
// runs out is finished with its log open (a follow stream of it does not
// end); the output that comes later is stored, and the log is closed once
// the output has ended, by a LogAppend that says it is the last. The
// container stays until then (removing it would end its log stream before
// Docker delivered the rest), and the sweep leaves it alone.
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
	e := New(cfg, h.deps(), sched)
	go func() { defer close(done); e.Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(time.Minute)
	waitFor(t, deadline, "the task to finish", func() bool { return h.task("t").Terminal() })
	tk := h.task("t")
	if !tk.LogsOpen || tk.Status != model.TaskStatusSuccessful || h.log("t") != "early\n" {
		t.Fatalf("finished while its output was still being read: %s, open %t, log %q; want successful with its log open", tk.Status, tk.LogsOpen, h.log("t"))
	}
	if n := h.count(fsm.CmdLogAppend); n == 0 {
		t.Fatal("no output was replicated")
	}
	if st, err := realDocker.Inspect(ctx, tk.Container); err != nil || st.State == scheduler.StateNotFound {
		t.Fatalf("the container was removed while its log was open: %+v %v", st, err)
	}
	if n := e.Sweep(ctx); n != 0 {
		t.Fatalf("the sweep removed %d containers while a log was being drained", n)
	}

	// The output goes on after the finish, then ends.
	if _, err := pw.Write([]byte("late\n")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	waitFor(t, deadline, "the log to close", func() bool { return !h.task("t").LogsOpen })
	if got := h.log("t"); got != "early\nlate\n" {
		t.Fatalf("log %q, want the late output too", got)
	}
	waitFor(t, deadline, "the container's removal after the close", func() bool {
		st, err := realDocker.Inspect(ctx, tk.Container)
		return err == nil && st.State == scheduler.StateNotFound
	})
}

// A collector that does not end within the close wait is stopped before
// the log is closed: it reads no more of the container's output (its
// stream is closed) and nothing lands in the log after the close.
func TestGivingUpOnTheCollectorStopsIt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline("hung-logs", shTask("t", "true")), nil)
	cfg := h.config()
	cfg.LogDrainWait = 200 * time.Millisecond
	cfg.LogCloseWait = 500 * time.Millisecond
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("early\n"))
	sched := &scriptedLogs{Scheduler: realDocker, readers: []io.ReadCloser{pr}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); New(cfg, h.deps(), sched).Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(time.Minute)
	waitFor(t, deadline, "the task to finish with its log open", func() bool { tk := h.task("t"); return tk.Terminal() && tk.LogsOpen })
	waitFor(t, deadline, "the log to close", func() bool { return !h.task("t").LogsOpen })
	wrote := make(chan error, 1)
	go func() { _, err := pw.Write([]byte("after the close\n")); wrote <- err }()
	select {
	case err := <-wrote:
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("writing to the stream after the close: %v; want it closed by the stopped collector", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the collector still reads the stream after the log was closed")
	}
	if got := h.log("t"); got != "early\n" {
		t.Fatalf("log %q after the close, want only the output before it", got)
	}
}

// A cancellation that lands after the executor decided the failed attempt
// would be retried, and before its finish is applied, completes the task
// (the applier does not retry a cancelled task). Its log must then stay
// open for the output still being collected, and be closed afterwards:
// whether the log is open is decided by the applied task, not the
// executor's guess.
func TestCancelBetweenRetryDecisionAndFinishKeepsTheLogOpen(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pipeline("cancel-race", shTask("t", "exit 3").Retries(2, time.Second)), nil)
	cfg := h.config()
	cfg.LogDrainWait = 300 * time.Millisecond
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("early\n"))
	h.mu.Lock()
	h.fail = func(typ fsm.CommandType, body any) error {
		if f, ok := body.(fsm.TaskFinish); ok && f.RetryAt > 0 {
			h.must(fsm.CmdTaskCancel, fsm.TaskCancel{TaskRef: f.TaskRef, Cancel: model.Cancellation{Reason: model.ReasonUserCancelled, By: "racer"}})
		}
		return nil
	}
	h.mu.Unlock()
	sched := &scriptedLogs{Scheduler: realDocker, readers: []io.ReadCloser{pr}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); New(cfg, h.deps(), sched).Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(time.Minute)
	waitFor(t, deadline, "the task to complete", func() bool { return h.task("t").Terminal() })
	if tk := h.task("t"); tk.Status != model.TaskStatusFailed || tk.Attempt != 1 || !tk.LogsOpen {
		t.Fatalf("task %s after attempt %d, log open %t; want it complete after one attempt with its log open", tk.Status, tk.Attempt, tk.LogsOpen)
	}
	if _, err := pw.Write([]byte("late\n")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	waitFor(t, deadline, "the log to close", func() bool { return !h.task("t").LogsOpen })
	if got := h.log("t"); got != "early\nlate\n" {
		t.Fatalf("log %q, want the late output too", got)
	}
}

// waitFor polls cond until it holds, failing the test at deadline.
func waitFor(t *testing.T, deadline time.Time, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
