package agent

import (
	"errors"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
)

// recordingDeletes records the DeleteRange calls that reach the store.
type recordingDeletes struct {
	logStore
	calls [][2]uint64
}

func (r *recordingDeletes) DeleteRange(min, max uint64) error {
	r.calls = append(r.calls, [2]uint64{min, max})
	return r.logStore.DeleteRange(min, max)
}

// Compaction (a prefix) is deleted oldest first in chunks, and leaves the
// same log a single delete would; a conflicting suffix is one delete.
func TestCompactionDeletesInChunks(t *testing.T) {
	bolt, err := openLogStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	var batch []*raft.Log
	for i := uint64(1); i <= 10000; i++ {
		batch = append(batch, &raft.Log{Index: i, Term: 1, Data: []byte("entry")})
	}
	if err := bolt.StoreLogs(batch); err != nil {
		t.Fatal(err)
	}
	rec := &recordingDeletes{logStore: bolt}
	s := chunkedCompaction{logStore: rec, chunk: 4096}

	if err := s.DeleteRange(1, 9000); err != nil {
		t.Fatal(err)
	}
	want := [][2]uint64{{1, 4096}, {4097, 8192}, {8193, 9000}}
	if !reflect.DeepEqual(rec.calls, want) {
		t.Fatalf("compaction deleted %v, want %v", rec.calls, want)
	}
	if first, _ := s.FirstIndex(); first != 9001 {
		t.Fatalf("first index after compaction = %d, want 9001", first)
	}
	var l raft.Log
	if err := s.GetLog(9000, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("entry 9000 after compaction: %v, want ErrLogNotFound", err)
	}

	rec.calls = nil
	if err := s.DeleteRange(9500, 10000); err != nil {
		t.Fatal(err)
	}
	if want := [][2]uint64{{9500, 10000}}; !reflect.DeepEqual(rec.calls, want) {
		t.Fatalf("suffix delete went %v, want one call %v", rec.calls, want)
	}
	if last, _ := s.LastIndex(); last != 9499 {
		t.Fatalf("last index after the suffix delete = %d, want 9499", last)
	}
	if err := s.GetLog(9001, &l); err != nil || l.Index != 9001 {
		t.Fatalf("entry 9001: %v (index %d)", err, l.Index)
	}
}
