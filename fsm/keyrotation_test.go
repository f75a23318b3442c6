package fsm

import (
	"testing"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

func (x *runFixture) remaining(target string) model.KeyRotationCounts {
	x.t.Helper()
	var rem model.KeyRotationCounts
	x.f.View(func(tx *bbolt.Tx) (err error) {
		rem, _, err = store.CountSealed(tx, target)
		return err
	})
	return rem
}

func (x *runFixture) secret(ns, pipeline, key string) *model.StoredSecret {
	x.t.Helper()
	var s *model.StoredSecret
	x.f.View(func(tx *bbolt.Tx) (err error) {
		s, err = store.GetSecret(tx, ns, pipeline, key)
		return err
	})
	return s
}

// TestKeyRotationResealsWithCompareAndSwap walks a rotation: start, a
// concurrent put under the new key, a stale re-seal that must be skipped,
// finishing only once nothing is left under the old key, then an abort
// of a second rotation.
func TestKeyRotationResealsWithCompareAndSwap(t *testing.T) {
	x := newRunFixture(t)
	// A legacy record (no key check on it) and a replaced one.
	x.ok(CmdSecretPut, SecretPut{NamespaceID: "default", PipelineID: "dag", Key: "one", Sealed: []byte("one-old"), KeyCheck: "old"})
	x.ok(CmdSecretPut, SecretPut{Key: "glob", Sealed: []byte("g-old-1"), Namespaces: []string{".*"}, KeyCheck: "old"})
	x.ok(CmdSecretPut, SecretPut{Key: "glob", Sealed: []byte("g-old-2"), Namespaces: []string{".*"}, KeyCheck: "old", Force: true})
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG", Timeout: "1h", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox", InjectAPIToken: true}}}
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg})
	x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2})
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag",
		Token: &model.StoredToken{Token: model.Token{ID: "tok1"}, Hash: "h1", Sealed: []byte("tok-old")}})
	if got := x.remaining("new").Sum(); got != 4 {
		t.Fatalf("remaining before the rotation = %d, want 4 (2 secrets, 1 previous value, 1 run token)", got)
	}
	x.refused(CmdKeyRotationStart, KeyRotationStart{Source: "old", Abort: true}, ErrConflict)     // nothing to abort
	x.refused(CmdKeyRotationStart, KeyRotationStart{Source: "stale", Target: "new"}, ErrConflict) // source changed
	x.refused(CmdKeyRotationStart, KeyRotationStart{Source: "old", Target: "old"}, ErrConflict)   // nothing to rotate
	rot := x.ok(CmdKeyRotationStart, KeyRotationStart{Source: "old", Target: "new"}).(*model.KeyRotation)
	if rot.State != model.KeyRotationRotating || rot.Source != "old" || rot.Target != "new" {
		t.Fatalf("rotation %+v", rot)
	}
	x.ok(CmdKeyRotationStart, KeyRotationStart{Source: "old", Target: "new"}) // a second start is a no-op
	x.refused(CmdKeyRotationStart, KeyRotationStart{Source: "old", Target: "third"}, ErrConflict)
	x.refused(CmdSecretPut, SecretPut{Key: "x-key", Sealed: []byte("x"), Namespaces: []string{".*"}, KeyCheck: "third"}, ErrConflict)

	// Finishing early is refused.
	x.refused(CmdKeyRotationFinish, KeyRotationFinish{Target: "new"}, ErrConflict)

	// The leader read "one" and sealed it anew; meanwhile a put replaced it.
	stale := ResealItem{Kind: store.SealedSecret, NamespaceID: "default", PipelineID: "dag", Key: "one",
		Was: seal.Digest([]byte("one-old")), Sealed: []byte("one-new")}
	x.ok(CmdSecretPut, SecretPut{NamespaceID: "default", PipelineID: "dag", Key: "one", Sealed: []byte("one-put-new"), KeyCheck: "new", Force: true})
	res := x.ok(CmdSecretsReseal, SecretsReseal{Target: "new", Items: []ResealItem{stale}}).(*ResealResult)
	if res.Resealed != 0 || res.Skipped != 1 {
		t.Fatalf("a stale re-seal = %+v; want it skipped", res)
	}
	if s := x.secret("default", "dag", "one"); string(s.Sealed) != "one-put-new" || s.KeyCheck != "new" || s.PreviousKeyCheck != "old" {
		t.Fatalf("the concurrent put was clobbered: %+v", s)
	}
	x.refused(CmdSecretsReseal, SecretsReseal{Target: "third", Items: []ResealItem{stale}}, ErrConflict)

	// The worker's next pass.
	items := []ResealItem{
		{Kind: store.SealedSecret, NamespaceID: "default", PipelineID: "dag", Key: "one", Was: seal.Digest([]byte("one-put-new")),
			PreviousWas: seal.Digest([]byte("one-old")), PreviousSealed: []byte("one-old-resealed")},
		{Kind: store.SealedSecret, Key: "glob", Was: seal.Digest([]byte("g-old-2")), Sealed: []byte("g-new-2"),
			PreviousWas: seal.Digest([]byte("g-old-1")), PreviousSealed: []byte("g-new-1")},
		{Kind: store.SealedRunToken, TokenID: "tok1", Was: seal.Digest([]byte("tok-old")), Sealed: []byte("tok-new")},
	}
	res = x.ok(CmdSecretsReseal, SecretsReseal{Target: "new", Items: items}).(*ResealResult)
	if res.Resealed != 4 || res.Skipped != 0 {
		t.Fatalf("re-seal = %+v, want 4 values", res)
	}
	if got := x.remaining("new"); got.Sum() != 0 {
		t.Fatalf("remaining after the pass = %+v", got)
	}
	done := x.ok(CmdKeyRotationFinish, KeyRotationFinish{Target: "new"}).(*model.KeyRotation)
	if done.State != model.KeyRotationDone || done.Resealed != 4 {
		t.Fatalf("finished rotation %+v", done)
	}
	x.f.View(func(tx *bbolt.Tx) error {
		if got := store.SecretKeyCheck(tx); got != "new" {
			t.Errorf("recorded key check = %q, want new", got)
		}
		return nil
	})
	// Only the new key is accepted now.
	x.refused(CmdSecretPut, SecretPut{Key: "glob", Sealed: []byte("x"), Namespaces: []string{".*"}, KeyCheck: "old", Force: true}, ErrConflict)

	// Abort: a rotation back to the source key.
	x.ok(CmdKeyRotationStart, KeyRotationStart{Source: "new", Target: "newer"})
	ab := x.ok(CmdKeyRotationStart, KeyRotationStart{Source: "new", Abort: true}).(*model.KeyRotation)
	if ab.Target != "new" || ab.Source != "newer" || !ab.Aborted || ab.State != model.KeyRotationRotating {
		t.Fatalf("aborted rotation %+v", ab)
	}
	if x.remaining("new").Sum() != 0 {
		t.Fatal("nothing was re-sealed, yet values are counted as not under the abort's target")
	}
	x.ok(CmdKeyRotationFinish, KeyRotationFinish{Target: "new"})
}

// TestKeyRotationAbortTwiceStaysARollback: an abort sent again (the CLI
// timed out and the operator repeated it) must not swap the rollback back
// into a rotation to the new key, which may be the key being removed
// because it leaked. An abort meant for another rotation is refused.
func TestKeyRotationAbortTwiceStaysARollback(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdSecretPut, SecretPut{Key: "glob", Sealed: []byte("g-old"), Namespaces: []string{".*"}, KeyCheck: "old"})
	x.ok(CmdKeyRotationStart, KeyRotationStart{Source: "old", Target: "leaked"})
	abort := KeyRotationStart{Source: "old", Abort: true, RollbackTo: "old"}
	for i := 1; i <= 2; i++ {
		ab := x.ok(CmdKeyRotationStart, abort).(*model.KeyRotation)
		if ab.Target != "old" || ab.Source != "leaked" || !ab.Aborted || ab.State != model.KeyRotationRotating {
			t.Fatalf("after abort %d: %+v; want a rollback from leaked to old", i, ab)
		}
	}
	// An abort computed against a rotation that is no longer the one
	// running is refused rather than applied to whatever runs now.
	x.refused(CmdKeyRotationStart, KeyRotationStart{Source: "old", Abort: true, RollbackTo: "other"}, ErrConflict)
	// Once the rollback is done, a late repeat is still a no-op.
	x.ok(CmdKeyRotationFinish, KeyRotationFinish{Target: "old"})
	if ab := x.ok(CmdKeyRotationStart, abort).(*model.KeyRotation); ab.State != model.KeyRotationDone || ab.Target != "old" {
		t.Fatalf("abort after the rollback finished: %+v", ab)
	}
	x.f.View(func(tx *bbolt.Tx) error {
		if got := store.SecretKeyCheck(tx); got != "old" {
			t.Errorf("recorded key check = %q, want old", got)
		}
		return nil
	})
}

// TestRunTokenKeyCheckedLikeSecrets: a run token sealed under a key other
// than the cluster's is refused like such a secret (and changes nothing);
// while a rotation runs its source and target are both accepted.
func TestRunTokenKeyCheckedLikeSecrets(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdSecretPut, SecretPut{Key: "glob", Sealed: []byte("g-old"), Namespaces: []string{".*"}, KeyCheck: "old"})
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG", Timeout: "1h", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox", InjectAPIToken: true}}}
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg})
	x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2})
	tok := func(id, check string) *model.StoredToken {
		return &model.StoredToken{Token: model.Token{ID: id}, Hash: "h-" + id, Sealed: []byte("sealed-" + id), KeyCheck: check}
	}
	x.refused(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Token: tok("t1", "leader-own")}, ErrConflict)
	if got := x.remaining("old"); got.Sum() != 0 {
		t.Fatalf("remaining with no rotation after a refused run = %+v", got)
	}
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Token: tok("t2", "old")})
	x.ok(CmdKeyRotationStart, KeyRotationStart{Source: "old", Target: "new"})
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Token: tok("t3", "new")})
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Token: tok("t4", "old")})
	x.refused(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Token: tok("t5", "third")}, ErrConflict)
}

// TestKeyRotationChangesWakeOnlyForRotations: the idle key rotator waits on
// KeyRotationChanges, so other writes must not fire it (each wake costs
// the leader a forced commit of the state file) and rotation commands must.
func TestKeyRotationChangesWakeOnlyForRotations(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdSecretPut, SecretPut{Key: "glob", Sealed: []byte("g-old"), Namespaces: []string{".*"}, KeyCheck: "old"})
	woken := x.f.KeyRotationChanges().Changed()
	x.ok(CmdNamespaceCreate, NamespaceCreate{Namespace: model.Namespace{ID: "quiet-ns"}})
	x.ok(CmdSecretPut, SecretPut{Key: "glob2", Sealed: []byte("g-old"), Namespaces: []string{".*"}, KeyCheck: "old"})
	select {
	case <-woken:
		t.Fatal("a write that is not a key rotation command woke the key rotator")
	default:
	}
	x.ok(CmdKeyRotationStart, KeyRotationStart{Source: "old", Target: "new"})
	select {
	case <-woken:
	default:
		t.Fatal("starting a key rotation did not wake the key rotator")
	}
}
