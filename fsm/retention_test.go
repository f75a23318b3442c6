package fsm

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

func (x *runFixture) run(id int64) *model.Run {
	x.t.Helper()
	var r *model.Run
	x.f.View(func(tx *bbolt.Tx) (err error) { r, err = store.GetRun(tx, "default", "dag", id); return err })
	return r
}

func (x *runFixture) runsDelete(cmd RunsDelete) *RunsDeleted {
	x.t.Helper()
	cmd.NamespaceID, cmd.PipelineID = "default", "dag"
	return x.ok(CmdRunsDelete, cmd).(*RunsDeleted)
}

// finishedRuns creates and finishes n runs of the dag pipeline.
func (x *runFixture) finishedRuns(n int) {
	x.t.Helper()
	for i := 0; i < n; i++ {
		r := x.newRun()
		x.finishRun(r.RunID)
	}
}

// The applier deletes a run with everything under it — task records,
// logs, run objects — but keeps the idempotency key that started it (a
// retry must not start the run again), keeps the newer runs whole, never hands the id out again, and records the batch
// in one event.
func TestRunsDeleteRemovesRunsWithTheirTasksLogsAndObjects(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", IdempotencyKey: "first"})
	x.finishRun(1)
	x.finishedRuns(4)
	for _, run := range []int64{1, 4} {
		x.ok(CmdObjectPut, ObjectPut{ObjectRef: ObjectRef{NamespaceID: "default", PipelineID: "dag", RunID: run, Key: "report"}, Data: []byte("r")})
	}

	res := x.runsDelete(RunsDelete{RunIDs: []int64{1, 2, 3}, Keep: 2})
	if res.Deleted != 3 || res.Skipped != 0 {
		t.Fatalf("result %+v, want 3 deleted", res)
	}
	x.f.View(func(tx *bbolt.Tx) error {
		for run := int64(1); run <= 5; run++ {
			r, _ := store.GetRun(tx, "default", "dag", run)
			tasks, _ := store.ListTasks(tx, "default", "dag", run)
			objs, _ := store.ListObjects(tx, "default", "dag", run, store.Page{Limit: 10})
			chunks, _ := store.LogChunks(tx, "default", "dag", run, "aaa", 0, 10)
			gone := run <= 3
			if (r == nil) != gone || (len(tasks) == 0) != gone || (len(chunks) == 0) != gone {
				t.Errorf("run %d: run %v, %d tasks, %d log chunks; want deleted=%v", run, r != nil, len(tasks), len(chunks), gone)
			}
			if run == 1 && len(objs) != 0 || run == 4 && len(objs) != 1 {
				t.Errorf("run %d has %d objects", run, len(objs))
			}
		}
		if id, _ := store.GetRunIDByKey(tx, "default", "dag", "first"); id != 1 {
			t.Errorf("the idempotency key of deleted run 1 names run %d, want 1 (kept)", id)
		}
		return nil
	})
	if p := x.pipeline(); p.LastRunID != 5 {
		t.Fatalf("LastRunID %d after deleting old runs, want 5", p.LastRunID)
	}
	if r := x.newRun(); r.RunID != 6 {
		t.Fatalf("next run got id %d, want 6 (ids are never reused)", r.RunID)
	}
	evs := x.events(model.EventDeletedRuns)
	if len(evs) != 1 {
		t.Fatalf("%d deleted_runs events, want 1", len(evs))
	}
	if got := detailsJSON(t, evs[0]); got != `{"from_run":1,"namespace_id":"default","pipeline_id":"dag","runs":3,"through_run":3}` ||
		evs[0].PipelineID != "dag" || evs[0].NamespaceID != "default" {
		t.Fatalf("event %+v details %s", evs[0], got)
	}
	// Events about the deleted runs stay.
	if len(x.events(model.EventCompletedRun)) != 5 {
		t.Fatalf("completed_run events: %d, want 5 (history stays)", len(x.events(model.EventCompletedRun)))
	}
}

// The applier re-checks every named run: unfinished runs, the newest run,
// runs within the limits the command carries and runs already gone are
// skipped, and nothing is emitted when nothing was deleted.
func TestRunsDeleteSkipsRunsRetentionMustKeep(t *testing.T) {
	x := newRunFixture(t)
	x.finishedRuns(1)
	x.newRun() // run 2 stays pending
	x.finishedRuns(2)

	res := x.runsDelete(RunsDelete{RunIDs: []int64{1, 2, 3, 4, 9}, Keep: 1})
	if res.Deleted != 2 || res.Skipped != 3 {
		t.Fatalf("result %+v, want runs 1 and 3 deleted, 2 (pending), 4 (newest) and 9 (none) skipped", res)
	}
	if x.run(1) != nil || x.run(3) != nil || x.run(2) == nil || x.run(4) == nil {
		t.Fatal("deleted the wrong runs")
	}
	if got := detailsJSON(t, x.events(model.EventDeletedRuns)[0]); got != `{"from_run":1,"namespace_id":"default","pipeline_id":"dag","runs":2,"through_run":3}` {
		t.Fatalf("event details %s", got)
	}

	y := newRunFixture(t)
	y.finishedRuns(4)
	// Within a count limit of 4, and ended after the age cut-off.
	if res := y.runsDelete(RunsDelete{RunIDs: []int64{1, 2}, Keep: 4, EndedBefore: y.run(1).Ended}); res.Deleted != 0 || res.Skipped != 2 {
		t.Fatalf("result %+v, want both runs kept", res)
	}
	if len(y.events(model.EventDeletedRuns)) != 0 {
		t.Fatal("a batch that deleted nothing emitted an event")
	}
	// The age cut-off alone: only run 1 ended before it.
	if res := y.runsDelete(RunsDelete{RunIDs: []int64{1, 2}, EndedBefore: y.run(1).Ended + 1}); res.Deleted != 1 || y.run(1) != nil || y.run(2) == nil {
		t.Fatalf("result %+v, want run 1 deleted by age", res)
	}
}

// A run whose task log is still open (output not all collected) is kept
// until the log closes.
func TestRunsDeleteKeepsRunsWithOpenLogs(t *testing.T) {
	x := newRunFixture(t)
	r := x.newRun()
	x.ok(CmdRunStart, RunStart{RunRef: ref(r.RunID, "").RunRef})
	for _, task := range []string{"aaa", "bbb"} {
		x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: ref(r.RunID, task), Attempt: 1, Container: "c"})
		x.ok(CmdTaskFinish, TaskFinish{TaskRef: ref(r.RunID, task), Attempt: 1, Status: model.TaskStatusSuccessful, LogsOpen: task == "bbb"})
	}
	x.ok(CmdRunFinish, RunFinish{RunRef: ref(r.RunID, "").RunRef, Status: model.RunStatusSuccessful})
	x.finishedRuns(1)
	if res := x.runsDelete(RunsDelete{RunIDs: []int64{1}, Keep: 1}); res.Deleted != 0 {
		t.Fatalf("result %+v: deleted a run whose log is open", res)
	}
	x.ok(CmdLogAppend, LogAppend{TaskRef: ref(1, "bbb"), Attempt: 1, Last: true, MaxBytes: 100})
	if res := x.runsDelete(RunsDelete{RunIDs: []int64{1}, Keep: 1}); res.Deleted != 1 {
		t.Fatalf("result %+v: the closed run was not deleted", res)
	}
	if len(x.openLogs(1<<62)) != 0 {
		t.Fatal("open-log index entries outlived their run")
	}
}

// Runs an undecided canary deployment counts, on either arm, are the
// evidence of a decision still to be made: kept until it is decided.
func TestRunsDeleteKeepsRunsOfAnUndecidedCanary(t *testing.T) {
	x := newCanaryFixture(t)
	arms := map[bool]bool{}
	for i := 0; i < 6; i++ {
		r := x.newRun()
		arms[r.Canary] = true
		x.endRun(r, model.RunStatusSuccessful)
	}
	if !arms[true] || !arms[false] {
		t.Fatalf("runs went to one arm only: %v", arms)
	}
	all := []int64{1, 2, 3, 4, 5}
	if res := x.runsDelete(RunsDelete{RunIDs: all, Keep: 1}); res.Deleted != 0 || res.Skipped != 5 {
		t.Fatalf("result %+v: deleted runs of an undecided canary", res)
	}
	x.ok(CmdDeploymentDecide, DeploymentDecide{NamespaceID: "default", PipelineID: "dag", DeploymentID: 2,
		Outcome: model.CanaryRollback, Reason: "test", At: 1})
	if res := x.runsDelete(RunsDelete{RunIDs: all, Keep: 1}); res.Deleted != 5 {
		t.Fatalf("result %+v: runs of a decided canary were kept", res)
	}
	if d := x.deployment(2); d.Canary.Canary.Completed+d.Canary.Stable.Completed != 6 {
		t.Fatalf("the deployment's evidence changed: %+v", d.Canary)
	}
}

// A command naming too many runs, or negative limits, is refused and
// changes nothing.
func TestRunsDeleteRefusesBadCommands(t *testing.T) {
	x := newRunFixture(t)
	x.finishedRuns(3)
	ids := make([]int64, MaxRunsDeleted+1)
	for i := range ids {
		ids[i] = 1
	}
	before := dump(t, x.f)
	x.refused(CmdRunsDelete, RunsDelete{NamespaceID: "default", PipelineID: "dag", RunIDs: ids, Keep: 1}, ErrInvalid)
	x.refused(CmdRunsDelete, RunsDelete{NamespaceID: "default", PipelineID: "dag", RunIDs: []int64{1}, Keep: -1}, ErrInvalid)
	x.refused(CmdRunsDelete, RunsDelete{NamespaceID: "default", PipelineID: "nope", RunIDs: []int64{1}, Keep: 1}, ErrNotFound)
	// Only the applied index may differ.
	strip := regexp.MustCompile(`(?m)^meta 6170706c6965645f(696e646578|7465726d) .*\n`)
	if strip.ReplaceAllString(dump(t, x.f), "") != strip.ReplaceAllString(before, "") {
		t.Fatal("a refused RunsDelete changed the state")
	}
}

// Two replicas applying the same log end byte-identical.
func TestRunsDeleteIsDeterministic(t *testing.T) {
	build := func() *runFixture {
		x := newRunFixture(t)
		x.finishedRuns(2)
		x.newRun()
		x.finishedRuns(3)
		x.runsDelete(RunsDelete{RunIDs: []int64{1, 2, 3, 4}, Keep: 2, EndedBefore: 1})
		return x
	}
	a, b := build(), build()
	if dump(t, a.f) != dump(t, b.f) {
		t.Fatal("replicas diverged after RunsDelete")
	}
}

// A start retried with the idempotency key of a run retention deleted is
// refused with a conflict naming the run, and starts nothing: before run
// retention a run key answered with its run for good, so it must never
// start a second one.
func TestRunCreateWithTheKeyOfADeletedRunIsRefused(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", IdempotencyKey: "first", RequestHash: "h"})
	x.finishRun(1)
	x.finishedRuns(2)
	if res := x.runsDelete(RunsDelete{RunIDs: []int64{1}, Keep: 1}); res.Deleted != 1 {
		t.Fatalf("result %+v, want run 1 deleted", res)
	}
	before := dump(t, x.f)
	res := x.apply(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", IdempotencyKey: "first", RequestHash: "h"})
	if !errors.Is(res.Err, ErrConflict) || !strings.Contains(res.Err.Error(), "run 1 started with this idempotency key was deleted by run retention") {
		t.Fatalf("retried start: value %v, error %v; want a conflict naming run 1", res.Value, res.Err)
	}
	strip := regexp.MustCompile(`(?m)^meta 6170706c6965645f(696e646578|7465726d) .*\n`)
	if strip.ReplaceAllString(dump(t, x.f), "") != strip.ReplaceAllString(before, "") {
		t.Fatal("a refused retried start changed the state")
	}
	if p := x.pipeline(); p.LastRunID != 3 {
		t.Fatalf("LastRunID %d, want 3 (no run started)", p.LastRunID)
	}
}

// The count limit's walk (keep keys from the newest) is skipped when one
// seek shows the pipeline cannot have more than keep runs — on the leader
// (RunsPastRetention) and in the apply alike — and the runs past the
// count are the ones the walk finds, with or without gaps in the ids.
func TestRetentionSkipsTheCountWalkWhenNoRunCanBePastIt(t *testing.T) {
	x := newRunFixture(t)
	x.finishedRuns(6)
	walks := 0
	nthNewestRunID = func(tx *bbolt.Tx, ns, pipeline string, n int64) int64 {
		walks++
		return store.NthNewestRunID(tx, ns, pipeline, n)
	}
	t.Cleanup(func() { nthNewestRunID = store.NthNewestRunID })
	pastByCount := func(keep int64) (ids []int64) {
		p := x.pipeline()
		x.f.View(func(tx *bbolt.Tx) error {
			rt, err := newRetention(tx, p, keep, 0)
			if err != nil {
				t.Fatal(err)
			}
			walked := store.NthNewestRunID(tx, "default", "dag", keep)
			return store.ForEachRun(tx, "default", "dag", func(r *model.Run) bool {
				if rt.past(r) != (walked != 0 && r.RunID < walked) {
					t.Errorf("keep %d: run %d past=%v, the walk says otherwise", keep, r.RunID, rt.past(r))
				}
				if rt.past(r) {
					ids = append(ids, r.RunID)
				}
				return true
			})
		})
		return ids
	}

	// Six runs, ids 1-6: keep 6 or more needs no walk.
	for _, keep := range []int64{6, 7, 1000} {
		walks = 0
		if got := pastByCount(keep); len(got) != 0 || walks != 0 {
			t.Fatalf("keep %d: past %v after %d walks; want none and no walk", keep, got, walks)
		}
		p := x.pipeline()
		x.f.View(func(tx *bbolt.Tx) error {
			if ids, _ := RunsPastRetention(tx, p, keep, 0, 50, 5000); len(ids) != 0 {
				t.Fatalf("keep %d: the leader chose %v", keep, ids)
			}
			return nil
		})
		if res := x.runsDelete(RunsDelete{RunIDs: []int64{1}, Keep: keep}); res.Deleted != 0 || walks != 0 {
			t.Fatalf("keep %d: apply %+v after %d walks; want nothing deleted and no walk", keep, res, walks)
		}
	}
	walks = 0
	if got := pastByCount(5); fmt.Sprint(got) != "[1]" || walks != 1 {
		t.Fatalf("keep 5: past %v after %d walks; want [1] after one walk", got, walks)
	}
	// A gap (runs 2 and 3 deleted): ids 1-6 span 6 but four runs remain;
	// the walk still answers, and answers the same.
	x.runsDelete(RunsDelete{RunIDs: []int64{2, 3}, Keep: 4})
	for keep := int64(1); keep <= 7; keep++ {
		pastByCount(keep)
	}
}

// The leader's batch is bounded by task executions as well as runs (the
// dag pipeline's runs have two tasks each), but a single run always fits.
func TestRunsPastRetentionCapsTheBatchByTasks(t *testing.T) {
	x := newRunFixture(t)
	x.finishedRuns(6)
	p := x.pipeline()
	for _, tc := range []struct {
		maxTasks int
		want     string
	}{{1000, "[1 2 3 4 5]"}, {5, "[1 2]"}, {4, "[1 2]"}, {3, "[1]"}, {1, "[1]"}} {
		x.f.View(func(tx *bbolt.Tx) error {
			ids, err := RunsPastRetention(tx, p, 1, 0, 50, tc.maxTasks)
			if err != nil || fmt.Sprint(ids) != tc.want {
				t.Errorf("at most %d tasks: %v, %v; want %s", tc.maxTasks, ids, err, tc.want)
			}
			return nil
		})
	}
}
