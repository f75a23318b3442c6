package fsm

import (
	"testing"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

func TestSecretPutDelete(t *testing.T) {
	x := newRunFixture(t)
	put := SecretPut{NamespaceID: "default", PipelineID: "dag", Key: "api_key", Sealed: []byte("sealed-1"), KeyCheck: "k1"}
	s := x.ok(CmdSecretPut, put).(*model.Secret)
	if s.Key != "api_key" || s.Modified != s.Created {
		t.Fatalf("secret %+v", s)
	}
	x.refused(CmdSecretPut, put, ErrConflict) // exists, no force
	put.Force, put.Sealed = true, []byte("sealed-2")
	x.ok(CmdSecretPut, put)
	put.KeyCheck = "other-key"
	x.refused(CmdSecretPut, put, ErrConflict) // sealed with another key
	x.refused(CmdSecretPut, SecretPut{NamespaceID: "nope", PipelineID: "dag", Key: "k", KeyCheck: "k1"}, ErrNotFound)
	// A global secret lives apart from pipeline secrets of the same key.
	x.ok(CmdSecretPut, SecretPut{Key: "api_key", Sealed: []byte("g"), Namespaces: []string{".*"}, KeyCheck: "k1"})

	var got, global *model.StoredSecret
	x.f.View(func(tx *bbolt.Tx) (err error) {
		got, _ = store.GetSecret(tx, "default", "dag", "api_key")
		global, err = store.GetSecret(tx, "", "", "api_key")
		return err
	})
	if string(got.Sealed) != "sealed-2" || string(global.Sealed) != "g" || len(global.Namespaces) != 1 {
		t.Fatalf("stored %+v / %+v", got, global)
	}
	x.ok(CmdSecretDelete, SecretRef{NamespaceID: "default", PipelineID: "dag", Key: "api_key"})
	x.refused(CmdSecretDelete, SecretRef{NamespaceID: "default", PipelineID: "dag", Key: "api_key"}, ErrNotFound)
	x.ok(CmdSecretDelete, SecretRef{Key: "api_key"})
}

func TestObjectsLimitEvictsOldest(t *testing.T) {
	x := newRunFixture(t)
	for _, k := range []string{"one", "two", "three"} {
		x.ok(CmdObjectPut, ObjectPut{ObjectRef: ObjectRef{NamespaceID: "default", PipelineID: "dag", Key: k}, Data: []byte(k), PipelineLimit: 2})
	}
	x.refused(CmdObjectPut, ObjectPut{ObjectRef: ObjectRef{NamespaceID: "default", PipelineID: "dag", Key: "two"}, PipelineLimit: 2}, ErrConflict)
	// Replacing a key with force is not a new object: nothing is evicted.
	x.ok(CmdObjectPut, ObjectPut{ObjectRef: ObjectRef{NamespaceID: "default", PipelineID: "dag", Key: "two"}, Data: []byte("2"), Force: true, PipelineLimit: 2})
	var keys []string
	var data []byte
	x.f.View(func(tx *bbolt.Tx) error {
		objs, err := store.ListObjects(tx, "default", "dag", 0, store.Page{})
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		data = store.GetObjectData(tx, "default", "dag", 0, "two")
		return err
	})
	if len(keys) != 2 || keys[0] != "three" || keys[1] != "two" || string(data) != "2" {
		t.Fatalf("objects %v, two=%q; want [three two] with the oldest (one) evicted", keys, data)
	}
	x.refused(CmdObjectPut, ObjectPut{ObjectRef: ObjectRef{NamespaceID: "default", PipelineID: "nope", Key: "k"}}, ErrNotFound)
	x.refused(CmdObjectDelete, ObjectRef{NamespaceID: "default", PipelineID: "dag", Key: "one"}, ErrNotFound)
}

func TestRunObjectsExpire(t *testing.T) {
	x := newRunFixture(t)
	runObj := func(run int64, k string) ObjectPut {
		return ObjectPut{ObjectRef: ObjectRef{NamespaceID: "default", PipelineID: "dag", RunID: run, Key: k}, Data: []byte(k)}
	}
	x.refused(CmdObjectPut, runObj(1, "early"), ErrNotFound) // no such run yet
	for i := int64(1); i <= 3; i++ {
		x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"})
		x.ok(CmdObjectPut, runObj(i, "build"))
	}
	x.finishRun(1)
	x.finishRun(3) // run 2 is still pending
	if n := x.ok(CmdRunObjectsExpire, RunObjectsExpire{NamespaceID: "default", PipelineID: "dag", Through: 3}); n != 1 {
		t.Fatalf("expired %v runs, want 1 (run 2 blocks the rest)", n)
	}
	x.f.View(func(tx *bbolt.Tx) error {
		if store.GetObjectData(tx, "default", "dag", 1, "build") != nil || store.GetObjectData(tx, "default", "dag", 3, "build") == nil {
			t.Error("expiry removed the wrong objects")
		}
		if r, _ := store.GetRun(tx, "default", "dag", 1); !r.StoreObjectsExpired {
			t.Error("run 1 is not marked store_objects_expired")
		}
		return nil
	})
	x.refused(CmdObjectPut, runObj(1, "late"), ErrConflict)
	// Deleting the pipeline takes its objects and secrets along.
	x.ok(CmdSecretPut, SecretPut{NamespaceID: "default", PipelineID: "dag", Key: "kkk", KeyCheck: "k"})
	x.ok(CmdPipelineDelete, PipelineDelete{NamespaceID: "default", PipelineID: "dag"})
	x.f.View(func(tx *bbolt.Tx) error {
		if store.GetObjectData(tx, "default", "dag", 3, "build") != nil {
			t.Error("a deleted pipeline's run object survived")
		}
		if s, _ := store.GetSecret(tx, "default", "dag", "kkk"); s != nil {
			t.Error("a deleted pipeline's secret survived")
		}
		return nil
	})
}

func TestSecretKeyCheckAndPipelineRequired(t *testing.T) {
	x := newRunFixture(t)
	put := SecretPut{NamespaceID: "default", PipelineID: "dag", Key: "kkk", Sealed: []byte("s"), KeyCheck: "key-1"}
	x.refused(CmdSecretPut, SecretPut{NamespaceID: "default", PipelineID: "ghost", Key: "kkk", KeyCheck: "key-1"}, ErrNotFound)
	x.ok(CmdSecretPut, put)
	other := put
	other.Key, other.KeyCheck = "second", "key-2"
	x.refused(CmdSecretPut, other, ErrConflict) // another key while secrets exist
	x.f.View(func(tx *bbolt.Tx) error {
		if got := store.SecretKeyCheck(tx); got != "key-1" {
			t.Errorf("a refused put changed the key check to %q", got)
		}
		return nil
	})
	x.ok(CmdSecretDelete, SecretRef{NamespaceID: "default", PipelineID: "dag", Key: "kkk"})
	x.ok(CmdSecretPut, other) // no secret left: the new key takes over
	put.Force, put.Sealed, put.KeyCheck = true, []byte("s2"), "key-2"
	x.ok(CmdSecretPut, put)
	put.Sealed = []byte("s3")
	x.ok(CmdSecretPut, put)
	x.f.View(func(tx *bbolt.Tx) error {
		s, _ := store.GetSecret(tx, "default", "dag", "kkk")
		if string(s.Sealed) != "s3" || string(s.PreviousSealed) != "s2" {
			t.Errorf("replaced secret %q previous %q, want s3 and s2", s.Sealed, s.PreviousSealed)
		}
		return nil
	})
}

func TestRunTokenLivesAsLongAsItsRun(t *testing.T) {
	x := newRunFixture(t)
	token := func(id string) *model.StoredToken {
		return &model.StoredToken{Token: model.Token{ID: id}, Hash: "hash-" + id, Sealed: []byte("sealed")}
	}
	stored := func(id string) *model.StoredToken {
		var tok *model.StoredToken
		x.f.View(func(tx *bbolt.Tx) (err error) {
			tok, err = store.GetToken(tx, id)
			return err
		})
		return tok
	}
	// No task of version 1 asks for a token: the material is dropped.
	if r := x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Token: token("tok0")}).(*RunCreated).Run; r.TokenID != "" || stored("tok0") != nil {
		t.Fatalf("a run no task of which wants a token got one: %+v", r)
	}
	x.finishRun(1)
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG", Timeout: "1h", Tasks: []*sdk.TaskConfig{
		{ID: "aaa", Image: "busybox", InjectAPIToken: true},
		{ID: "bbb", Image: "busybox", DependsOn: map[string]sdk.RequiredParentStatus{"aaa": sdk.RequiredParentStatusSuccess}},
	}}
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg})
	x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2})
	gen := x.f.AuthGeneration()
	r1 := x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Token: token("tok1")}).(*RunCreated).Run
	tok := stored("tok1")
	if r1.TokenID != "tok1" || tok == nil || len(tok.Permissions) == 0 || tok.User != "run:default/dag/2" {
		t.Fatalf("run %+v token %+v; want the run's token, scoped to its pipeline", r1, tok)
	}
	if x.f.AuthGeneration() == gen {
		t.Error("creating a run token did not bump the auth generation")
	}
	x.finishRun(2)
	if stored("tok1") != nil {
		t.Error("the token outlived its run")
	}
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Token: token("tok2")})
	gen = x.f.AuthGeneration()
	x.ok(CmdPipelineDelete, PipelineDelete{NamespaceID: "default", PipelineID: "dag"})
	if stored("tok2") != nil || x.f.AuthGeneration() == gen {
		t.Error("deleting the pipeline left its running run's token, or kept cached identities")
	}
}

// TestRoleDeleteTakesTheRoleOutOfItsTokens: deleting a role tokens still
// hold succeeds (upstream answers 204), the tokens lose it in the same
// entry (fail closed, also against a later role of the same id), the auth
// generation moves, and the event names the tokens. Command 18 still
// refuses, as the entries already in logs did.
func TestRoleDeleteTakesTheRoleOutOfItsTokens(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdRoleCreate, RoleCreate{Role: model.Role{ID: "ops"}})
	x.ok(CmdTokenCreate, TokenCreate{Token: model.StoredToken{Token: model.Token{ID: "t1", Roles: []string{"user", "ops"}}, Hash: "h1"}})
	x.ok(CmdTokenCreate, TokenCreate{Token: model.StoredToken{Token: model.Token{ID: "t2", Roles: []string{"ops"}}, Hash: "h2"}})
	x.ok(CmdTokenCreate, TokenCreate{Token: model.StoredToken{Token: model.Token{ID: "t3", Roles: []string{"user"}}, Hash: "h3"}})

	x.refused(CmdRoleDelete, RoleDelete{ID: "ops"}, ErrConflict)
	gen := x.f.AuthGeneration()
	x.ok(CmdRoleDeleteDetach, RoleDelete{ID: "ops"})
	if x.f.AuthGeneration() == gen {
		t.Fatal("deleting a role did not move the auth generation; cached identities would keep it")
	}
	x.refused(CmdRoleDeleteDetach, RoleDelete{ID: "admin"}, ErrConflict) // built-in roles stay
	x.refused(CmdRoleDeleteDetach, RoleDelete{ID: "ops"}, ErrNotFound)

	var roles = map[string][]string{}
	var last *model.Event
	x.f.View(func(tx *bbolt.Tx) error {
		for _, id := range []string{"t1", "t2", "t3"} {
			tok, err := store.GetToken(tx, id)
			if err != nil {
				return err
			}
			roles[id] = tok.Roles
		}
		evs, err := store.ListEvents(tx, store.Page{Limit: 1, Reverse: true}, nil)
		if len(evs) == 1 {
			last = evs[0]
		}
		return err
	})
	if len(roles["t1"]) != 1 || roles["t1"][0] != "user" || len(roles["t2"]) != 0 || len(roles["t3"]) != 1 {
		t.Fatalf("token roles after the delete: %v", roles)
	}
	if last == nil || last.Kind != model.EventDeletedRole || last.Details.String("tokens_affected") != "t1,t2" {
		t.Fatalf("last event %+v; want deleted_role naming t1,t2", last)
	}
	// A new role of the same id grants the old holders nothing.
	x.ok(CmdRoleCreate, RoleCreate{Role: model.Role{ID: "ops"}})
	x.f.View(func(tx *bbolt.Tx) error {
		n, err := store.TokensWithRole(tx, "ops")
		if n != 0 {
			t.Errorf("%d tokens hold the recreated role", n)
		}
		return err
	})
}
