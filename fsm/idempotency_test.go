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
		// Every new entry is written at the current version, hash or not
		// (its appliers store typed details, fsm/DESIGN.md).
		if want := byte(envelopeVersionLogs); data[1] != want {
			t.Errorf("envelope version %d, want %d", data[1], want)
		}
		typ, env, err := decode(data)
		if err != nil || typ != CmdNamespaceCreate || env.Meta != meta {
			t.Fatalf("decode = %v %+v %v, want %+v", typ, env, err, meta)
		}
		if body := decodeBody[NamespaceCreate](env.Body); body.Namespace.ID != "abc" {
			t.Fatalf("body %+v", body)
		}
		// What older binaries wrote still decodes: version 1 without a
		// hash, version 2 with one.
		old := byte(envelopeVersion)
		if meta.RequestHash != "" {
			old = envelopeVersionHash
		}
		data, err = encodeAt(old, CmdNamespaceCreate, meta, NamespaceCreate{Namespace: model.Namespace{ID: "abc"}})
		if err != nil {
			t.Fatal(err)
		}
		if typ, env, err := decode(data); err != nil || typ != CmdNamespaceCreate || env.Meta != meta || !env.legacyFormat() {
			t.Fatalf("version %d: decode = %v %+v %v, want %+v", old, typ, env, err, meta)
		}
	}
}

// TestRunKeyBoundToRequest: a run start's key is kept per pipeline, for
// every caller; another caller's start with the key and the same request
// hash gets the existing run, with another hash it is refused and no run
// is made.
func TestRunKeyBoundToRequest(t *testing.T) {
	f := testFSM(t, t.TempDir())
	f.ApplyBatch(scenario(t))
	idx := uint64(100)
	apply := func(actor string, typ CommandType, body any) *Result {
		t.Helper()
		idx++
		data, err := Encode(typ, Meta{ActorID: actor, Timestamp: 5000}, body)
		if err != nil {
			t.Fatal(err)
		}
		return resultOf(t, f.Apply(&raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}))
	}
	if r := apply("a", CmdPipelineSetState, PipelineSetState{NamespaceID: "team-a", PipelineID: "simple", State: model.PipelineStateActive}); r.Err != nil {
		t.Fatal(r.Err)
	}
	start := func(actor, hash string) *Result {
		return apply(actor, CmdRunCreate, RunCreate{NamespaceID: "team-a", PipelineID: "simple", IdempotencyKey: "rk", RequestHash: hash})
	}
	first := start("a", "h1")
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	same := start("b", "h1")
	if created, err := ResultAs[RunCreated](same); err != nil || !created.Existing || created.Run.RunID != 1 {
		t.Fatalf("another caller, same request: %+v %v; want the existing run 1", same, err)
	}
	if other := start("b", "h2"); !errors.Is(other.Err, ErrIdempotencyMismatch) {
		t.Fatalf("another caller, another request: %+v; want ErrIdempotencyMismatch", other)
	}
	if old := start("c", ""); old.Err != nil {
		t.Fatalf("a start without a hash (older leader): %v; want the existing run", old.Err)
	}
	err := f.View(func(tx *bbolt.Tx) error {
		runs, err := store.ListRuns(tx, "team-a", "simple", store.Page{})
		if err == nil && len(runs) != 1 {
			t.Errorf("%d runs, want 1", len(runs))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
