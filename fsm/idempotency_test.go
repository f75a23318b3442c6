package fsm

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// TestIdempotencyKeyBoundToRequest: a key reused with a different request
// hash is refused with ErrIdempotencyMismatch and changes nothing; the same
// key and hash replays the first outcome; a record or command without a
// hash (older nodes) falls back to replaying.
func TestIdempotencyKeyBoundToRequest(t *testing.T) {
	f := testFSM(t, t.TempDir())
	f.ApplyBatch(scenario(t))
	idx := uint64(100)
	apply := func(key, hash string, ns string) *Result {
		t.Helper()
		idx++
		data, err := Encode(CmdNamespaceCreate, Meta{ActorID: "tok", Timestamp: 5000, IdempotencyKey: key, RequestHash: hash},
			NamespaceCreate{Namespace: model.Namespace{ID: ns}})
		if err != nil {
			t.Fatal(err)
		}
		return resultOf(t, f.Apply(&raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}))
	}
	if r := apply("k1", "hash-a", "first"); r.Err != nil || r.Replayed {
		t.Fatalf("first request: %+v", r)
	}
	r := apply("k1", "hash-b", "second")
	if !errors.Is(r.Err, ErrIdempotencyMismatch) || r.Replayed {
		t.Fatalf("same key, other request: %+v, want ErrIdempotencyMismatch", r)
	}
	if r := apply("k1", "hash-a", "first"); r.Err != nil || !r.Replayed {
		t.Fatalf("same key, same request: %+v, want the first outcome replayed", r)
	}
	if r := apply("k1", "", "other"); r.Err != nil || !r.Replayed {
		t.Fatalf("a command without a hash: %+v, want a replay (as before hashing)", r)
	}
	err := f.View(func(tx *bbolt.Tx) error {
		if ns, err := store.GetNamespace(tx, "second"); err != nil || ns != nil {
			t.Errorf("the refused request created namespace %+v (%v)", ns, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEnvelopeRoundTripWithRequestHash(t *testing.T) {
	for _, meta := range []Meta{
		{RequestID: "r1", Actor: "alice", ActorID: "tok", Timestamp: 7, IdempotencyKey: "k", RequestHash: "abc123"},
		{RequestID: "r1", Actor: "alice", Timestamp: 7, IdempotencyKey: "k"},
	} {
		data, err := Encode(CmdNamespaceCreate, meta, NamespaceCreate{Namespace: model.Namespace{ID: "abc"}})
		if err != nil {
			t.Fatal(err)
		}
		// Without a hash the envelope stays version 1, which every node reads.
		if want := byte(1); meta.RequestHash == "" && data[1] != want {
			t.Errorf("envelope version %d without a hash, want %d", data[1], want)
		}
		typ, env, err := decode(data)
		if err != nil || typ != CmdNamespaceCreate || env.Meta != meta {
			t.Fatalf("decode = %v %+v %v, want %+v", typ, env, err, meta)
		}
		if body := decodeBody[NamespaceCreate](env.Body); body.Namespace.ID != "abc" {
			t.Fatalf("body %+v", body)
		}
	}
}
