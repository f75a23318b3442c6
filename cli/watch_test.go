package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// A watch that first sees a task waiting and next sees it complete still
// prints that it was scheduled and running (from the record's
// timestamps), once each, in time order; a retried attempt shows too.
func TestWatchPrintsStatesBetweenPolls(t *testing.T) {
	base := time.Date(2026, 1, 2, 10, 0, 0, 0, time.Local).UnixMilli()
	run := &model.Run{RunID: 3, State: model.RunStatePending, Created: base}
	waiting := &model.TaskExecution{TaskID: "fast", State: model.TaskStateWaiting, Created: base}
	var b bytes.Buffer
	wt := newWatcher(&b)
	wt.report(run, []*model.TaskExecution{waiting})

	zero, one := 0, 1
	done := *run
	done.State, done.Status, done.Started, done.Ended = model.RunStateComplete, model.RunStatusSuccessful, base+1000, base+9000
	fast := &model.TaskExecution{TaskID: "fast", State: model.TaskStateComplete, Status: model.TaskStatusSuccessful, ExitCode: &zero,
		Created: base, Attempt: 2, Scheduled: base + 5000, Started: base + 6000, Ended: base + 6050,
		Attempts: []model.Attempt{
			{Attempt: 1, Started: base + 2000, Ended: base + 2040, Status: model.TaskStatusFailed, ExitCode: &one},
			{Attempt: 2, Started: base + 6000, Ended: base + 6050, Status: model.TaskStatusSuccessful, ExitCode: &zero},
		}}
	wt.report(&done, []*model.TaskExecution{fast})
	wt.report(&done, []*model.TaskExecution{fast}) // a repeated poll prints nothing

	want := []string{
		"10:00:00  run 3                pending",
		"10:00:00  fast                 waiting",
		"10:00:01  run 3                running",
		"10:00:02  fast                 scheduled",
		"10:00:02  fast                 running",
		"10:00:02  fast                 failed (exit 1); waiting to retry",
		"10:00:05  fast                 scheduled (attempt 2)",
		"10:00:06  fast                 running (attempt 2)",
		"10:00:06  fast                 successful (exit 0)",
		"10:00:09  run 3                successful",
	}
	got := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("watch printed\n%s\nwant\n%s", b.String(), strings.Join(want, "\n"))
	}
}
