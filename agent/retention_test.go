package agent

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/fsm/fsmtest"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// retentionFixture is an FSM on a fake clock with pipelines "counted"
// (run_retention count 2 in its config) and "aged" (no setting: the
// server's), each with one task.
type retentionFixture struct {
	t       *testing.T
	c       *clock.Fake
	f       *fsm.FSM
	direct  *fsm.Direct
	deletes []fsm.RunsDelete
}

func newRetentionFixture(t *testing.T) *retentionFixture {
	x := &retentionFixture{t: t, c: clock.NewFake(time.UnixMilli(1_700_000_000_000)), f: fsmtest.New(t)}
	x.direct = &fsm.Direct{FSM: x.f, Actor: "test", Now: x.c.Now}
	x.must(fsm.CmdClusterInit, fsm.ClusterInit{ClusterID: "c1", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: model.DefaultNamespace, Name: "Default"}})
	for id, rr := range map[string]*sdk.RunRetention{"counted": {Count: 2}, "aged": nil} {
		x.must(fsm.CmdConfigRegister, fsm.ConfigRegister{NamespaceID: "default", Config: &sdk.PipelineConfig{ID: id, Name: id,
			RunRetention: rr, Tasks: []*sdk.TaskConfig{{ID: "t", Image: "busybox"}}}})
		x.must(fsm.CmdConfigDeploy, fsm.ConfigDeploy{NamespaceID: "default", PipelineID: id, Version: 1})
	}
	return x
}

func (x *retentionFixture) must(ct fsm.CommandType, body any) any {
	x.t.Helper()
	res, err := x.direct.Apply(context.Background(), ct, body)
	if err == nil && res.Err != nil {
		err = res.Err
	}
	if err != nil {
		x.t.Fatalf("apply %s: %v", ct, err)
	}
	return res.Value
}

// run starts a run of pipeline and, if finish, takes it to success.
func (x *retentionFixture) run(pipeline string, finish bool) int64 {
	x.t.Helper()
	r := x.must(fsm.CmdRunCreate, fsm.RunCreate{NamespaceID: "default", PipelineID: pipeline}).(*fsm.RunCreated).Run
	if finish {
		ref := fsm.RunRef{NamespaceID: "default", PipelineID: pipeline, RunID: r.RunID}
		task := fsm.TaskRef{RunRef: ref, TaskID: "t"}
		x.must(fsm.CmdRunStart, fsm.RunStart{RunRef: ref})
		x.must(fsm.CmdTaskSchedule, fsm.TaskSchedule{TaskRef: task, Attempt: 1, Container: "c"})
		x.must(fsm.CmdLogAppend, fsm.LogAppend{TaskRef: task, Attempt: 1, Data: []byte("out"), MaxBytes: 100})
		x.must(fsm.CmdTaskFinish, fsm.TaskFinish{TaskRef: task, Attempt: 1, Status: model.TaskStatusSuccessful})
		x.must(fsm.CmdRunFinish, fsm.RunFinish{RunRef: ref, Status: model.RunStatusSuccessful})
	}
	return r.RunID
}

func (x *retentionFixture) pruner(cfg pruneConfig) *pruner {
	cfg.Interval, cfg.EventRetention = time.Minute, 1000*time.Hour
	apply := leadership.ApplyFunc(func(ctx context.Context, ct fsm.CommandType, body any) (*fsm.Result, error) {
		if ct == fsm.CmdRunsDelete {
			x.deletes = append(x.deletes, body.(fsm.RunsDelete))
		}
		return x.direct.Apply(ctx, ct, body)
	})
	return newPruner(cfg, leadership.Deps{State: x.f, Apply: apply, Clock: x.c, Logger: hclog.NewNullLogger()})
}

// runs lists the stored run ids of pipeline and says whether each still
// has its log.
func (x *retentionFixture) runs(pipeline string) (ids []int64) {
	x.t.Helper()
	_ = x.f.View(func(tx *bbolt.Tx) error {
		return store.ForEachRun(tx, "default", pipeline, func(r *model.Run) bool {
			if chunks, _ := store.LogChunks(tx, "default", pipeline, r.RunID, "t", 0, 10); r.State == model.RunStateComplete && len(chunks) == 0 {
				x.t.Errorf("kept run %d of %s lost its log", r.RunID, pipeline)
			}
			ids = append(ids, r.RunID)
			return true
		})
	})
	return ids
}

func same(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A pipeline's run_retention count keeps its newest runs; runs still
// going are kept whatever their age or place; a pass with nothing past
// retention writes nothing.
func TestPrunerDeletesRunsPastAPipelinesRetentionCount(t *testing.T) {
	x := newRetentionFixture(t)
	for i := 1; i <= 5; i++ {
		x.run("counted", i != 2) // run 2 never finishes
	}
	for i := 0; i < 3; i++ {
		x.run("aged", true) // no setting and none on the server: kept
	}
	p := x.pruner(pruneConfig{})
	p.pruneOnce(context.Background())
	if got := x.runs("counted"); !same(got, []int64{2, 4, 5}) {
		t.Fatalf("counted keeps runs %v, want [2 4 5] (the newest 2, and run 2 still going)", got)
	}
	if got := x.runs("aged"); len(got) != 3 {
		t.Fatalf("aged keeps runs %v, want all 3 (retention is off by default)", got)
	}
	if len(x.deletes) != 1 || !same(x.deletes[0].RunIDs, []int64{1, 3}) || x.deletes[0].Keep != 2 || x.deletes[0].EndedBefore != 0 {
		t.Fatalf("commands %+v, want one naming runs 1 and 3 with keep 2", x.deletes)
	}
	p.pruneOnce(context.Background())
	if len(x.deletes) != 1 {
		t.Fatalf("a second pass wrote %d more commands with nothing past retention", len(x.deletes)-1)
	}
	if r := x.run("counted", true); r != 6 {
		t.Fatalf("next run id %d, want 6 (ids are never reused)", r)
	}
}

// The server's run_retention_age applies to pipelines without a setting,
// measured on the leader's clock (the cut-off travels in the command):
// nothing goes before the age has passed; then every run that ended
// before the cut-off goes, but the newest. A pipeline's own setting
// replaces the server's.
func TestPrunerDeletesRunsPastTheServersRetentionAge(t *testing.T) {
	x := newRetentionFixture(t)
	t0 := x.c.Now()
	for i := 0; i < 3; i++ {
		x.run("aged", true)
		x.run("counted", true)
	}
	p := x.pruner(pruneConfig{RunRetentionAge: time.Hour})
	aged := func() (out []fsm.RunsDelete) {
		for _, d := range x.deletes {
			if d.PipelineID == "aged" {
				out = append(out, d)
			}
		}
		return out
	}
	x.c.Set(t0.Add(59 * time.Minute))
	p.pruneOnce(context.Background())
	if len(aged()) != 0 || len(x.runs("aged")) != 3 {
		t.Fatalf("runs deleted before they were an hour old: %+v", aged())
	}
	x.c.Set(t0.Add(61 * time.Minute))
	p.pruneOnce(context.Background())
	if got := x.runs("aged"); !same(got, []int64{3}) {
		t.Fatalf("aged keeps runs %v, want only the newest, 3", got)
	}
	if d := aged(); len(d) != 1 || d[0].EndedBefore != t0.Add(time.Minute).UnixMilli() || d[0].Keep != 0 {
		t.Fatalf("commands %+v: want one, with the cut-off now - 1h", d)
	}
	// "counted" sets its own retention (count 2, no age): the server's age
	// does not apply to it.
	if got := x.runs("counted"); !same(got, []int64{2, 3}) {
		t.Fatalf("counted keeps runs %v, want [2 3] (its own count, not the server's age)", got)
	}
}

// A backlog larger than a batch is deleted in bounded commands within one
// pass.
func TestPrunerDeletesRunsInBoundedBatches(t *testing.T) {
	x := newRetentionFixture(t)
	n := runRetentionBatch*2 + 5
	for i := 0; i < n; i++ {
		x.run("aged", true)
	}
	x.pruner(pruneConfig{RunRetentionCount: 1}).pruneOnce(context.Background())
	if got := x.runs("aged"); !same(got, []int64{int64(n)}) {
		t.Fatalf("aged keeps %d runs, want only the newest", len(got))
	}
	if len(x.deletes) != 3 {
		t.Fatalf("%d commands, want 3", len(x.deletes))
	}
	for _, d := range x.deletes {
		if len(d.RunIDs) > runRetentionBatch {
			t.Fatalf("a command named %d runs, the batch is %d", len(d.RunIDs), runRetentionBatch)
		}
	}
}

// An age longer than the leader's clock is from the epoch (a node that
// skipped config validation) means no age limit: the command carries no
// cut-off the applier would refuse, so the count limit in it still
// applies.
func TestPrunerTreatsACutOffBeforeTheEpochAsNoAgeLimit(t *testing.T) {
	x := newRetentionFixture(t)
	for i := 0; i < 3; i++ {
		x.run("aged", true)
	}
	x.pruner(pruneConfig{RunRetentionCount: 1, RunRetentionAge: 876000 * time.Hour}).pruneOnce(context.Background())
	if got := x.runs("aged"); !same(got, []int64{3}) {
		t.Fatalf("aged keeps runs %v, want only the newest, 3 (the count limit applies)", got)
	}
	for _, d := range x.deletes {
		if d.EndedBefore != 0 {
			t.Fatalf("command %+v carries a cut-off before the epoch; want none", d)
		}
	}
}

// A pipeline whose live config cannot be decoded is skipped, not given
// the server's retention: its own setting, unreadable, may keep more.
func TestPrunerSkipsAPipelineWhoseConfigCannotBeRead(t *testing.T) {
	x := newRetentionFixture(t)
	for i := 0; i < 3; i++ {
		x.run("counted", true)
		x.run("aged", true)
	}
	x.f.Flush()
	err := x.f.DB().Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("configs"))
		var key []byte
		_ = b.ForEach(func(k, _ []byte) error {
			if bytes.Contains(k, []byte("counted")) {
				key = bytes.Clone(k)
			}
			return nil
		})
		if key == nil {
			t.Fatal("no stored config of counted")
		}
		return b.Put(key, []byte(`{"id":"counted","run_retention":"every other"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	x.pruner(pruneConfig{RunRetentionCount: 1}).pruneOnce(context.Background())
	if got := x.runs("counted"); !same(got, []int64{1, 2, 3}) {
		t.Fatalf("counted keeps runs %v, want all three (skipped, not the server's count)", got)
	}
	if got := x.runs("aged"); !same(got, []int64{3}) {
		t.Fatalf("aged keeps runs %v, want [3] (the server's count still applies to the others)", got)
	}
}

// A backlog larger than a pass's share is paced: one pass writes at most
// runRetentionBatchesPerPass entries for a pipeline, the next pass goes
// on with the rest.
func TestPrunerPacesALargeBacklogOverPasses(t *testing.T) {
	x := newRetentionFixture(t)
	n := runRetentionBatch*runRetentionBatchesPerPass + 11
	for i := 0; i < n; i++ {
		x.run("aged", true)
	}
	p := x.pruner(pruneConfig{RunRetentionCount: 1})
	p.pruneOnce(context.Background())
	if len(x.deletes) != runRetentionBatchesPerPass {
		t.Fatalf("first pass wrote %d RunsDelete entries, want %d", len(x.deletes), runRetentionBatchesPerPass)
	}
	if got := x.runs("aged"); len(got) != 11 {
		t.Fatalf("after the first pass aged keeps %d runs, want 11 (the rest waits)", len(got))
	}
	p.pruneOnce(context.Background())
	if got := x.runs("aged"); !same(got, []int64{int64(n)}) {
		t.Fatalf("after the second pass aged keeps %v, want only the newest", got)
	}
}
