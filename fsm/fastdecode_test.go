package fsm

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/goferhq/gofer/internal/fastjson/fastjsontest"
)

// checkFastDecode: a body the hand decoder accepts must decode to what
// json.Unmarshal gives (old logs replay through it); one it refuses goes
// to json.Unmarshal.
func checkFastDecode[T any, P interface {
	*T
	fastDecoder
}](t *testing.T, raw []byte) {
	t.Helper()
	var fast T
	if !P(&fast).decodeFast(raw) {
		return
	}
	var want T
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("decodeFast accepted %s, which json.Unmarshal refuses: %v", raw, err)
	}
	if !reflect.DeepEqual(fast, want) {
		t.Fatalf("decodeFast(%s) = %+v, json.Unmarshal = %+v", raw, fast, want)
	}
}

func TestFastDecodeIsJSONUnmarshal(t *testing.T) {
	desc, name := "d <&> \u2028 \"q\" \xff", "n"
	canonical := []any{
		NamespaceUpdate{ID: "a", Description: &desc},
		NamespaceUpdate{ID: "a", Name: &name},
		NamespaceUpdate{ID: "a", Name: &name, Description: &desc},
		AuditRecord{Entries: []AuditEntry{{At: 1, TokenID: "t", Actor: "root", Method: "PATCH", Route: "/api/namespaces/:ns",
			Namespace: "n\"", Resource: "pipeline=p run=3", Status: 200, Outcome: "ok", RequestID: "r"}, {Method: "*", Route: "*", Outcome: "suppressed", Suppressed: 7}}},
		AuditRecord{Entries: []AuditEntry{}},
	}
	for _, v := range canonical {
		raw, _ := json.Marshal(v)
		switch v.(type) {
		case NamespaceUpdate:
			var got NamespaceUpdate
			if !got.decodeFast(raw) {
				t.Errorf("decodeFast refused json.Marshal's %s", raw)
			}
			checkFastDecode[NamespaceUpdate](t, raw)
		case AuditRecord:
			var got AuditRecord
			if !got.decodeFast(raw) {
				t.Errorf("decodeFast refused json.Marshal's %s", raw)
			}
			checkFastDecode[AuditRecord](t, raw)
		}
	}
	for _, raw := range []string{
		`{"id":"a","Description":"x"}`, `{"id":"a","description":null}`, `{"id":"a","id":"b"}`, `{"id":"a","name":"x","name":"y"}`,
		`{"id":"a","extra":1}`, ` {"id":"a"}`, `{"id":"a"}x`, `null`, `{}`,
		`{"entries":[{"outcome":"ok","status":200}],"entries":[{"method":"GET"}]}`, `{"entries":null}`, `{"entries":[]}`,
		`{"entries":[{"status":1.5}]}`, `{"entries":[{"status":99999999999999999999}]}`, `{"entries":[{"Outcome":"ok"}]}`,
		`{"entries":[{"outcome":"ok"},]}`, `{"entries":[{"outcome":"o\u006b"}]}`,
	} {
		checkFastDecode[NamespaceUpdate](t, []byte(raw))
		checkFastDecode[AuditRecord](t, []byte(raw))
	}
}

func FuzzFastDecode(f *testing.F) {
	f.Add([]byte(`{"id":"a","description":"d"}`))
	f.Add([]byte(`{"entries":[{"at":1,"method":"PATCH","route":"/r","status":200,"outcome":"ok"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkFastDecode[NamespaceUpdate](t, raw)
		checkFastDecode[AuditRecord](t, raw)
	})
}

// A field added to NamespaceUpdate or AuditEntry later must be known to the
// hand decoder; otherwise every body would quietly fall back to
// json.Unmarshal and the speed-up would be gone without a test noticing.
func TestFastDecodersKnowEveryField(t *testing.T) {
	var u NamespaceUpdate
	fastjsontest.FillEveryField(t, &u)
	raw, _ := json.Marshal(&u)
	var gotU NamespaceUpdate
	if !gotU.decodeFast(raw) {
		t.Errorf("NamespaceUpdate.decodeFast refused %s: a field it does not know?", raw)
	}
	checkFastDecode[NamespaceUpdate](t, raw)

	var r AuditRecord
	fastjsontest.FillEveryField(t, &r)
	raw, _ = json.Marshal(&r)
	var gotR AuditRecord
	if !gotR.decodeFast(raw) {
		t.Errorf("AuditRecord.decodeFast refused %s: a field it does not know?", raw)
	}
	checkFastDecode[AuditRecord](t, raw)
}
