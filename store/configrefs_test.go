package store

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// A slim record is told from a fat one by its last bytes, for every form
// a fat record can take — including a variable named like the key.
func TestSlimRecordVersion(t *testing.T) {
	slim, err := encodeTask(&model.TaskExecution{NamespaceID: "ns", PipelineID: "p", RunID: 1, TaskID: "t", ConfigVersion: 42,
		Attempt: 1, Variables: map[string]string{"pipeline_config_version": "7"}, LogsOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := slimRecordVersion(slim); !ok || v != 42 {
		t.Fatalf("slim record %s read as version %d, %v", slim, v, ok)
	}
	for _, fat := range []*model.TaskExecution{
		{TaskID: "t", Task: &sdk.TaskConfig{ID: "t", Variables: map[string]string{"pipeline_config_version": "7"}}, Variables: map[string]string{"pipeline_config_version": "7"}},
		{TaskID: "t", Task: &sdk.TaskConfig{ID: "t", Command: []string{`"pipeline_config_version":3}`}}, LogsOpen: true},
	} {
		raw, err := json.Marshal(fat)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := slimRecordVersion(raw); ok {
			t.Errorf("fat record %s read as slim (version %d)", raw, v)
		}
	}
	for _, raw := range []string{"", "}", `{"pipeline_config_version":}`, `{"x":1,"pipeline_config_version":0}`, `{"x":1,"pipeline_config_version":99999999999999999999}`} {
		if v, ok := slimRecordVersion([]byte(raw)); ok {
			t.Errorf("%q read as slim (version %d)", raw, v)
		}
	}
}

// FatTasks never decodes a slim record: a record that ends as a slim one
// does is skipped even if the rest of it would not decode (a decode per
// record per look was the slimmer's whole cost on a migrated state).
func TestFatTasksSkipsSlimRecordsUndecoded(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTasks).Put(taskKey("ns", "p", 1, "t"), []byte(`{not json,"pipeline_config_version":3}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		refs, next, err := FatTasks(tx, nil, 10, 10)
		if err != nil || len(refs) != 0 || next != nil {
			t.Fatalf("FatTasks: %v, %v, %v; want a quiet skip", refs, next, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A run's slim records count for their version until DeleteRun removes
// them; the last one takes the version's retained copy with it, while a
// run of fat records changes no count.
func TestDeleteRunReleasesItsConfigVersion(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := &model.PipelineConfig{NamespaceID: "ns", PipelineID: "p", Version: 1, Tasks: []*sdk.TaskConfig{{ID: "a"}, {ID: "b"}}}
	runs := []*model.Run{{NamespaceID: "ns", PipelineID: "p", RunID: 1, Seq: 1}, {NamespaceID: "ns", PipelineID: "p", RunID: 2, Seq: 2},
		{NamespaceID: "ns", PipelineID: "p", RunID: 3, Seq: 3}}
	update := func(fn func(tx *bbolt.Tx) error) {
		t.Helper()
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	state := func() (refs uint64, retained bool) {
		_ = db.View(func(tx *bbolt.Tx) error {
			refs = ConfigRefs(tx, "ns", "p", 1)
			retained = tx.Bucket(bucketRetainedConfigs).Get(configKey("ns", "p", 1)) != nil
			return nil
		})
		return
	}
	update(func(tx *bbolt.Tx) error {
		if err := PutConfig(tx, cfg); err != nil {
			return err
		}
		for _, r := range runs {
			if err := PutRun(tx, r); err != nil {
				return err
			}
			for _, task := range cfg.Tasks {
				te := &model.TaskExecution{NamespaceID: "ns", PipelineID: "p", RunID: r.RunID, TaskID: task.ID, Task: task}
				if r.RunID != 3 { // run 3 is fat
					te.ConfigVersion = 1
				}
				if err := PutTask(tx, te); err != nil {
					return err
				}
			}
			if r.RunID != 3 {
				if err := ReferConfig(tx, "ns", "p", 1, uint64(len(cfg.Tasks))); err != nil {
					return err
				}
			}
		}
		return DeleteConfig(tx, "ns", "p", 1)
	})
	if refs, retained := state(); refs != 4 || !retained {
		t.Fatalf("after the delete: %d refs, retained %v; want 4 and retained", refs, retained)
	}
	for i, want := range []struct {
		refs     uint64
		retained bool
	}{{4, true}, {2, true}, {0, false}} {
		// Run 3 (fat) first: nothing changes; then runs 1 and 2.
		r := runs[(i+2)%3]
		update(func(tx *bbolt.Tx) error { return DeleteRun(tx, r) })
		if refs, retained := state(); refs != want.refs || retained != want.retained {
			t.Fatalf("after deleting run %d: %d refs, retained %v; want %d, %v", r.RunID, refs, retained, want.refs, want.retained)
		}
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		if k, _ := tx.Bucket(bucketConfigRefs).Cursor().First(); k != nil {
			t.Errorf("config_refs still holds %q", k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// CheckFile knows config_refs values: an 8-byte count above 0.
func TestCheckConfigRefCount(t *testing.T) {
	if err := checkConfigRefCount(u64(3)); err != nil {
		t.Errorf("a count of 3: %v", err)
	}
	for _, bad := range [][]byte{{}, u64(0), {1, 2}} {
		if err := checkConfigRefCount(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}
