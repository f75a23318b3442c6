package openapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

type inner struct {
	A string `json:"a"`
	B int    `json:"b"`
	C bool
}

type other struct {
	B string `json:"b"`
	D int    `json:"d"`
}

type tagged struct {
	D string `json:"d"`
}

type outer struct {
	*inner
	other
	tagged `json:"t"`
	A      string            `json:"a"` // shadows inner.a
	E      int64             `json:"e,string"`
	F      []byte            `json:"f,omitempty"`
	G      map[string]*inner `json:"g"`
	H      time.Time         `json:"h"`
	Skip   string            `json:"-"`
	hidden string
	Self   *outer `json:"self,omitempty"`
}

// TestJSONFieldsMatchEncodingJSON: the fields JSONFields lists are the
// keys encoding/json writes.
func TestJSONFieldsMatchEncodingJSON(t *testing.T) {
	v := outer{inner: &inner{}, F: []byte("x"), Self: &outer{}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var want []string
	for k := range m {
		want = append(want, k)
	}
	sort.Strings(want)
	var got []string
	for _, f := range JSONFields(reflect.TypeOf(v)) {
		got = append(got, f.Name)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("JSONFields %v, encoding/json writes %v", got, want)
	}
}

func build(t *testing.T, ops ...Operation) *Document {
	t.Helper()
	doc, err := Build(Spec{Info: Info{Title: "t", Version: "v"}, Bearer: "b", Error: struct {
		Code string `json:"code"`
	}{}}, ops)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestBuildSchemas(t *testing.T) {
	doc := build(t, Operation{Method: "GET", Path: "/x/:run/:name", ID: "x", IntParams: []string{"run"},
		Answers: []Answer{{Status: 200, ContentType: JSON, Type: outer{}}}})
	o := doc.Components.Schemas["Outer"]
	if o == nil {
		t.Fatalf("no Outer component: %v", doc.Components.Schemas)
	}
	checks := map[string]Schema{
		"a": {Type: "string"}, "e": {Type: "string", Description: "a number as a string"},
		"f": {Type: "string", Format: "byte"}, "h": {Type: "string", Format: "date-time"},
		"self": {Ref: "#/components/schemas/Outer"}, "C": {Type: "boolean"},
	}
	for name, want := range checks {
		if got := o.Properties[name]; got == nil || !reflect.DeepEqual(*got, want) {
			t.Errorf("property %s: %+v, want %+v", name, got, want)
		}
	}
	if g := o.Properties["g"]; g == nil || g.AdditionalProperties == nil || g.AdditionalProperties.Ref != "#/components/schemas/Inner" {
		t.Errorf("g: %+v", g)
	}
	if strings.Join(o.Required, ",") != "a,C,d,t,e,g,h" {
		t.Errorf("required %v", o.Required)
	}
	op := doc.Paths["/x/{run}/{name}"]["get"]
	if op == nil || len(op.Parameters) != 2 || op.Parameters[0].Schema.Type != "integer" || op.Parameters[1].Schema.Type != "string" {
		t.Fatalf("parameters: %+v", op)
	}
	if op.Responses["default"].Ref != "#/components/responses/Error" || op.Security == nil || len(*op.Security) != 1 {
		t.Errorf("default answer or security: %+v", op)
	}
}

type marshals struct{}

func (marshals) MarshalJSON() ([]byte, error) { return []byte("1"), nil }

func TestBuildRefuses(t *testing.T) {
	ok := []Answer{{Status: 204}}
	for name, ops := range map[string][]Operation{
		"id twice":              {{Method: "GET", Path: "/a", ID: "x", Answers: ok}, {Method: "GET", Path: "/b", ID: "x", Answers: ok}},
		"route twice":           {{Method: "GET", Path: "/a", ID: "x", Answers: ok}, {Method: "GET", Path: "/a", ID: "y", Answers: ok}},
		"no answers":            {{Method: "GET", Path: "/a", ID: "x"}},
		"int param not in path": {{Method: "GET", Path: "/a", ID: "x", IntParams: []string{"run"}, Answers: ok}},
		"own MarshalJSON":       {{Method: "GET", Path: "/a", ID: "x", Answers: []Answer{{Status: 200, ContentType: JSON, Type: marshals{}}}}},
		"stream without events": {{Method: "GET", Path: "/a", ID: "x", Answers: []Answer{{Status: 200, ContentType: EventStream}}}},
	} {
		if _, err := Build(Spec{}, ops); err == nil {
			t.Errorf("%s: built", name)
		}
	}
	// An Override describes a type with its own MarshalJSON.
	_, err := Build(Spec{Override: func(t reflect.Type) (*Schema, bool) {
		return &Schema{Type: "integer"}, t == reflect.TypeOf(marshals{})
	}}, []Operation{{Method: "GET", Path: "/a", ID: "x", Answers: []Answer{{Status: 200, ContentType: JSON, Type: marshals{}}}}})
	if err != nil {
		t.Error(err)
	}
}

func TestBuildDeterministic(t *testing.T) {
	ops := []Operation{
		{Method: "GET", Path: "/a", ID: "a", Answers: []Answer{{Status: 200, ContentType: JSON, Type: outer{}}}},
		{Method: "POST", Path: "/a", ID: "b", Body: &Body{ContentType: JSON, Type: other{}}, Answers: []Answer{{Status: 200, ContentType: EventStream,
			Events: []Event{{Name: "e", ID: "n", Data: inner{}}}}}, Extensions: map[string]any{"x-y": true}},
	}
	var first []byte
	for range 5 {
		b, err := build(t, ops...).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Fatal("two builds differ")
		}
	}
	if !bytes.Contains(first, []byte(`"x-y": true`)) || !bytes.Contains(first, []byte(`"x-events"`)) {
		t.Errorf("extensions missing:\n%s", first)
	}
}

func TestHTMLSelfContained(t *testing.T) {
	doc := build(t, Operation{Method: "GET", Path: "/a/:id", ID: "getA", Tag: "t", Summary: "<b>reads</b> an a",
		Answers: []Answer{{Status: 200, ContentType: JSON, Type: outer{}}}})
	page, err := doc.HTML("/spec.json")
	if err != nil {
		t.Fatal(err)
	}
	p := string(page)
	for _, want := range []string{`id="getA"`, "/a/{id}", `id="schema-Outer"`, "&lt;b&gt;reads", `href="#schema-Inner"`} {
		if !strings.Contains(p, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=", "<link", "<b>reads"} {
		if strings.Contains(p, bad) {
			t.Errorf("page has %q", bad)
		}
	}
}
