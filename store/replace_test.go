package store

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestReplaceDoesNotWaitForASnapshotTransaction: raft takes a snapshot's
// read transaction on the FSM goroutine, then waits for its main
// goroutine; a restore the main goroutine runs meanwhile waits for
// Replace. Replace closing the old handle waited for that transaction and
// the node deadlocked. Now Replace swaps at once, and the transaction
// still reads the state it began on.
func TestReplaceDoesNotWaitForASnapshotTransaction(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "state.db")
	d, err := Open(live, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// Not deferred: after a hang, Close would hang too (Replace holds the
	// handle lock).
	mark := func(db *DB, v string) {
		if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte("test-mark"), []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	mark(d, "old")
	next := filepath.Join(dir, "state.db.restore")
	n, err := Open(next, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mark(n, "new")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	snap, err := d.BeginRead()
	if err != nil {
		t.Fatal(err)
	}
	replaced := make(chan error, 1)
	go func() { replaced <- d.Replace(next, Options{NoSync: true}) }()
	select {
	case err := <-replaced:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a hang detector, not a speed bound
		t.Fatal("Replace waited for an open snapshot transaction (the restore/snapshot deadlock)")
	}
	if got := string(snap.Bucket(bucketMeta).Get([]byte("test-mark"))); got != "old" {
		t.Errorf("the snapshot transaction reads %q after Replace, want the state it began on (old)", got)
	}
	if err := snap.Rollback(); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := d.View(func(tx *bbolt.Tx) error { got = string(tx.Bucket(bucketMeta).Get([]byte("test-mark"))); return nil }); err != nil {
		t.Fatal(err)
	}
	if got != "new" {
		t.Errorf("after Replace the handle reads %q, want new", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
