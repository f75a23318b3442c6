package store

import (
	"path/filepath"
	"testing"
	"time"

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

// TestOldShapeCanaryRecordKeepsItsDurations: a canary deployment record
// written before durations moved to per-run keys holds them inside the
// record. Read back, it keeps them, and durations counted later under
// per-run keys follow them, in run order; deleting the pipeline removes
// the keys with the record.
func TestOldShapeCanaryRecordKeepsItsDurations(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	old := `{"namespace_id":"default","pipeline_id":"dag","deployment_id":2,"start_version":1,"end_version":2,"started":5,` +
		`"ended":0,"state":"running","status":"unknown","actor":"alice","strategy":"canary","canary":{"policy":{"canary_percent":50,` +
		`"canary_runs":10,"canary_duration":"10m","max_failure_increase":5},"stable_version":1,"canary_version":2,"started":5,` +
		`"stable":{"completed":1,"failed":0},"canary":{"completed":2,"failed":1,"durations_ms":[300,100]}}}`
	if err := db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketDeployments).Put(deploymentKey("default", "dag", 2), []byte(old)); err != nil {
			return err
		}
		for _, r := range []struct{ run, ms int64 }{{9, 50}, {7, 200}} {
			if err := PutCanaryDuration(tx, "default", "dag", 2, r.run, r.ms); err != nil {
				return err
			}
		}
		// Another deployment's and another pipeline's keys are not its.
		if err := PutCanaryDuration(tx, "default", "dag", 3, 1, 1); err != nil {
			return err
		}
		return PutCanaryDuration(tx, "default", "dagger", 2, 1, 1)
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		d, err := GetDeployment(tx, "default", "dag", 2)
		if err != nil {
			return err
		}
		if c := d.Canary; c == nil || c.Canary.Completed != 2 || c.Canary.Failed != 1 || len(c.Canary.DurationsMillis) != 2 || c.Stable.Completed != 1 {
			t.Fatalf("old record read as %+v", d.Canary)
		}
		WithCanaryDurations(tx, d)
		if got := d.Canary.Canary.DurationsMillis; len(got) != 4 || got[0] != 300 || got[1] != 100 || got[2] != 200 || got[3] != 50 {
			t.Errorf("durations %v; want the record's [300 100] then the keyed ones by run [200 50]", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return DeletePipeline(tx, "default", "dag") }); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bbolt.Tx) error {
		if n, m := len(CanaryDurations(tx, "default", "dag", 2)), len(CanaryDurations(tx, "default", "dagger", 2)); n != 0 || m != 1 {
			t.Errorf("after deleting the pipeline: %d of its durations left, %d of the other pipeline's (want 0, 1)", n, m)
		}
		return nil
	})
}

// TestOldConfigsHaveNoRunRetention: a config version stored before
// run_retention existed reads with none (the server's retention applies),
// whole or by the pruner's one-field read; a newer one reads its setting.
func TestOldConfigsHaveNoRunRetention(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	old := `{"namespace_id":"default","pipeline_id":"dag","version":1,"name":"DAG","description":"","parallelism":0,` +
		`"tasks":[{"id":"aaa","image":"busybox","depends_on":{},"variables":{},"inject_api_token":false,"always_pull_newest_image":false}],` +
		`"state":"live","registered":1,"deprecated":0,"hash":"h"}`
	newer := `{"namespace_id":"default","pipeline_id":"dag","version":2,"name":"DAG","run_retention":{"count":3,"age":"1h0m0s"},"tasks":[],"state":"unreleased"}`
	if err := db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketConfigs).Put(configKey("default", "dag", 1), []byte(old)); err != nil {
			return err
		}
		return tx.Bucket(bucketConfigs).Put(configKey("default", "dag", 2), []byte(newer))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		c, err := GetConfig(tx, "default", "dag", 1)
		if err != nil || c == nil || c.RunRetention != nil || len(c.Tasks) != 1 {
			t.Errorf("old config read as %+v (%v), want it whole with no run_retention", c, err)
		}
		if rr, err := ConfigRunRetention(tx, "default", "dag", 1); rr != nil || err != nil {
			t.Errorf("old config's run retention %+v (%v), want none", rr, err)
		}
		if rr, err := ConfigRunRetention(tx, "default", "dag", 2); err != nil || rr == nil || rr.Count != 3 || rr.AgeDuration() != time.Hour {
			t.Errorf("newer config's run retention %+v (%v), want count 3, age 1h", rr, err)
		}
		if rr, err := ConfigRunRetention(tx, "default", "dag", 9); rr != nil || err != nil {
			t.Errorf("missing version's run retention %+v (%v), want none", rr, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
