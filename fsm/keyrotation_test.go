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
