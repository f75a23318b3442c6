package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/canary"
	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/fsm/fsmtest"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// TestCanaryWatcherOverTheFSM runs the watcher over the real state
// machine: a failed canary run rolls the canary back (version 1 stays
// live), recorded once; deciding again through the State is
// canary.ErrAlreadyDecided, which the watcher takes as done.
func TestCanaryWatcherOverTheFSM(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(time.UnixMilli(1_700_000_000_000))
	f := fsmtest.New(t)
	direct := &fsm.Direct{FSM: f, Actor: "test", Now: c.Now}
	must := func(ct fsm.CommandType, body any) any {
		t.Helper()
		res, err := direct.Apply(ctx, ct, body)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			t.Fatalf("command %s: %v", ct, err)
		}
		return res.Value
	}
	must(fsm.CmdClusterInit, fsm.ClusterInit{ClusterID: "c1", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: "default"}})
	for _, script := range []string{"true", "false"} {
		must(fsm.CmdConfigRegister, fsm.ConfigRegister{NamespaceID: "default", Config: &sdk.PipelineConfig{ID: "cw", Name: script,
			Tasks: []*sdk.TaskConfig{{ID: "t", Image: "busybox", Command: []string{script}}}}})
	}
	must(fsm.CmdConfigDeploy, fsm.ConfigDeploy{NamespaceID: "default", PipelineID: "cw", Version: 1})
	must(fsm.CmdConfigDeploy, fsm.ConfigDeploy{NamespaceID: "default", PipelineID: "cw", Version: 2, Strategy: "canary",
		Canary: &model.CanaryPolicy{Percent: 50, Runs: 2, Duration: "1h", MaxFailureIncrease: 10}})

	svc := newCanaryService(leadership.Deps{State: f, Apply: direct, Clock: c, Logger: hclog.NewNullLogger()})
	state := canaryState{svc}
	w := canary.NewWatcher(state, c, nil)
	f.Flush() // the watcher looks for canaries in the committed state file first
	next, err := w.Tick(ctx)
	if err != nil || !next.Equal(c.Now().Add(time.Hour)) {
		t.Fatalf("tick with no evidence: next %v, %v; want a wake at the duration's end", next, err)
	}
	// Runs until one lands in the canary; it fails.
	for {
		r := must(fsm.CmdRunCreate, fsm.RunCreate{NamespaceID: "default", PipelineID: "cw"}).(*fsm.RunCreated).Run
		ref := fsm.RunRef{NamespaceID: "default", PipelineID: "cw", RunID: r.RunID}
		task := fsm.TaskRef{RunRef: ref, TaskID: "t"}
		status, taskStatus := model.RunStatusSuccessful, model.TaskStatusSuccessful
		if r.Canary {
			status, taskStatus = model.RunStatusFailed, model.TaskStatusFailed
		}
		must(fsm.CmdRunStart, fsm.RunStart{RunRef: ref})
		must(fsm.CmdTaskSchedule, fsm.TaskSchedule{TaskRef: task, Attempt: 1, Container: "c"})
		must(fsm.CmdTaskFinish, fsm.TaskFinish{TaskRef: task, Attempt: 1, Status: taskStatus})
		must(fsm.CmdRunFinish, fsm.RunFinish{RunRef: ref, Status: status})
		if r.Canary {
			break
		}
	}
	f.Flush()
	if _, err := w.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := state.ActiveCanaries(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("active canaries after the decision: %v %v", list, err)
	}
	var d *model.Deployment
	if d, err = fetchDeployment(f, 2); err != nil || d.Canary.Decision == nil || d.Canary.Decision.Outcome != model.CanaryRollback ||
		d.Canary.Decision.Actor != canaryWatchActor {
		t.Fatalf("deployment after the tick: %+v %v", d, err)
	}
	err = state.Decide(ctx, canary.Canary{Namespace: "default", Pipeline: "cw", DeploymentID: 2}, canary.Decision{Outcome: canary.Promote, At: c.Now()})
	if !errors.Is(err, canary.ErrAlreadyDecided) {
		t.Fatalf("second decision: %v, want canary.ErrAlreadyDecided", err)
	}
}

func fetchDeployment(f *fsm.FSM, id int64) (d *model.Deployment, err error) {
	err = f.View(func(tx *bbolt.Tx) error {
		d, err = store.GetDeployment(tx, "default", "cw", id)
		return err
	})
	return d, err
}

// One canary with a stored policy the watcher cannot use (standing in for
// one a later, stricter Validate refuses) is skipped: the other
// pipelines' canaries are still listed, without an error.
func TestCanaryWatcherSkipsUndecidablePolicy(t *testing.T) {
	ctx := context.Background()
	c := clock.NewFake(time.UnixMilli(1_700_000_000_000))
	f := fsmtest.New(t)
	direct := &fsm.Direct{FSM: f, Actor: "test", Now: c.Now}
	must := func(ct fsm.CommandType, body any) {
		t.Helper()
		res, err := direct.Apply(ctx, ct, body)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			t.Fatalf("command %s: %v", ct, err)
		}
	}
	must(fsm.CmdClusterInit, fsm.ClusterInit{ClusterID: "c1", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: "default"}})
	for _, pipeline := range []string{"bad", "good"} {
		for range 2 {
			must(fsm.CmdConfigRegister, fsm.ConfigRegister{NamespaceID: "default", Config: &sdk.PipelineConfig{ID: pipeline, Name: pipeline,
				Tasks: []*sdk.TaskConfig{{ID: "t", Image: "busybox"}}}})
		}
		must(fsm.CmdConfigDeploy, fsm.ConfigDeploy{NamespaceID: "default", PipelineID: pipeline, Version: 1})
		must(fsm.CmdConfigDeploy, fsm.ConfigDeploy{NamespaceID: "default", PipelineID: pipeline, Version: 2, Strategy: "canary",
			Canary: &model.CanaryPolicy{Percent: 50, Runs: 2, Duration: "1h", MaxFailureIncrease: 10}})
	}
	f.Flush()
	if err := f.DB().Update(func(tx *bbolt.Tx) error {
		d, err := store.GetDeployment(tx, "default", "bad", 2)
		if err != nil {
			return err
		}
		d.Canary.Policy.Duration = "forever"
		return store.PutDeployment(tx, d)
	}); err != nil {
		t.Fatal(err)
	}
	svc := newCanaryService(leadership.Deps{State: f, Apply: direct, Clock: c, Logger: hclog.NewNullLogger()})
	list, err := canaryState{svc}.ActiveCanaries(ctx)
	if err != nil || len(list) != 1 || list[0].Pipeline != "good" {
		t.Fatalf("active canaries: %v, %v; want only pipeline good's, no error", list, err)
	}
}
