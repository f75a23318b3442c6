package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	for i, ns := range []model.Namespace{{}, filled, {ID: "a<b>&", Name: "\u2028 \"q\" \xff", Description: strings.Repeat("é", 300), Created: -1, Modified: 1 << 62}} {
		target := []string{"/", "/?pretty", "/?pretty=false&x=1"}[i]
		answer := func(respond func(c echo.Context) error) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			if err := respond(e.NewContext(httptest.NewRequest(http.MethodGet, target, nil), rec)); err != nil {
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

// slowUpdateNamespaceRequest is updateNamespaceRequest without decodeFast.
type slowUpdateNamespaceRequest updateNamespaceRequest

// brokenBody sends its bytes, then fails with err (a slow client's
// timeout, a cut connection) instead of ending.
type brokenBody struct {
	data []byte
	err  error
}

func (b *brokenBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, b.err
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

func (b *brokenBody) Close() error { return nil }

// decodeOptionalJSON answers a fastRequest body exactly as it answers the
// same body for encoding/json alone, however the body ends.
func TestDecodeOptionalJSONFastIsSlow(t *testing.T) {
	timeout := errors.New("read tcp: i/o timeout")
	for _, tc := range []struct {
		body   string
		length int64 // Content-Length; the body then fails with timeout if shorter
		limit  int64 // a MaxBytesReader's limit, 0 for none
	}{
		{body: `{"name":"a"}`}, {body: `{"name":"a","description":null}`}, {body: ` {"name":"a"} `}, {body: `{"name":"a"}{}`},
		{body: `{"nope":1}`}, {body: `{"name":2}`}, {body: `   `}, {body: `{"name":"a"}`, length: 20}, {body: `{"na`, length: 20},
		{body: `{x`, length: 20}, {body: ``, length: 20}, {body: `{"name":"` + strings.Repeat("a", 100) + `"}`, limit: 50},
		{body: `{"name":"a"}`, limit: 5},
	} {
		answer := func(v any) string {
			length, end := tc.length, timeout
			if length == 0 { // the whole body arrives
				length, end = int64(len(tc.body)), io.EOF
			}
			req := httptest.NewRequest(http.MethodPatch, "/", nil)
			req.Body, req.ContentLength = &brokenBody{data: []byte(tc.body), err: end}, length
			rec := httptest.NewRecorder()
			if tc.limit > 0 {
				req.Body = http.MaxBytesReader(rec, req.Body, tc.limit)
			}
			present, err := decodeOptionalJSON(echo.New().NewContext(req, rec), v)
			return fmt.Sprintf("present %v, err %v, value %s", present, err, mustJSON(v))
		}
		var fast updateNamespaceRequest
		var slow slowUpdateNamespaceRequest
		if got, want := answer(&fast), answer(&slow); got != want {
			t.Errorf("body %q (length %d, limit %d):\nfast path: %s\nencoding/json: %s", tc.body, tc.length, tc.limit, got, want)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
