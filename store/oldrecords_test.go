package store

import (
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// TestOldRecordsReadInTodaysShape: a cluster upgraded in place holds
// records written by the older release — a deployment with upstream's
// PascalCase state, an event whose details are all strings. Read from a
// real bbolt file, they come back lower-case and readable as typed values.
func TestOldRecordsReadInTodaysShape(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	oldDeployment := `{"namespace_id":"default","pipeline_id":"dag","deployment_id":1,"start_version":0,"end_version":1,` +
		`"started":1,"ended":1,"state":"Complete","status":"Successful","actor":"admin"}`
	if err := db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketDeployments).Put(deploymentKey("default", "dag", 1), []byte(oldDeployment)); err != nil {
			return err
		}
		return AppendEvent(tx, &model.Event{Kind: model.EventCompletedTask,
			Details: model.EventDetails{"run_id": "12", "exit_code": "0", "task_id": "aaa"}})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		d, err := GetDeployment(tx, "default", "dag", 1)
		if err != nil {
			return err
		}
		if d.State != model.DeploymentStateComplete || d.Status != model.DeploymentStatusSuccess {
			t.Errorf("old deployment read as %q/%q, want %q/%q", d.State, d.Status, model.DeploymentStateComplete, model.DeploymentStatusSuccess)
		}
		evs, err := ListEvents(tx, Page{}, nil)
		if err != nil || len(evs) != 1 {
			t.Fatalf("events %v %v", evs, err)
		}
		if run, ok := evs[0].Details.Int("run_id"); !ok || run != 12 {
			t.Errorf("old event's run_id read as %d (%v)", run, ok)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
