package agent

import (
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

// The pruner passes at once and then every interval on its clock, writes
// nothing while nothing has expired, and prunes events once they are
// older than the retention — all on a fake clock, without sleeping.
func TestPrunerPrunesEveryIntervalOnItsClock(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	c := clock.NewFake(t0)
	f := fsmtest.New(t)
	direct := &fsm.Direct{FSM: f, Actor: "test", Now: c.Now}
	if _, err := direct.Apply(context.Background(), fsm.CmdClusterInit, fsm.ClusterInit{ClusterID: "c1", Roles: model.BuiltinRoles(1),
		Namespace: model.Namespace{ID: model.DefaultNamespace, Name: "Default"}}); err != nil {
		t.Fatal(err)
	}
	pruned := make(chan struct{}, 10)
	apply := leadership.ApplyFunc(func(ctx context.Context, ct fsm.CommandType, body any) (*fsm.Result, error) {
		res, err := direct.Apply(ctx, ct, body)
		if ct == fsm.CmdPrune {
			pruned <- struct{}{}
		}
		return res, err
	})
	p := newPruner(pruneConfig{Interval: time.Minute, EventRetention: time.Hour},
		leadership.Deps{State: f, Apply: apply, Clock: c, Logger: hclog.NewNullLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	oldestEvent := func() (at int64) {
		_ = f.View(func(tx *bbolt.Tx) error { at = store.OldestEventTime(tx); return nil })
		return at
	}
	if oldestEvent() == 0 {
		t.Fatal("cluster init recorded no event")
	}
	// First pass at t0, then one a minute: nothing is old enough yet.
	for i := 1; i <= 3; i++ {
		if !c.WaitTimerAt(t0.Add(time.Duration(i)*time.Minute), 10*time.Second) {
			t.Fatalf("pass %d armed no timer for the next interval", i)
		}
		select {
		case <-pruned:
			t.Fatal("a prune command was written with nothing expired")
		default:
		}
		c.Advance(time.Minute)
	}
	// An hour later the event has expired: the next pass prunes it.
	c.Set(t0.Add(time.Hour + 4*time.Minute))
	select {
	case <-pruned:
	case <-time.After(10 * time.Second):
		t.Fatal("the expired event was not pruned")
	}
	if !c.WaitTimerAt(t0.Add(time.Hour+5*time.Minute), 10*time.Second) {
		t.Fatal("no next pass armed after pruning")
	}
	if at := oldestEvent(); at != 0 {
		t.Fatalf("an event from %d is still stored", at)
	}
}

// The pruner deletes trigger keys past their retention (named in bounded
// Prune commands) and keeps the recent ones; with nothing expired it
// writes nothing.
func TestPrunerDeletesExpiredTriggerKeys(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	c := clock.NewFake(t0)
	f := fsmtest.New(t)
	direct := &fsm.Direct{FSM: f, Actor: "test", Now: c.Now}
	ctx := context.Background()
	must := func(ct fsm.CommandType, body any) {
		t.Helper()
		res, err := direct.Apply(ctx, ct, body)
		if err == nil && res.Err != nil {
			err = res.Err
		}
		if err != nil {
			t.Fatalf("apply %s: %v", ct, err)
		}
	}
	must(fsm.CmdClusterInit, fsm.ClusterInit{ClusterID: "c1", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: model.DefaultNamespace, Name: "Default"}})
	must(fsm.CmdConfigRegister, fsm.ConfigRegister{NamespaceID: "default", Config: &sdk.PipelineConfig{ID: "p", Name: "p", Tasks: []*sdk.TaskConfig{{ID: "t", Image: "busybox"}}}})
	must(fsm.CmdConfigDeploy, fsm.ConfigDeploy{NamespaceID: "default", PipelineID: "p", Version: 1})
	must(fsm.CmdExtensionInstall, fsm.ExtensionInstall{Extension: model.Extension{ID: "github", Image: "img"}, Token: model.StoredToken{Token: model.Token{ID: "tok"}, Hash: "h"}})
	must(fsm.CmdSubscriptionCreate, fsm.SubscriptionCreate{SubscriptionRef: fsm.SubscriptionRef{NamespaceID: "default", PipelineID: "p", ExtensionID: "github", SubscriptionID: "s"}})
	start := func(delivery string) {
		must(fsm.CmdRunCreate, fsm.RunCreate{NamespaceID: "default", PipelineID: "p", Extension: "github", TriggerKey: "github:" + delivery})
	}
	start("old-1")
	start("old-2")
	c.Set(t0.Add(2 * time.Hour))
	start("recent")

	prunes := 0
	apply := leadership.ApplyFunc(func(ctx context.Context, ct fsm.CommandType, body any) (*fsm.Result, error) {
		if ct == fsm.CmdPrune {
			prunes++
		}
		return direct.Apply(ctx, ct, body)
	})
	p := newPruner(pruneConfig{Interval: time.Minute, EventRetention: 1000 * time.Hour, TriggerKeyRetention: time.Hour},
		leadership.Deps{State: f, Apply: apply, Clock: c, Logger: hclog.NewNullLogger()})
	f.Flush() // the pruner reads the committed state
	p.pruneTriggerKeys(ctx)
	stored := func(delivery string) bool {
		var id int64
		_ = f.View(func(tx *bbolt.Tx) error {
			id = store.GetTriggerKey(tx, "default", "p", "github", "github:"+delivery)
			return nil
		})
		return id != 0
	}
	if stored("old-1") || stored("old-2") || !stored("recent") {
		t.Fatalf("after pruning: old-1 %v, old-2 %v, recent %v; want only recent kept", stored("old-1"), stored("old-2"), stored("recent"))
	}
	if prunes != 1 {
		t.Fatalf("%d prune commands, want 1", prunes)
	}
	f.Flush()
	p.pruneTriggerKeys(ctx) // nothing expired now: no command
	if prunes != 1 {
		t.Fatalf("a prune command was written with nothing expired (%d)", prunes)
	}
}
