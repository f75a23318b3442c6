package fsm

import (
	"errors"
	"regexp"
	"testing"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

func installExt(x *runFixture, id, tokenID string, roles ...string) *model.Extension {
	x.t.Helper()
	return x.ok(CmdExtensionInstall, ExtensionInstall{
		Extension: model.Extension{ID: id, Image: "img:" + id, AdditionalRoles: roles},
		Token:     model.StoredToken{Token: model.Token{ID: tokenID}, Hash: "hash-" + tokenID},
	}).(*model.Extension)
}

func subRef(ext, sub string) SubscriptionRef {
	return SubscriptionRef{NamespaceID: "default", PipelineID: "dag", ExtensionID: ext, SubscriptionID: sub}
}

func (x *runFixture) subscription(ext, sub string) *model.Subscription {
	x.t.Helper()
	var s *model.Subscription
	x.f.View(func(tx *bbolt.Tx) (err error) {
		s, err = store.GetSubscription(tx, "default", "dag", ext, sub)
		return err
	})
	return s
}

func (x *runFixture) token(id string) *model.StoredToken {
	x.t.Helper()
	var t *model.StoredToken
	x.f.View(func(tx *bbolt.Tx) (err error) { t, err = store.GetToken(tx, id); return err })
	return t
}

func (x *runFixture) role(id string) *model.Role {
	x.t.Helper()
	var r *model.Role
	x.f.View(func(tx *bbolt.Tx) (err error) { r, err = store.GetRole(tx, id); return err })
	return r
}

// TestExtensionInstallMakesRoleAndRotatesToken: install stores the auto
// role and a token bound to the extension; a reinstall replaces the token
// (the old one is gone) and keeps status and subscriptions.
func TestExtensionInstallMakesRoleAndRotatesToken(t *testing.T) {
	x := newRunFixture(t)
	e := installExt(x, "interval", "tok1")
	if e.Status != model.ExtensionEnabled || e.TokenID != "tok1" {
		t.Fatalf("installed %+v", e)
	}
	tok := x.token("tok1")
	if tok == nil || tok.Extension != "interval" || tok.User != "interval (extension)" || len(tok.Roles) != 1 || tok.Roles[0] != "extension_interval" {
		t.Fatalf("token %+v", tok)
	}
	if r := x.role("extension_interval"); r == nil || len(r.Permissions) != 3 {
		t.Fatalf("role %+v", r)
	}
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("interval", "every-min"), Settings: map[string]string{"every": "1m"}})
	x.ok(CmdExtensionSetStatus, ExtensionSetStatus{ID: "interval", Enabled: false})

	e = installExt(x, "interval", "tok2", model.RoleUser)
	if e.TokenID != "tok2" || e.Status != model.ExtensionDisabled {
		t.Fatalf("reinstalled %+v", e)
	}
	if x.token("tok1") != nil {
		t.Fatal("reinstall kept the old token")
	}
	if tok := x.token("tok2"); tok == nil || len(tok.Roles) != 2 || tok.Roles[1] != model.RoleUser {
		t.Fatalf("new token %+v", tok)
	}
	if x.subscription("interval", "every-min") == nil {
		t.Fatal("reinstall dropped the subscription")
	}
}

// TestTriggerKeyStartsOneRunAcrossTokenRotation: a trigger key starts at
// most one run per (pipeline, extension), whichever token asks; the
// watermark follows the newest tick and never moves back; a tick behind it
// that never fired is refused.
func TestTriggerKeyStartsOneRunAcrossTokenRotation(t *testing.T) {
	x := newRunFixture(t)
	installExt(x, "interval", "tok1")
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("interval", "s1"), Settings: map[string]string{"every": "1m"}})
	x.b.clock = 1_000_000 // the leader's clock: 1,000 s, past every tick below
	start := func(key string) *RunCreated {
		x.t.Helper()
		return x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Extension: "interval", TriggerKey: key,
			Initiator: model.Initiator{ID: "tok", User: "interval (extension)"}}).(*RunCreated)
	}
	first := start("interval:default/dag/s1:100")
	if first.Existing || first.Run.RunID != 1 {
		t.Fatalf("first %+v", first)
	}
	if w := x.subscription("interval", "s1").Watermark; w != 100_000 {
		t.Fatalf("watermark %d, want 100000", w)
	}
	if again := start("interval:default/dag/s1:100"); !again.Existing || again.Run.RunID != 1 {
		t.Fatalf("same key again: %+v", again)
	}
	installExt(x, "interval", "tok2") // the token rotates
	if again := start("interval:default/dag/s1:100"); !again.Existing || again.Run.RunID != 1 {
		t.Fatalf("same key after rotation: %+v", again)
	}
	// A tick the watermark passed without a run was decided (skipped, or
	// before a recreate): it is not fired late, so one tick never gets a
	// run and a skip.
	x.refused(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Extension: "interval",
		TriggerKey: "interval:default/dag/s1:50", Initiator: model.Initiator{ID: "tok", User: "interval (extension)"}}, ErrConflict)
	if w := x.subscription("interval", "s1").Watermark; w != 100_000 {
		t.Fatalf("watermark moved back to %d", w)
	}
	x.ok(CmdTriggerSkip, TriggerSkip{SubscriptionRef: subRef("interval", "s1"), Ticks: []int64{150}})
	x.refused(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Extension: "interval",
		TriggerKey: "interval:default/dag/s1:150", Initiator: model.Initiator{ID: "tok", User: "interval (extension)"}}, ErrConflict)
	start("interval:default/dag/s1:200")
	if s := x.subscription("interval", "s1"); s.Watermark != 200_000 || s.LastFired != 200_000 {
		t.Fatalf("watermark %d, last fired %d; want 200000 both", s.Watermark, s.LastFired)
	}
	// A key in another form is deduplicated and moves no watermark.
	other := start("interval:s1:300")
	if again := start("interval:s1:300"); !again.Existing || again.Run.RunID != other.Run.RunID {
		t.Fatalf("a short key again: %+v", again)
	}
	if w := x.subscription("interval", "s1").Watermark; w != 200_000 {
		t.Fatalf("a short key moved the watermark to %d", w)
	}
}

// TestTriggerChecksChangeNothing: every refused extension, subscription
// and trigger command leaves state as it was (check before write).
func TestTriggerChecksChangeNothing(t *testing.T) {
	x := newRunFixture(t)
	installExt(x, "interval", "tok1")
	installExt(x, "github", "tok2")
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("interval", "s1")})
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("interval", "off")})
	x.ok(CmdSubscriptionSetStatus, SubscriptionSetStatus{SubscriptionRef: subRef("interval", "off"), Status: model.SubscriptionDisabled})
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("github", "paused")})
	x.ok(CmdSubscriptionSetStatus, SubscriptionSetStatus{SubscriptionRef: subRef("github", "paused"), Status: model.SubscriptionDisabled})
	x.ok(CmdRoleCreate, RoleCreate{Role: model.Role{ID: "extension_taken"}})
	before := dump(x.t, x.f)
	run := func(ext, key string) RunCreate {
		return RunCreate{NamespaceID: "default", PipelineID: "dag", Extension: ext, TriggerKey: key}
	}
	refused := []struct {
		typ  CommandType
		body any
		want error
	}{
		{CmdExtensionInstall, ExtensionInstall{Extension: model.Extension{ID: "x", AdditionalRoles: []string{"nope"}}, Token: model.StoredToken{Token: model.Token{ID: "t9"}, Hash: "h9"}}, ErrInvalid},
		{CmdExtensionInstall, ExtensionInstall{Extension: model.Extension{ID: "x"}, Token: model.StoredToken{Token: model.Token{ID: "tok1"}, Hash: "h9"}}, ErrConflict},
		{CmdExtensionInstall, ExtensionInstall{Extension: model.Extension{ID: "taken"}, Token: model.StoredToken{Token: model.Token{ID: "t9"}, Hash: "h9"}}, ErrConflict},
		{CmdExtensionSetStatus, ExtensionSetStatus{ID: "ghost"}, ErrNotFound},
		{CmdExtensionDelete, ExtensionDelete{ID: "ghost"}, ErrNotFound},
		{CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("ghost", "s1")}, ErrNotFound},
		{CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("interval", "s1")}, ErrConflict},
		{CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: SubscriptionRef{NamespaceID: "default", PipelineID: "ghost", ExtensionID: "interval", SubscriptionID: "s"}}, ErrNotFound},
		{CmdSubscriptionSetStatus, SubscriptionSetStatus{SubscriptionRef: subRef("interval", "s1"), Status: "paused"}, ErrInvalid},
		{CmdSubscriptionDelete, SubscriptionDelete{SubscriptionRef: subRef("interval", "ghost")}, ErrNotFound},
		{CmdRunCreate, run("interval", "interval:default/other/s1:100"), ErrInvalid},
		{CmdRunCreate, run("interval", "interval:default/dag/ghost:100"), ErrNotFound},
		{CmdRunCreate, run("interval", "interval:default/dag/off:100"), ErrConflict},
		{CmdRunCreate, run("github", "github:delivery-1"), ErrConflict}, // no active subscription (one disabled)
		{CmdRunCreate, run("ghost", "interval:default/dag/s1:100"), ErrNotFound},
	}
	for i, r := range refused {
		if res := x.apply(r.typ, r.body); !errors.Is(res.Err, r.want) {
			t.Fatalf("case %d (%s): got %v, want %v", i, r.typ, res.Err, r.want)
		}
	}
	strip := regexp.MustCompile(`(?m)^meta 6170706c6965645f(696e646578|7465726d) .*\n`)
	if a, b := strip.ReplaceAllString(before, ""), strip.ReplaceAllString(dump(x.t, x.f), ""); a != b {
		t.Fatalf("refused commands changed state:\nbefore:\n%s\nafter:\n%s", a, b)
	}
	x.ok(CmdExtensionSetStatus, ExtensionSetStatus{ID: "interval", Enabled: false})
	mid := dump(x.t, x.f)
	x.refused(CmdRunCreate, run("interval", "interval:default/dag/s1:100"), ErrConflict)
	x.refused(CmdRunCreate, run("interval", ""), ErrConflict) // a disabled extension starts nothing
	if a, b := strip.ReplaceAllString(mid, ""), strip.ReplaceAllString(dump(x.t, x.f), ""); a != b {
		t.Fatalf("refused run starts changed state:\nbefore:\n%s\nafter:\n%s", a, b)
	}
}

// TestSubscriptionsCascade: a pipeline's delete takes its subscriptions
// and trigger keys; an uninstall takes the extension's subscriptions,
// role and token, and the role out of any other token.
func TestSubscriptionsCascade(t *testing.T) {
	x := newRunFixture(t)
	installExt(x, "interval", "tok1")
	x.ok(CmdTokenCreate, TokenCreate{Token: model.StoredToken{Token: model.Token{ID: "other", Roles: []string{"extension_interval", model.RoleUser}}, Hash: "ho"}})
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("interval", "s1")})
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Extension: "interval", TriggerKey: "interval:default/dag/s1:100"})

	x.ok(CmdExtensionDelete, ExtensionDelete{ID: "interval"})
	if x.subscription("interval", "s1") != nil || x.token("tok1") != nil || x.role("extension_interval") != nil {
		t.Fatal("uninstall left its subscription, token or role")
	}
	if o := x.token("other"); o == nil || len(o.Roles) != 1 || o.Roles[0] != model.RoleUser {
		t.Fatalf("other token %+v", o)
	}
	x.f.View(func(tx *bbolt.Tx) error {
		if id := store.GetTriggerKey(tx, "default", "dag", "interval", "interval:default/dag/s1:100"); id != 0 {
			t.Fatal("uninstall left the trigger key")
		}
		return nil
	})

	installExt(x, "interval", "tok2")
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("interval", "s1")})
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Extension: "interval", TriggerKey: "interval:default/dag/s1:100"})
	x.ok(CmdPipelineDelete, PipelineDelete{NamespaceID: "default", PipelineID: "dag"})
	if x.subscription("interval", "s1") != nil {
		t.Fatal("pipeline delete left its subscription")
	}
	x.f.View(func(tx *bbolt.Tx) error {
		if id := store.GetTriggerKey(tx, "default", "dag", "interval", "interval:default/dag/s1:100"); id != 0 {
			t.Fatal("pipeline delete left the trigger key")
		}
		return nil
	})
}

// TestNamespaceDeleteTakesSubscriptions: a namespace's delete takes the
// subscriptions and trigger keys of its pipelines, and only those.
func TestNamespaceDeleteTakesSubscriptions(t *testing.T) {
	x := newRunFixture(t)
	installExt(x, "interval", "tok1")
	x.ok(CmdNamespaceCreate, NamespaceCreate{Namespace: model.Namespace{ID: "team"}})
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "team", Config: &sdk.PipelineConfig{ID: "dag", Name: "DAG", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox"}}}})
	x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "team", PipelineID: "dag", Version: 1})
	for _, ns := range []string{"default", "team"} {
		x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: SubscriptionRef{NamespaceID: ns, PipelineID: "dag", ExtensionID: "interval", SubscriptionID: "s1"}})
		x.ok(CmdRunCreate, RunCreate{NamespaceID: ns, PipelineID: "dag", Extension: "interval", TriggerKey: "interval:" + ns + "/dag/s1:100"})
	}
	x.ok(CmdNamespaceDelete, NamespaceDelete{ID: "team"})
	x.f.View(func(tx *bbolt.Tx) error {
		if s, _ := store.GetSubscription(tx, "team", "dag", "interval", "s1"); s != nil {
			t.Error("namespace delete left its subscription")
		}
		if store.GetTriggerKey(tx, "team", "dag", "interval", "interval:team/dag/s1:100") != 0 {
			t.Error("namespace delete left its trigger key")
		}
		if s, _ := store.GetSubscription(tx, "default", "dag", "interval", "s1"); s == nil {
			t.Error("namespace delete took another namespace's subscription")
		}
		if store.GetTriggerKey(tx, "default", "dag", "interval", "interval:default/dag/s1:100") == 0 {
			t.Error("namespace delete took another namespace's trigger key")
		}
		return nil
	})
}

// TestPruneTriggerKeys: keys recorded before the cutoff go, newer stay.
func TestPruneTriggerKeys(t *testing.T) {
	x := newRunFixture(t)
	installExt(x, "interval", "tok1")
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("interval", "s1")})
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Extension: "interval", TriggerKey: "interval:default/dag/s1:100"})
	cut := 1000 + x.b.index + 1 // entries are stamped 1000+index ms
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Extension: "interval", TriggerKey: "interval:default/dag/s1:200"})
	res := x.ok(CmdPrune, Prune{TriggerKeysBefore: int64(cut), Max: 100}).(*PruneResult)
	if res.TriggerKeys != 1 {
		t.Fatalf("pruned %d keys, want 1", res.TriggerKeys)
	}
	x.f.View(func(tx *bbolt.Tx) error {
		if store.GetTriggerKey(tx, "default", "dag", "interval", "interval:default/dag/s1:100") != 0 ||
			store.GetTriggerKey(tx, "default", "dag", "interval", "interval:default/dag/s1:200") != 2 {
			t.Fatal("prune removed the wrong keys")
		}
		return nil
	})
}

func TestParseTickKey(t *testing.T) {
	k, ok := ParseTickKey("cron:ns/p/nightly:1700000000")
	if !ok || k != (TickKey{Namespace: "ns", Pipeline: "p", Subscription: "nightly", Unix: 1700000000}) {
		t.Fatalf("parsed %+v %v", k, ok)
	}
	for _, bad := range []string{"github:abc", "cron:ns/p:1", "cron:ns/p/s:-1", "cron:ns/p/s:x", "interval:/p/s:1", "other:ns/p/s:1"} {
		if _, ok := ParseTickKey(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	if IsTriggerKey("interval:") || !IsTriggerKey("github:x") || IsTriggerKey("my-key") {
		t.Error("IsTriggerKey")
	}
}

// TestPruneNamedTriggerKeys: a Prune naming trigger keys deletes those
// still older than its cutoff and keeps the rest (a key recorded since,
// an unnamed old key, a missing one); a list over the bound is refused
// and changes nothing. store.OldTriggerKeys is what the leader names.
func TestPruneNamedTriggerKeys(t *testing.T) {
	x := newRunFixture(t)
	installExt(x, "interval", "tok1")
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("interval", "s1")})
	x.b.clock = 1_000_000
	start := func(key string) {
		x.t.Helper()
		x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Extension: "interval", TriggerKey: key})
	}
	start("interval:default/dag/s1:100")
	start("interval:default/dag/s1:200")
	cutoff := x.b.clock + 1_000_000 // both keys are older
	x.b.clock += 2_000_000
	start("interval:default/dag/s1:300") // recorded after the cutoff

	var old []store.TriggerKeyRef
	x.f.View(func(tx *bbolt.Tx) error { old = store.OldTriggerKeys(tx, cutoff, 10); return nil })
	if len(old) != 2 || old[0].Key != "interval:default/dag/s1:100" || old[1].Key != "interval:default/dag/s1:200" || old[0].ExtensionID != "interval" {
		t.Fatalf("old trigger keys %+v, want the keys of ticks 100 and 200", old)
	}
	many := make([]store.TriggerKeyRef, MaxPrunedTriggerKeys+1)
	x.refused(CmdPrune, Prune{TriggerKeysBefore: cutoff, TriggerKeys: many}, ErrInvalid)

	named := []store.TriggerKeyRef{old[0], // old: deleted
		{NamespaceID: "default", PipelineID: "dag", ExtensionID: "interval", Key: "interval:default/dag/s1:300"}, // recent: kept
		{NamespaceID: "default", PipelineID: "dag", ExtensionID: "interval", Key: "interval:default/dag/s1:999"}} // missing
	res := x.ok(CmdPrune, Prune{TriggerKeysBefore: cutoff, TriggerKeys: named}).(*PruneResult)
	if res.TriggerKeys != 1 {
		t.Fatalf("pruned %d trigger keys, want 1", res.TriggerKeys)
	}
	x.f.View(func(tx *bbolt.Tx) error {
		for key, want := range map[string]bool{"interval:default/dag/s1:100": false, "interval:default/dag/s1:200": true, "interval:default/dag/s1:300": true} {
			if got := store.GetTriggerKey(tx, "default", "dag", "interval", key) != 0; got != want {
				t.Errorf("trigger key %s stored %v, want %v", key, got, want)
			}
		}
		return nil
	})
}
