package store

import (
	"encoding/json"
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
	before, lookedUp := configTasks.decodes.Load(), configTasks.lookups.Load()
	got := list()
	if n := configTasks.decodes.Load() - before; n != 1 {
		t.Fatalf("listing %d tasks decoded the config %d times, want 1", len(got), n)
	}
	// And looked its version up (and compared its bytes) once, not once
	// per record.
	if n := configTasks.lookups.Load() - lookedUp; n != 1 {
		t.Fatalf("listing %d tasks looked the config up %d times, want 1", len(got), n)
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

// The cache keeps what was used last within its byte budget: with room
// for two configs, reading A, B, A, C drops B (least recently used), not
// A (first in).
func TestConfigCacheDropsTheLeastRecentlyUsed(t *testing.T) {
	raw := func(image string) []byte {
		b, err := json.Marshal(&model.PipelineConfig{Tasks: []*sdk.TaskConfig{{ID: "t", Image: image}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := raw("aaaa"), raw("bbbb"), raw("cccc")
	cache := newConfigCache(entryCost(a) * 2)
	key := func(v int64) configCacheKey { return configCacheKey{"ns", "p", v} }
	get := func(v int64, r []byte) {
		t.Helper()
		if _, err := cache.get(key(v), r); err != nil {
			t.Fatal(err)
		}
	}
	get(1, a)
	get(2, b)
	get(1, a)
	get(3, c)
	if n := cache.decodes.Load(); n != 3 {
		t.Fatalf("%d decodes, want 3", n)
	}
	get(1, a)
	if n := cache.decodes.Load(); n != 3 {
		t.Errorf("the most recently used config was dropped (%d decodes)", n)
	}
	get(2, b)
	if n := cache.decodes.Load(); n != 4 {
		t.Errorf("the least recently used config was kept (%d decodes)", n)
	}
	if cache.used > cache.budget {
		t.Errorf("%d bytes used of a budget of %d", cache.used, cache.budget)
	}
}

// The FSM's copy of a task config is its own: changing it changes
// nothing a reader gets from the cache.
func TestOwnConfigTaskIsNotTheCachedOne(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := &model.PipelineConfig{NamespaceID: "ns", PipelineID: "own", Version: 1, Tasks: []*sdk.TaskConfig{{ID: "t", Image: "busybox", Retries: 2}}}
	if err := db.Update(func(tx *bbolt.Tx) error { return PutConfig(tx, cfg) }); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		shared, err := ConfigTask(tx, "ns", "own", 1, "t")
		if err != nil {
			return err
		}
		own, err := OwnConfigTask(tx, "ns", "own", 1, "t")
		if err != nil {
			return err
		}
		if own == nil || own == shared || own.Retries != 2 {
			t.Fatalf("own %p %+v, shared %p", own, own, shared)
		}
		own.Retries = 9
		again, err := ConfigTask(tx, "ns", "own", 1, "t")
		if err != nil {
			return err
		}
		if again.Retries != 2 {
			t.Fatalf("the cached config changed to %d retries", again.Retries)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
