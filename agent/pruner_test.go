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
