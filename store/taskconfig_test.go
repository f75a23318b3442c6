package store

import (
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// Listing a run of sdk.MaxTasks slim task executions decodes its config
// version once, and a second list none; the cache answers only while the
// stored bytes are the ones it decoded, so a version registered again
// under the same number (a pipeline deleted and recreated) is read anew.
func TestSlimTasksResolveThroughTheCache(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := &model.PipelineConfig{NamespaceID: "ns", PipelineID: "p", Version: 1}
	for i := range sdk.MaxTasks {
		cfg.Tasks = append(cfg.Tasks, &sdk.TaskConfig{ID: fmt.Sprintf("t%04d", i), Image: "busybox", Variables: map[string]string{"I": fmt.Sprint(i)}})
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		if err := PutConfig(tx, cfg); err != nil {
			return err
		}
		for _, task := range cfg.Tasks {
			if err := PutTask(tx, &model.TaskExecution{NamespaceID: "ns", PipelineID: "p", RunID: 1, TaskID: task.ID, ConfigVersion: 1,
				Task: task, Variables: task.Variables}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	list := func() []*model.TaskExecution {
		var out []*model.TaskExecution
		if err := db.View(func(tx *bbolt.Tx) (err error) {
			out, err = ListTasks(tx, "ns", "p", 1)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := configTasks.decodes.Load()
	got := list()
	if n := configTasks.decodes.Load() - before; n != 1 {
		t.Fatalf("listing %d tasks decoded the config %d times, want 1", len(got), n)
	}
	if len(got) != sdk.MaxTasks || got[7].Task == nil || got[7].Task.ID != "t0007" || got[7].Variables["I"] != "7" {
		t.Fatalf("resolved %d tasks, the 8th %+v", len(got), got[7])
	}
	list()
	if n := configTasks.decodes.Load() - before; n != 1 {
		t.Fatalf("a second list decoded the config again (%d decodes)", n)
	}

	cfg.Tasks[7].Image = "alpine"
	if err := db.Update(func(tx *bbolt.Tx) error { return PutConfig(tx, cfg) }); err != nil {
		t.Fatal(err)
	}
	if got := list(); got[7].Task.Image != "alpine" {
		t.Fatalf("read %q from the cache after the stored config changed", got[7].Task.Image)
	}
}
