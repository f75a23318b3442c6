package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// testFSM opens a fresh state file in a temp dir.
func testFSM(t testing.TB, dir string) *FSM {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(db, store.Options{NoSync: true}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Flush(); db.Close() })
	return f
}

// logBuilder hands out raft entries with increasing indexes.
type logBuilder struct {
	t     testing.TB
	index uint64
	// clock is added to the entries' timestamps (ms): a test moves the
	// leader's clock forward with it.
	clock int64
	// version, when set, is the envelope version entries are written
	// with (an older binary's entries); zero means Encode's current one.
	version byte
}

func (b *logBuilder) entry(typ CommandType, body any) *raft.Log {
	b.t.Helper()
	b.index++
	meta := Meta{Actor: "test", ActorID: "tok", Timestamp: b.clock + int64(1000+b.index)}
	data, err := Encode(typ, meta, body)
	if b.version != 0 {
		data, err = encodeAt(b.version, typ, meta, body)
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return &raft.Log{Index: b.index, Term: 1, Type: raft.LogCommand, Data: data}
}

func scenario(t *testing.T) []*raft.Log {
	b := &logBuilder{t: t}
	cfg := func(tasks ...string) *sdk.PipelineConfig {
		c := &sdk.PipelineConfig{ID: "simple", Name: "Simple"}
		for _, id := range tasks {
			c.Tasks = append(c.Tasks, &sdk.TaskConfig{ID: id, Image: "busybox"})
		}
		return c
	}
	return []*raft.Log{
		b.entry(CmdClusterInit, ClusterInit{ClusterID: "c1", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: "default", Name: "Default"}}),
		b.entry(CmdNamespaceCreate, NamespaceCreate{Namespace: model.Namespace{ID: "team-a", Name: "Team A"}}),
		b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "team-a", Config: cfg("one"), Retention: 2}),
		b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "team-a", Config: cfg("one", "two"), Retention: 2}),
		b.entry(CmdConfigDeploy, ConfigDeploy{NamespaceID: "team-a", PipelineID: "simple", Version: 1}),
		b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "team-a", Config: cfg("three"), Retention: 2}),
		b.entry(CmdTokenBootstrap, TokenCreate{Token: model.StoredToken{Token: model.Token{ID: "t1", User: "root", Roles: []string{"admin"}}, Hash: "h1"}}),
		b.entry(CmdPipelineSetState, PipelineSetState{NamespaceID: "team-a", PipelineID: "simple", State: model.PipelineStateDisabled}),
	}
}

// dump renders every bucket's keys and values, so two states can be
// compared byte for byte.
func dump(t testing.TB, f *FSM) string {
	t.Helper()
	var buf bytes.Buffer
	err := f.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				fmt.Fprintf(&buf, "%s %x %s\n", name, k, v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func resultOf(t testing.TB, v any) *Result {
	t.Helper()
	r, ok := v.(*Result)
	if !ok {
		t.Fatalf("apply returned %T, want *Result", v)
	}
	return r
}

func TestApplyScenario(t *testing.T) {
	f := testFSM(t, t.TempDir())
	logs := scenario(t)
	for i, r := range f.ApplyBatch(logs) {
		if res := resultOf(t, r); res.Err != nil {
			t.Fatalf("entry %d: %v", i+1, res.Err)
		}
	}
	if got := f.AppliedIndex(); got != uint64(len(logs)) {
		t.Fatalf("applied index %d, want %d", got, len(logs))
	}
	err := f.View(func(tx *bbolt.Tx) error {
		p, err := store.GetPipeline(tx, "team-a", "simple")
		if err != nil || p == nil {
			return fmt.Errorf("pipeline missing: %v", err)
		}
		if p.LiveVersion != 1 || p.LatestVersion != 3 || p.State != model.PipelineStateDisabled {
			return fmt.Errorf("pipeline = %+v", p)
		}
		// Retention 2 keeps the live version 1 and the newest 3; 2 is pruned.
		if got := store.ConfigVersions(tx, "team-a", "simple"); fmt.Sprint(got) != "[1 3]" {
			return fmt.Errorf("versions %v, want [1 3]", got)
		}
		tok, err := store.GetTokenByHash(tx, "h1")
		if err != nil || tok == nil || tok.User != "root" {
			return fmt.Errorf("bootstrap token not found by hash: %v %v", tok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBusinessErrorsChangeNothing(t *testing.T) {
	f := testFSM(t, t.TempDir())
	logs := scenario(t)
	f.ApplyBatch(logs)
	before := dump(t, f)
	b := &logBuilder{t: t, index: uint64(len(logs))}
	refused := []struct {
		log  *raft.Log
		want error
	}{
		{b.entry(CmdNamespaceCreate, NamespaceCreate{Namespace: model.Namespace{ID: "team-a"}}), ErrConflict},
		{b.entry(CmdNamespaceDelete, NamespaceDelete{ID: "default"}), ErrConflict},
		{b.entry(CmdConfigDeploy, ConfigDeploy{NamespaceID: "team-a", PipelineID: "simple", Version: 1}), ErrConflict},
		{b.entry(CmdConfigDeploy, ConfigDeploy{NamespaceID: "team-a", PipelineID: "simple", Version: 2}), ErrNotFound},
		{b.entry(CmdConfigDelete, ConfigDelete{NamespaceID: "team-a", PipelineID: "simple", Version: 1}), ErrConflict},
		{b.entry(CmdTokenBootstrap, TokenCreate{Token: model.StoredToken{Token: model.Token{ID: "t2"}, Hash: "h2"}}), ErrConflict},
		{b.entry(CmdTokenCreate, TokenCreate{Token: model.StoredToken{Token: model.Token{ID: "t3", Roles: []string{"nope"}}, Hash: "h3"}}), ErrInvalid},
		{b.entry(CmdRoleDelete, RoleDelete{ID: "admin"}), ErrConflict},
		{b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "ghost", Config: &sdk.PipelineConfig{ID: "simple"}}), ErrNotFound},
	}
	for _, r := range refused {
		res := resultOf(t, f.Apply(r.log))
		if !errors.Is(res.Err, r.want) {
			t.Fatalf("entry %d: got %v, want %v", r.log.Index, res.Err, r.want)
		}
	}
	// Only the applied index may differ.
	strip := regexp.MustCompile(`(?m)^meta 6170706c6965645f(696e646578|7465726d) .*\n`)
	if a, b := strip.ReplaceAllString(before, ""), strip.ReplaceAllString(dump(t, f), ""); a != b {
		t.Fatalf("refused commands changed state:\nbefore:\n%s\nafter:\n%s", a, b)
	}
}

// TestReplayAfterRestartAppliesNothingTwice reopens the state file and
// feeds raft's replay of the whole log: every entry is skipped.
func TestReplayAfterRestartAppliesNothingTwice(t *testing.T) {
	dir := t.TempDir()
	logs := scenario(t)
	db, err := store.Open(filepath.Join(dir, "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(db, store.Options{}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	f.ApplyBatch(logs[:5])
	f.ApplyBatch(logs[5:])
	want := dump(t, f)
	f.Flush()
	db.Close()

	f2 := testFSM(t, dir)
	if f2.AppliedIndex() != uint64(len(logs)) {
		t.Fatalf("reopened applied index %d, want %d", f2.AppliedIndex(), len(logs))
	}
	for i, r := range f2.ApplyBatch(logs) {
		if r != nil {
			t.Fatalf("replayed entry %d was applied again: %+v", i+1, r)
		}
	}
	if got := dump(t, f2); got != want {
		t.Fatalf("replay changed state:\nwant:\n%s\ngot:\n%s", want, got)
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestSnapshotRestoreGivesIdenticalState(t *testing.T) {
	src := testFSM(t, t.TempDir())
	logs := scenario(t)
	src.ApplyBatch(logs)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Entries applied after Snapshot() must not leak into it.
	b := &logBuilder{t: t, index: uint64(len(logs))}
	src.Apply(b.entry(CmdNamespaceCreate, NamespaceCreate{Namespace: model.Namespace{ID: "later"}}))
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := testFSM(t, t.TempDir())
	dst.Apply((&logBuilder{t: t}).entry(CmdNamespaceCreate, NamespaceCreate{Namespace: model.Namespace{ID: "stale"}}))
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if dst.Restores() != 1 { // leader services that were done look again
		t.Fatalf("%d restores counted, want 1", dst.Restores())
	}
	if dst.AppliedIndex() != uint64(len(logs)) {
		t.Fatalf("restored applied index %d, want %d", dst.AppliedIndex(), len(logs))
	}
	got := dump(t, dst)
	if strings.Contains(got, "stale") || strings.Contains(got, "later") {
		t.Fatalf("restore kept state that is not in the snapshot")
	}
	// Compare against a third FSM that applied exactly the snapshot's entries.
	ref := testFSM(t, t.TempDir())
	ref.ApplyBatch(scenario(t))
	if want := dump(t, ref); got != want {
		t.Fatalf("restored state differs:\nwant:\n%s\ngot:\n%s", want, got)
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	f := testFSM(t, t.TempDir())
	f.ApplyBatch(scenario(t))
	before := dump(t, f)
	if err := f.Restore(io.NopCloser(strings.NewReader("not a bolt file"))); err == nil {
		t.Fatal("restore accepted garbage")
	}
	if f.Restores() != 0 {
		t.Fatal("a failed restore was counted")
	}
	if dump(t, f) != before {
		t.Fatal("a failed restore changed state")
	}
}

func TestIdempotencyKeyReplaysOutcome(t *testing.T) {
	f := testFSM(t, t.TempDir())
	f.ApplyBatch(scenario(t))
	entry := func(idx uint64, typ CommandType, body any) *raft.Log {
		data, err := Encode(typ, Meta{ActorID: "tok", Timestamp: 5000, IdempotencyKey: "k1"}, body)
		if err != nil {
			t.Fatal(err)
		}
		return &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}
	}
	first := resultOf(t, f.Apply(entry(100, CmdNamespaceCreate, NamespaceCreate{Namespace: model.Namespace{ID: "idem"}})))
	second := resultOf(t, f.Apply(entry(101, CmdNamespaceCreate, NamespaceCreate{Namespace: model.Namespace{ID: "idem"}})))
	if first.Err != nil || second.Err != nil || !second.Replayed {
		t.Fatalf("first=%+v second=%+v; want both ok and the second replayed", first, second)
	}
	ns, err := ResultAs[model.Namespace](second)
	if err != nil || ns.ID != "idem" {
		t.Fatalf("replayed value %+v, %v", ns, err)
	}
	other := resultOf(t, f.Apply(entry(102, CmdNamespaceDelete, NamespaceDelete{ID: "idem"})))
	if !errors.Is(other.Err, ErrConflict) {
		t.Fatalf("key reused for another command: got %v, want conflict", other.Err)
	}
}

// TestFSMIsDeterministic keeps clocks, randomness and the environment out
// of the appliers (docs/architecture.md §4).
func TestFSMIsDeterministic(t *testing.T) {
	forbidden := regexp.MustCompile(`time\.Now\(|math/rand|crypto/rand|uuid\.|os\.Getenv|os\.Environ`)
	files, _ := filepath.Glob("*.go")
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if m := forbidden.Find(src); m != nil {
			t.Errorf("%s uses %s; stamp it on the leader before apply instead", name, m)
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	meta := Meta{RequestID: "r1", Actor: "alice", ActorID: "tok", Timestamp: -42, IdempotencyKey: "k"}
	data, err := Encode(CmdNamespaceCreate, meta, NamespaceCreate{Namespace: model.Namespace{ID: "abc"}})
	if err != nil {
		t.Fatal(err)
	}
	typ, env, err := decode(data)
	if err != nil || typ != CmdNamespaceCreate || env.Meta != meta {
		t.Fatalf("decode = %v %+v %v", typ, env, err)
	}
	if body := decodeBody[NamespaceCreate](env.Body); body.Namespace.ID != "abc" {
		t.Fatalf("body %+v", body)
	}
	for i := 0; i < len(data)-len(`{"namespace"`); i++ {
		if _, _, err := decode(data[:i]); err == nil && i < 2 {
			t.Fatalf("decode of %d bytes succeeded", i)
		}
	}
}

// FuzzDecodeCommand: decoding raft entries (which an older or newer node
// may have written) returns an error for garbage and never panics.
func FuzzDecodeCommand(f *testing.F) {
	good, _ := Encode(CmdNamespaceCreate, Meta{Actor: "a", Timestamp: 1}, NamespaceCreate{})
	f.Add(good)
	f.Add([]byte{1})
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff})
	f.Add([]byte{0x94, 1, 0, 0, 2, 0, '{', '}'})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, env, err := decode(data)
		if err == nil && env == nil {
			t.Fatal("no error and no envelope")
		}
	})
}

// TestGroupCommit: applied entries are visible through View at once (it
// commits on demand), reach the file on Flush, and a snapshot includes
// them without an explicit flush.
func TestGroupCommit(t *testing.T) {
	f := testFSM(t, t.TempDir())
	f.ApplyBatch(scenario(t)[:2]) // cluster init + namespace team-a
	committed := func() (found bool) {
		f.ViewCommitted(func(tx *bbolt.Tx) error {
			ns, _ := store.GetNamespace(tx, "team-a")
			found = ns != nil
			return nil
		})
		return found
	}
	if !f.Dirty() || committed() {
		t.Fatal("a small batch should wait in the pending transaction")
	}
	var viaView bool
	f.View(func(tx *bbolt.Tx) error {
		ns, _ := store.GetNamespace(tx, "team-a")
		viaView = ns != nil
		return nil
	})
	if !viaView || f.Dirty() || !committed() {
		t.Fatal("View must commit pending entries and see them")
	}

	b := &logBuilder{t: t, index: 2}
	var many []*raft.Log
	for i := 0; i < maxPendingEntries; i++ {
		many = append(many, b.entry(CmdNamespaceUpdate, NamespaceUpdate{ID: "team-a"}))
	}
	f.ApplyBatch(many)
	if f.Dirty() {
		t.Fatalf("%d pending entries should have been committed", maxPendingEntries)
	}

	f.Apply(b.entry(CmdNamespaceCreate, NamespaceCreate{Namespace: model.Namespace{ID: "in-snap"}}))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	dst := testFSM(t, t.TempDir())
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dst); !strings.Contains(got, "in-snap") {
		t.Fatal("the snapshot missed an entry applied just before it")
	}
}

// A paced snapshot (SetSnapshotWriteRate) holds exactly the bytes of an
// unpaced one: pacing only spreads the writes out.
func TestPacedSnapshotIsIdentical(t *testing.T) {
	f := testFSM(t, t.TempDir())
	f.ApplyBatch(scenario(t))
	persist := func() []byte {
		snap, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		defer snap.Release()
		var sink memSink
		if err := snap.Persist(&sink); err != nil {
			t.Fatal(err)
		}
		return sink.Bytes()
	}
	plain := persist()
	f.SetSnapshotWriteRate(1 << 30)
	paced := persist()
	if !bytes.Equal(plain, paced) {
		t.Fatalf("paced snapshot differs (%d bytes, unpaced %d)", len(paced), len(plain))
	}
}

// A node shutting down aborts the snapshot being written: a paced one of a
// large state would hold raft's shutdown past the node's timeout. The sink
// is cancelled (the previous snapshot stays the latest).
func TestAbortSnapshotsStopsPersist(t *testing.T) {
	f := testFSM(t, t.TempDir())
	f.ApplyBatch(scenario(t))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	f.AbortSnapshots()
	f.AbortSnapshots() // twice is fine
	var sink memSink
	if err := snap.Persist(&sink); !errors.Is(err, ErrSnapshotAborted) {
		t.Fatalf("Persist after AbortSnapshots: %v, want ErrSnapshotAborted", err)
	}
	if !sink.cancelled || sink.Len() != 0 {
		t.Fatalf("sink cancelled %v with %d bytes; want cancelled and empty", sink.cancelled, sink.Len())
	}
}
