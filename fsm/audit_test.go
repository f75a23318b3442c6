package fsm

import (
	"encoding/json"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

func (x *runFixture) auditEvents() []*model.Event {
	x.t.Helper()
	var out []*model.Event
	x.f.View(func(tx *bbolt.Tx) error {
		evs, err := store.ListEvents(tx, store.Page{Limit: store.MaxLimit}, func(e *model.Event) bool { return e.Kind == model.EventAudit })
		out = evs
		return err
	})
	return out
}

// An audit record becomes one cluster-wide event per entry, in order, with
// the entry's fields as typed details; bad records write nothing.
func TestAuditRecord(t *testing.T) {
	x := newRunFixture(t)
	x.ok(CmdAuditRecord, AuditRecord{Entries: []AuditEntry{
		{At: 1000, TokenID: "t1", Actor: "alice", Method: "POST", Route: "/api/namespaces/:ns/pipelines/:pipeline/runs",
			Namespace: "default", Resource: "pipeline=build", Status: 201, Outcome: "ok", RequestID: "r1"},
		{At: 1001, Method: "DELETE", Route: "/api/tokens/:id", Resource: "id=x", Status: 401, Outcome: "refused", RequestID: "r2"},
	}})
	evs := x.auditEvents()
	if len(evs) != 2 {
		t.Fatalf("%d audit events, want 2", len(evs))
	}
	first, second := evs[0], evs[1]
	b, _ := json.Marshal(first.Details)
	if want := `{"method":"POST","namespace":"default","outcome":"ok","request_id":"r1","resource":"pipeline=build","route":"/api/namespaces/:ns/pipelines/:pipeline/runs","status":201,"token_id":"t1"}`; string(b) != want {
		t.Errorf("details %s\nwant    %s", b, want)
	}
	if first.Actor != "alice" || first.Emitted != 1000 || !first.ClusterWide() {
		t.Errorf("first event %+v; want actor alice, emitted 1000, cluster-wide", first)
	}
	if second.Actor != "anonymous" || second.Details.String("outcome") != "refused" || second.Details.String("token_id") != "" {
		t.Errorf("second event %+v; want an anonymous refusal without a token id", second)
	}

	x.refused(CmdAuditRecord, AuditRecord{}, ErrInvalid)
	x.refused(CmdAuditRecord, AuditRecord{Entries: []AuditEntry{{Method: "POST", Route: "/x", Outcome: "ok"}, {Method: "POST", Route: "/x"}}}, ErrInvalid)
	x.refused(CmdAuditRecord, AuditRecord{Entries: []AuditEntry{{Method: "POST", Route: strings.Repeat("x", 2000), Outcome: "ok"}}}, ErrInvalid)
	if n := len(x.auditEvents()); n != 2 {
		t.Fatalf("refused records wrote events: %d, want 2", n)
	}
}
