package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/goferhq/gofer/internal/fastjson/fastjsontest"
	"github.com/goferhq/gofer/store/model"
)

var awkward = []string{"", "plain", `q"b\s`, "<&>", "\x00\n\t", "日本 🎉", "\u2028", "bad \xff"}

// The hand encoders must write json.Marshal's bytes exactly: replicas and
// old logs compare the stored records byte for byte.
func TestMarshalNamespaceIsJSONMarshal(t *testing.T) {
	for _, s := range awkward {
		ns := &model.Namespace{ID: "n" + s, Name: s, Description: s + s, Created: -5, Modified: 1 << 62}
		want, _ := json.Marshal(ns)
		if got := marshalNamespace(ns); !bytes.Equal(got, want) {
			t.Errorf("marshalNamespace = %s\njson.Marshal      = %s", got, want)
		}
	}
}

func TestMarshalEventIsJSONMarshal(t *testing.T) {
	type named string
	details := []model.EventDetails{
		nil, {},
		{"namespace_id": "a"},
		{"z": "1", "a": 2, "m": int64(-3), "b": uint64(1 << 63), "t": true, "f": false, "<&>": "x\u2028"},
		{"run_id": int64(3), "float": 1.5},           // not by hand: json.Marshal
		{"state": named("x"), "n": json.Number("7")}, // not by hand either
		{"nil": nil},
		{"k01": 1, "k02": 2, "k03": 3, "k04": 4, "k05": 5, "k06": 6, "k07": 7, "k08": 8, "k09": 9, "k10": 10,
			"k11": 11, "k12": 12, "k13": 13, "k14": 14, "k15": 15, "k16": 16, "k17": 17, "K": "upper", "": "empty"},
	}
	for _, s := range awkward {
		for _, d := range details {
			for _, scope := range [][2]string{{"", ""}, {"ns" + s, ""}, {"ns", "p" + s}} {
				e := &model.Event{ID: 42, Kind: "kind" + s, Details: d, Emitted: 1700000000123, Actor: s, NamespaceID: scope[0], PipelineID: scope[1]}
				want, wantErr := json.Marshal(e)
				got, err := marshalEvent(e)
				if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
					t.Errorf("marshalEvent = %s, %v\njson.Marshal = %s, %v", got, err, want, wantErr)
				}
			}
		}
	}
}

// checkNamespaceDecode: unmarshalNamespace must give what json.Unmarshal
// gives, error or not.
func checkNamespaceDecode(t *testing.T, raw []byte) {
	t.Helper()
	var want, got model.Namespace
	wantErr := json.Unmarshal(raw, &want)
	err := unmarshalNamespace(raw, &got)
	if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("unmarshalNamespace(%s) = %+v, %v; json.Unmarshal = %+v, %v", raw, got, err, want, wantErr)
	}
}

func TestUnmarshalNamespaceIsJSONUnmarshal(t *testing.T) {
	for _, s := range awkward {
		raw, _ := json.Marshal(&model.Namespace{ID: "n", Name: s, Description: s, Created: 1, Modified: -2})
		checkNamespaceDecode(t, raw)
	}
	for _, raw := range []string{
		`{"id":"a","name":"b","description":"c","created":1,"modified":2}`,
		`{"id":"a"}`, `{}`, `null`, `{"ID":"upper"}`, `{"id":"a","id":"b"}`, `{"id":"a","extra":1}`,
		`{ "id": "spaced" }`, `{"id":"a","created":1.5}`, `{"id":"a","created":"1"}`, `{"id":"a"} `, `{"id":"a"}x`,
		`{"id":"\u00e9\"","name":"\ud800"}`, "{\"id\":\"\xff\"}", `{"created":99999999999999999999}`, `{"id":null}`, `[]`, ``,
	} {
		checkNamespaceDecode(t, []byte(raw))
	}
}

func FuzzUnmarshalNamespace(f *testing.F) {
	f.Add([]byte(`{"id":"a","name":"b","description":"c","created":1,"modified":2}`))
	f.Add([]byte(`{"id":"a\"","Name":"b"}`))
	f.Fuzz(func(t *testing.T, raw []byte) { checkNamespaceDecode(t, raw) })
}

func FuzzMarshalEvent(f *testing.F) {
	f.Add("k", "v", int64(1), "actor", "ns")
	f.Add("<", "\xff\u2028", int64(-1), "", "")
	f.Fuzz(func(t *testing.T, k, v string, n int64, actor, ns string) {
		e := &model.Event{ID: uint64(n), Kind: v, Details: model.EventDetails{k: v, k + "n": n, "b" + k: n > 0}, Emitted: n, Actor: actor, NamespaceID: ns}
		want, _ := json.Marshal(e)
		if got, _ := marshalEvent(e); !bytes.Equal(got, want) {
			t.Fatalf("marshalEvent = %s\njson.Marshal = %s", got, want)
		}
	})
}

// A field added to Namespace or Event later must reach the hand encoder:
// with every field set, its bytes are still json.Marshal's.
func TestHandEncodersCoverEveryField(t *testing.T) {
	var ns model.Namespace
	fastjsontest.FillEveryField(t, &ns)
	want, _ := json.Marshal(&ns)
	if got := marshalNamespace(&ns); !bytes.Equal(got, want) {
		t.Errorf("marshalNamespace misses a field:\n got  %s\n want %s", got, want)
	}
	var e model.Event
	fastjsontest.FillEveryField(t, &e)
	want, _ = json.Marshal(&e)
	got, err := marshalEvent(&e)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("marshalEvent misses a field (err %v):\n got  %s\n want %s", err, got, want)
	}
	var back model.Namespace
	if err := unmarshalNamespace(want[:0:0], &back); err == nil {
		t.Error("unmarshalNamespace accepted an empty record")
	}
	raw, _ := json.Marshal(&ns)
	if err := unmarshalNamespace(raw, &back); err != nil || back != ns {
		t.Errorf("unmarshalNamespace(%s) = %+v, %v; want %+v", raw, back, err, ns)
	}
}
