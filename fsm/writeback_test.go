package fsm

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// Persist into raft's FileSnapshotStore writes the snapshot file back to
// disk region by region as it goes (so the final fsync has little left to
// flush), and the file holds exactly the bytes of a plain snapshot. It also
// pins the store's file layout that openSinkFile relies on.
func TestPersistWritesBackEarly(t *testing.T) {
	f := testFSM(t, t.TempDir())
	f.ApplyBatch(scenario(t))
	f.Flush() // commit the FSM's pending write transaction
	// 24 MiB of filler: three writeback regions.
	filler := bytes.Repeat([]byte{'f'}, 1<<20)
	if err := f.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("writeback-test"))
		if err != nil {
			return err
		}
		for i := 0; i < 24; i++ {
			if err := b.Put([]byte(fmt.Sprintf("k%02d", i)), filler); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	plainSnap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var plain memSink
	if err := plainSnap.Persist(&plain); err != nil {
		t.Fatal(err)
	}
	plainSnap.Release()

	dir := t.TempDir()
	store, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	f.SetSnapshotDir(dir)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink, err := store.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if got := snap.(*snapshot).writtenBack; got < 8<<20 {
		t.Fatalf("written back early: %d bytes of %d; want at least one 8 MiB region (raft's snapshot file not found?)", got, plain.Len())
	}
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain.Bytes()) {
		t.Fatalf("snapshot file differs from a plain snapshot (%d bytes, plain %d)", len(got), plain.Len())
	}
}
