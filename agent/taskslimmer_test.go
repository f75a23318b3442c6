package agent

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/storetest"
)

// On a state file written before slim task executions (fsm/testdata), the
// task slimmer rewrites in TasksSlim batches every record that can be
// slim, then, with nothing left, stops looking (until a snapshot restore,
// TestTaskSlimmerLooksAgainAfterARestore).
func TestTaskSlimmerMigratesAnOldState(t *testing.T) {
	path := storetest.StateFile(t, filepath.Join("..", "fsm", "testdata", "fat-v4.state.json"))
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsm.New(db, store.Options{NoSync: true}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { f.Flush(); db.Close() }()

	var applied []fsm.CommandType
	index := uint64(1000) // after the file's applied index
	apply := leadership.ApplyFunc(func(_ context.Context, ct fsm.CommandType, body any) (*fsm.Result, error) {
		data, err := fsm.Encode(ct, fsm.Meta{Actor: "system", Timestamp: 2000}, body)
		if err != nil {
			return nil, err
		}
		index++
		applied = append(applied, ct)
		return f.Apply(&raft.Log{Index: index, Term: 2, Type: raft.LogCommand, Data: data}).(*fsm.Result), nil
	})
	state := &countingState{FSM: f}
	s := newTaskSlimmer(leadership.Deps{State: state, Apply: apply, Clock: clock.NewFake(clock.Real{}.Now()), Logger: hclog.NewNullLogger()})
	var waits []string
	for range 4 {
		res, err := s.pass(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Wake.IsZero() {
			waits = append(waits, "change")
		} else {
			waits = append(waits, res.Wake.Sub(s.clock.Now()).String())
		}
	}
	// A pass with a batch is followed a second later by a pass that
	// checks; that one finds nothing, and from then on a wake reads
	// nothing: the slimmer waits for a change, and a change that is not a
	// restore does not make it look again.
	if got := strings.Join(waits, " "); got != "1s change change change" {
		t.Errorf("waits %s", got)
	}
	if state.views != 2 {
		t.Errorf("%d looks at the state, want 2 (none after the empty pass)", state.views)
	}
	if len(applied) != 1 || applied[0] != fsm.CmdTasksSlim {
		t.Fatalf("applied %v, want one tasks_slim", applied)
	}
	slim, fat := 0, 0
	if err := f.View(func(tx *bbolt.Tx) error {
		for _, run := range []int64{1, 2, 3} {
			if err := store.ForEachTaskRaw(tx, "default", "build", run, func(_, v []byte) error {
				if strings.Contains(string(v), `"pipeline_config_version":`) {
					slim++
				} else {
					fat++
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Run 1's version was pruned before anything referred to it: its two
	// records keep their task.
	if slim != 4 || fat != 2 {
		t.Fatalf("%d slim and %d fat records, want 4 and 2", slim, fat)
	}
}

// countingState counts the slimmer's looks at the state.
type countingState struct {
	*fsm.FSM
	views    int
	restores uint64
}

func (c *countingState) View(fn func(tx *bbolt.Tx) error) error {
	c.views++
	return c.FSM.View(fn)
}

func (c *countingState) Restores() uint64 { return c.restores }

// Once done, the slimmer looks again (from the first record) after the
// state was replaced by a snapshot restore, and only then.
func TestTaskSlimmerLooksAgainAfterARestore(t *testing.T) {
	f := testStateFSM(t)
	apply := leadership.ApplyFunc(func(context.Context, fsm.CommandType, any) (*fsm.Result, error) {
		t.Fatal("nothing to slim in an empty state")
		return nil, nil
	})
	state := &countingState{FSM: f}
	s := newTaskSlimmer(leadership.Deps{State: state, Apply: apply, Clock: clock.NewFake(clock.Real{}.Now()), Logger: hclog.NewNullLogger()})
	for range 3 {
		if _, err := s.pass(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if state.views != 1 {
		t.Fatalf("%d looks before a restore, want 1", state.views)
	}
	state.restores++
	for range 3 {
		if _, err := s.pass(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if state.views != 2 {
		t.Fatalf("%d looks after a restore, want 2 (one more pass)", state.views)
	}
}

func testStateFSM(t *testing.T) *fsm.FSM {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsm.New(db, store.Options{NoSync: true}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Flush(); db.Close() })
	return f
}
