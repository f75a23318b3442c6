package fsm

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/goferhq/gofer/internal/fastjson/fastjsontest"
)

// checkFastEncode: the hand encoder writes json.Marshal's bytes exactly
// (replicas compare what they store, and old binaries replay the log).
func checkFastEncode(t *testing.T, v fastEncoder) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.appendJSON(nil); !bytes.Equal(got, want) {
		t.Fatalf("appendJSON = %s\njson.Marshal = %s", got, want)
	}
}

func TestFastEncodeIsJSONMarshal(t *testing.T) {
	desc, name, empty := "d <&> \u2028 \"q\" \xff", "n", ""
	for _, v := range []fastEncoder{
		NamespaceUpdate{}, NamespaceUpdate{ID: "a"}, NamespaceUpdate{ID: "a", Name: &empty, Description: &empty},
		NamespaceUpdate{ID: "a", Description: &desc}, NamespaceUpdate{ID: "a", Name: &name, Description: &desc},
		AuditRecord{}, AuditRecord{Entries: []AuditEntry{}}, AuditRecord{Entries: []AuditEntry{{}}},
		AuditRecord{Entries: []AuditEntry{{At: 1, TokenID: "t", Actor: "root", Method: "PATCH", Route: "/api/namespaces/:ns",
			Namespace: "n\"", Resource: "pipeline=p run=3", Status: 200, Outcome: "ok", RequestID: "r"},
			{At: -5, Method: "*", Route: "*", Status: -1, Outcome: "suppressed", Suppressed: 7}}},
	} {
		checkFastEncode(t, v)
	}
	// Through the envelope: the body is what json.Marshal wrote.
	raw, err := Encode(CmdNamespaceUpdate, Meta{RequestID: "r", Actor: "a"}, NamespaceUpdate{ID: "a", Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"a","name":"n"}`; !bytes.HasSuffix(raw, []byte(want)) {
		t.Fatalf("encoded command %q does not end in the body %s", raw, want)
	}
}

func FuzzFastEncode(f *testing.F) {
	f.Add("a", "n", "d <&>", int64(1), 200, true)
	f.Fuzz(func(t *testing.T, id, name, desc string, at int64, status int, set bool) {
		u := NamespaceUpdate{ID: id}
		if set {
			u.Name, u.Description = &name, &desc
		}
		checkFastEncode(t, u)
		checkFastEncode(t, AuditRecord{Entries: []AuditEntry{{At: at, TokenID: id, Actor: name, Method: desc, Route: id,
			Namespace: name, Resource: desc, Status: status, Outcome: id, RequestID: name, Suppressed: at}}})
	})
}

// A field added to NamespaceUpdate or AuditEntry later must be written by
// the hand encoder too, or it would be dropped from the log.
func TestFastEncodersKnowEveryField(t *testing.T) {
	var u NamespaceUpdate
	fastjsontest.FillEveryField(t, &u)
	checkFastEncode(t, u)
	var r AuditRecord
	fastjsontest.FillEveryField(t, &r)
	checkFastEncode(t, r)
}
