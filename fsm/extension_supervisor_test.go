package fsm

import (
	"regexp"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

func (x *runFixture) extension(id string) *model.Extension {
	x.t.Helper()
	var e *model.Extension
	x.f.View(func(tx *bbolt.Tx) (err error) { e, err = store.GetExtension(tx, id); return err })
	return e
}

// The supervisor's state is recorded for the current install only; a
// reinstall resets it; bad states and an observation of the old install
// are refused without changing anything.
func TestExtensionSetState(t *testing.T) {
	x := newRunFixture(t)
	installExt(x, "interval", "tok1")
	running := model.ExtensionRuntime{State: model.ExtensionStateRunning, Started: 5, Documentation: []byte(`{"body":"b"}`)}
	x.ok(CmdExtensionSetState, ExtensionSetState{ID: "interval", TokenID: "tok1", Runtime: running})
	if rt := x.extension("interval").Runtime; rt.State != "running" || string(rt.Documentation) != `{"body":"b"}` {
		t.Fatalf("runtime %+v", rt)
	}
	// Documentation omitted: kept.
	x.ok(CmdExtensionSetState, ExtensionSetState{ID: "interval", TokenID: "tok1", Runtime: model.ExtensionRuntime{State: "exited", Reason: "crashed"}})
	if rt := x.extension("interval").Runtime; rt.State != "exited" || rt.Reason != "crashed" || string(rt.Documentation) != `{"body":"b"}` {
		t.Fatalf("runtime %+v", rt)
	}
	before := dump(x.t, x.f)
	x.refused(CmdExtensionSetState, ExtensionSetState{ID: "interval", TokenID: "old", Runtime: running}, ErrConflict)
	x.refused(CmdExtensionSetState, ExtensionSetState{ID: "interval", TokenID: "tok1", Runtime: model.ExtensionRuntime{State: "dancing"}}, ErrInvalid)
	x.refused(CmdExtensionSetState, ExtensionSetState{ID: "ghost", TokenID: "tok1", Runtime: running}, ErrNotFound)
	strip := regexp.MustCompile(`(?m)^meta 6170706c6965645f(696e646578|7465726d) .*\n`)
	if a, b := strip.ReplaceAllString(before, ""), strip.ReplaceAllString(dump(x.t, x.f), ""); a != b {
		t.Fatalf("refused commands changed state:\nbefore:\n%s\nafter:\n%s", a, b)
	}
	installExt(x, "interval", "tok2")
	if rt := x.extension("interval").Runtime; rt.State != "" || rt.Documentation != nil {
		t.Fatalf("a reinstall kept the old container's runtime %+v", rt)
	}
}

// The standard extensions are installed once per cluster, skipping an id
// the operator took first; a second command is a no-op.
func TestExtensionStdInstallOnce(t *testing.T) {
	x := newRunFixture(t)
	installExt(x, "cron", "mine")
	cmd := ExtensionStdInstall{Installs: []ExtensionInstall{
		{Extension: model.Extension{ID: "interval", Image: "gofer/extension-interval:1"}, Token: model.StoredToken{Token: model.Token{ID: "s1"}, Hash: "hs1"}},
		{Extension: model.Extension{ID: "cron", Image: "gofer/extension-cron:1"}, Token: model.StoredToken{Token: model.Token{ID: "s2"}, Hash: "hs2"}},
	}}
	if got := x.ok(CmdExtensionStdInstall, cmd).([]string); len(got) != 1 || got[0] != "interval" {
		t.Fatalf("installed %v, want [interval]", got)
	}
	if e := x.extension("cron"); e.TokenID != "mine" || e.Image != "img:cron" {
		t.Fatalf("the operator's cron was replaced: %+v", e)
	}
	if e := x.extension("interval"); e.TokenID != "s1" || x.token("s1") == nil || e.Status != model.ExtensionEnabled {
		t.Fatalf("interval %+v", e)
	}
	x.ok(CmdExtensionDelete, ExtensionDelete{ID: "interval"})
	again := ExtensionStdInstall{Installs: []ExtensionInstall{{Extension: model.Extension{ID: "interval"}, Token: model.StoredToken{Token: model.Token{ID: "s3"}, Hash: "hs3"}}}}
	if got := x.ok(CmdExtensionStdInstall, again).([]string); len(got) != 0 || x.extension("interval") != nil {
		t.Fatalf("a second standard install installed %v", got)
	}
}
