package store

import (
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

func TestRecordTypesCoverAllBuckets(t *testing.T) {
	for _, b := range allBuckets {
		if _, ok := recordTypes[string(b)]; !ok {
			t.Errorf("bucket %q has no entry in recordTypes", b)
		}
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	db, err := Open(good, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		return PutNamespace(tx, &model.Namespace{ID: "default"})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := CheckFile(good); err != nil {
		t.Fatalf("a good file was refused: %v", err)
	}

	badJSON := filepath.Join(dir, "badjson.db")
	copyFile(t, good, badJSON)
	db, _ = Open(badJSON, Options{})
	db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketNamespaces).Put([]byte("x"), []byte("{not json")) })
	db.Close()
	if err := CheckFile(badJSON); err == nil {
		t.Fatal("a record that is not JSON was accepted")
	}

	extra := filepath.Join(dir, "extra.db")
	copyFile(t, good, extra)
	db, _ = Open(extra, Options{})
	db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("mystery")); return err })
	db.Close()
	if err := CheckFile(extra); err == nil {
		t.Fatal("an unknown bucket was accepted")
	}

	// The open-log index holds 8-byte end times; a file with one is good,
	// one with another value is not.
	openLogs := filepath.Join(dir, "openlogs.db")
	copyFile(t, good, openLogs)
	db, _ = Open(openLogs, Options{})
	db.Update(func(tx *bbolt.Tx) error {
		return PutOpenLog(tx, &model.TaskExecution{NamespaceID: "default", PipelineID: "p", RunID: 1, TaskID: "t", Ended: 1000})
	})
	db.Close()
	if err := CheckFile(openLogs); err != nil {
		t.Fatalf("a file with an open-log entry was refused: %v", err)
	}
	db, _ = Open(openLogs, Options{})
	db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketOpenLogs).Put([]byte("x"), []byte("soon")) })
	db.Close()
	if err := CheckFile(openLogs); err == nil {
		t.Fatal("an open-log entry that is not an 8-byte time was accepted")
	}

	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, []byte("definitely not bbolt"), 0o600)
	if err := CheckFile(garbage); err == nil {
		t.Fatal("garbage was accepted")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
