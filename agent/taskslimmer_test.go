package agent

import (
	"context"
	"os"
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
)

// On a state file written before slim task executions (fsm/testdata), the
// task slimmer rewrites in TasksSlim batches every record that can be
// slim, then, with nothing left, waits an hour before it looks again and
// writes nothing meanwhile.
func TestTaskSlimmerMigratesAnOldState(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "fsm", "testdata", "fat-v4.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
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
	s := newTaskSlimmer(leadership.Deps{State: f, Apply: apply, Clock: clock.NewFake(clock.Real{}.Now()), Logger: hclog.NewNullLogger()})
	var waits []string
	for range 4 {
		wait, err := s.step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, wait.String())
	}
	// A pass with a batch is followed a second later by a pass that
	// checks; that one finds nothing, and so do the hourly ones after it.
	if got := strings.Join(waits, " "); got != "1s 1h0m0s 1h0m0s 1h0m0s" {
		t.Errorf("waits %s", got)
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
