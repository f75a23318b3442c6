package fastjson

import (
	"bytes"
	"encoding/json"
	"testing"
)

var tricky = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\r\b\f", "\x00\x01\x1f\x7f",
	"é ü 日本 🎉", "\u2028\u2029", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate", "ends in \xe6\x97",
}

// encodeNoHTMLEscape is what the API's json.Encoder writes for v, without
// its newline.
func encodeNoHTMLEscape(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// checkAppendString compares both encoders with encoding/json's.
func checkAppendString(t *testing.T, s string) {
	t.Helper()
	want, _ := json.Marshal(s)
	if got := AppendString(nil, s); !bytes.Equal(got, want) {
		t.Fatalf("AppendString(%q) = %s, json.Marshal = %s", s, got, want)
	}
	want = encodeNoHTMLEscape(s)
	if got := AppendStringNoHTMLEscape(nil, s); !bytes.Equal(got, want) {
		t.Fatalf("AppendStringNoHTMLEscape(%q) = %s, json.Encoder without HTML escaping = %s", s, got, want)
	}
}

func TestAppendStringIsJSONMarshal(t *testing.T) {
	for _, s := range tricky {
		checkAppendString(t, s)
	}
	if got := string(AppendStringNoHTMLEscape(nil, "a<b>&c")); got != `"a<b>&c"` {
		t.Fatalf("AppendStringNoHTMLEscape escaped HTML: %s", got)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range tricky {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkAppendString(t, s) })
}

// checkString decodes a string value with the Decoder and json.Unmarshal:
// the Decoder must either refuse or agree.
func checkString(t *testing.T, raw []byte) {
	t.Helper()
	var want string
	wantErr := json.Unmarshal(raw, &want)
	d := NewDecoder(raw)
	got, ok := d.String()
	if ok && d.End() {
		if wantErr != nil || got != want {
			t.Fatalf("Decoder.String(%s) = %q; json.Unmarshal = %q, %v", raw, got, want, wantErr)
		}
	}
}

func TestDecoderStringAgrees(t *testing.T) {
	for _, s := range tricky {
		raw, _ := json.Marshal(s)
		checkString(t, raw)
		var want string
		_ = json.Unmarshal(raw, &want)
		d := NewDecoder(raw)
		if got, ok := d.String(); !ok || got != want {
			t.Errorf("Decoder.String(%s) = %q, %v; want %q", raw, got, ok, want)
		}
	}
	for _, raw := range []string{`"a\"b"`, `"\ud800"`, `"\ud83c\udf89"`, "\"raw \xff\"", "\"ctl \x01\"", `"unterminated`, `"esc at end\`, `"\u00e9"`, `"\/"`} {
		checkString(t, []byte(raw))
	}
}

func FuzzDecoderString(f *testing.F) {
	for _, s := range []string{`"a"`, `"a\"b"`, `"\ud800"`, "\"\xff\"", `"\u2028"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkString(t, raw) })
}

func TestDecoderIntAgrees(t *testing.T) {
	for _, raw := range []string{"0", "-0", "12", "-12", "01", "1.0", "1e3", "-", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "+1", ""} {
		var want int64
		wantErr := json.Unmarshal([]byte(raw), &want)
		d := NewDecoder([]byte(raw))
		got, ok := d.Int()
		if ok && d.End() && (wantErr != nil || got != want) {
			t.Errorf("Decoder.Int(%s) = %d; json.Unmarshal = %d, %v", raw, got, want, wantErr)
		}
		if !ok && wantErr == nil && raw != "-0" && raw != "1.0" && raw != "1e3" {
			t.Errorf("Decoder.Int(%s) refused a canonical integer", raw)
		}
	}
}
