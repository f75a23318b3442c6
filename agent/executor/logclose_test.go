package executor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store/model"
)

// The leader closes logs nobody else will (the worker that finished the
// task is gone): once the task ended more than the close wait ago, and
// again with backoff while the close cannot be replicated.
func TestLeaderClosesLogsLeftOpen(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("orphan-log", shTask("t", "true")), nil)
	fake := clock.NewFake(time.Now())
	h.direct.Now = fake.Now
	h.must(fsm.CmdRunStart, fsm.RunStart{RunRef: h.ref})
	ref := h.taskRef("t")
	h.must(fsm.CmdTaskSchedule, fsm.TaskSchedule{TaskRef: ref, Attempt: 1, Container: "gone"})
	h.must(fsm.CmdTaskFinish, fsm.TaskFinish{TaskRef: ref, Attempt: 1, Status: model.TaskStatusSuccessful, LogsOpen: true})
	ended := time.UnixMilli(h.task("t").Ended)

	failures := 2
	h.mu.Lock()
	h.fail = func(typ fsm.CommandType, _ any) error {
		if typ == fsm.CmdLogAppend && failures > 0 {
			failures--
			return errors.New("no quorum")
		}
		return nil
	}
	h.mu.Unlock()
	deps := h.deps()
	deps.Clock = fake
	e := New(h.config(), deps, sched)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	armed := fake.Armed()
	go func() { defer close(done); e.closeLogsLoop(ctx) }()
	defer func() { cancel(); <-done }()

	<-armed // the first pass is done and sleeps
	due := ended.Add(time.Minute)
	for i := 0; h.task("t").LogsOpen; i++ {
		if i > 20 {
			t.Fatalf("the log is still open after %d passes (%d closes tried)", i, h.count(fsm.CmdLogAppend))
		}
		if at := fake.NextDeadline(); at.After(due) && fake.Now().Before(due) {
			t.Fatalf("the closer sleeps until %v, past the log's due time %v", at, due)
		}
		armed = fake.Armed()
		fake.Set(fake.NextDeadline())
		<-armed
		if h.count(fsm.CmdLogAppend) > 0 && fake.Now().Before(due) {
			t.Fatalf("a log was closed at %v, before its close wait ran out at %v", fake.Now(), due)
		}
	}
	if n := h.count(fsm.CmdLogAppend); n != 3 {
		t.Fatalf("%d closes tried, want 2 failed and 1 that went through", n)
	}
}
