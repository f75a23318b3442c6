package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/internal/fastjson/fastjsontest"
	"github.com/goferhq/gofer/store/model"
)

// checkFastRequest: a body the hand decoder accepts must decode as the
// API's encoding/json decoder (unknown fields refused, nothing after the
// object) decodes it.
func checkFastRequest(t *testing.T, raw []byte) {
	t.Helper()
	var fast updateNamespaceRequest
	if !fast.decodeFast(raw) {
		return
	}
	var want updateNamespaceRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("decodeFast accepted %q, which encoding/json refuses: %v", raw, err)
	}
	if dec.More() {
		t.Fatalf("decodeFast accepted %q, which has data after the object", raw)
	}
	if !reflect.DeepEqual(fast, want) {
		t.Fatalf("decodeFast(%q) = %+v, encoding/json = %+v", raw, fast, want)
	}
}

func TestUpdateNamespaceRequestFastDecode(t *testing.T) {
	name, desc := "n", "d <&> \u2028 \"q\" \xff"
	for _, v := range []updateNamespaceRequest{{}, {Name: &name}, {Description: &desc}, {Name: &name, Description: &desc}} {
		raw, _ := json.Marshal(v)
		var got updateNamespaceRequest
		if !got.decodeFast(raw) {
			t.Errorf("decodeFast refused json.Marshal's %s", raw)
		}
		checkFastRequest(t, raw)
	}
	for _, raw := range []string{`{"Name":"x"}`, `{"name":null}`, `{"name":"a","name":"b"}`, `{"extra":1}`, `{"name":1}`,
		` {"name":"a"}`, `{"name":"a"} `, `{"name":"a"}x`, `{"name":"a"}{}`, `null`, `{}`, ``, `[]`, `{"name":"\u00e9"}`} {
		checkFastRequest(t, []byte(raw))
	}
	// A field added to the request later must be known to the hand decoder.
	var all updateNamespaceRequest
	fastjsontest.FillEveryField(t, &all)
	raw, _ := json.Marshal(all)
	var got updateNamespaceRequest
	if !got.decodeFast(raw) {
		t.Errorf("decodeFast refused %s: a field it does not know?", raw)
	}
}

func FuzzUpdateNamespaceRequestFastDecode(f *testing.F) {
	f.Add([]byte(`{"name":"a","description":"b"}`))
	f.Fuzz(func(t *testing.T, raw []byte) { checkFastRequest(t, raw) })
}

// respondNamespace writes what c.JSON(status, wrap("namespace", ns)) writes.
func TestRespondNamespaceIsCJSON(t *testing.T) {
	var filled model.Namespace
	fastjsontest.FillEveryField(t, &filled)
	e := echo.New()
	e.JSONSerializer = plainJSON{}
	for _, ns := range []model.Namespace{{}, filled, {ID: "a<b>&", Name: "\u2028 \"q\" \xff", Description: strings.Repeat("é", 300), Created: -1, Modified: 1 << 62}} {
		answer := func(respond func(c echo.Context) error) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			if err := respond(e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)); err != nil {
				t.Fatal(err)
			}
			return rec
		}
		got := answer(func(c echo.Context) error { return respondNamespace(c, http.StatusCreated, &ns) })
		want := answer(func(c echo.Context) error { return c.JSON(http.StatusCreated, wrap("namespace", &ns)) })
		if got.Code != want.Code || got.Body.String() != want.Body.String() || !reflect.DeepEqual(got.Header(), want.Header()) {
			t.Fatalf("respondNamespace: %d %v %s\nc.JSON: %d %v %s", got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
		}
	}
}
