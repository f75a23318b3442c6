// Package fastjson encodes and decodes the few records every replicated
// API write touches (a namespace and its NamespaceUpdate command, its
// event, an audit entry; the namespace PATCH body and answer) without
// encoding/json's reflection, which was most of the state machine's CPU
// per write.
//
// Both directions are exact, never approximate. The encoder writes the
// bytes json.Marshal writes (HTML escaping, U+FFFD for invalid UTF-8, the
// escaped U+2028 and U+2029), because the stored bytes must be the same on
// every replica and across versions. The decoder accepts a subset of JSON
// that includes everything json.Marshal writes for these records (no
// whitespace, exact field names; an escaped string is unquoted by
// encoding/json itself) and decodes it exactly as json.Unmarshal would; it
// reports false on anything else, and its caller then falls back to
// json.Unmarshal. The users' tests fill every field of each record
// (fastjsontest) so a field added later cannot be skipped silently.
package fastjson

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// htmlSafe marks the bytes json.Marshal writes as they are: plainASCII
// but for <, > and &, which it escapes.
var htmlSafe = func() (t [256]bool) {
	t = plainASCII
	t['<'], t['>'], t['&'] = false, false, false
	return t
}()

// plainASCII marks the bytes a string holds as they are: printable ASCII
// other than the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// AppendString appends s as json.Marshal writes a string.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s, &htmlSafe) }

// AppendStringNoHTMLEscape appends s as a json.Encoder with
// SetEscapeHTML(false) writes a string (the API's answers): <, > and &
// as they are, everything else as AppendString.
func AppendStringNoHTMLEscape(dst []byte, s string) []byte {
	return appendString(dst, s, &plainASCII)
}

// appendString writes the bytes marked in safe as they are.
func appendString(dst []byte, s string, safe *[256]bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendKey appends "key": (key as AppendString writes it).
func AppendKey(dst []byte, key string) []byte {
	return append(AppendString(dst, key), ':')
}

// AppendInt appends n as json.Marshal writes an integer.
func AppendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// Decoder reads one canonical JSON value. Any method that returns false
// leaves the decoder failed: the caller gives up and uses json.Unmarshal.
type Decoder struct {
	data []byte
	pos  int
	ok   bool
}

// NewDecoder starts reading data.
func NewDecoder(data []byte) *Decoder { return &Decoder{data: data, ok: true} }

func (d *Decoder) fail() bool { d.ok = false; return false }

// OK reports whether everything so far was canonical.
func (d *Decoder) OK() bool { return d.ok }

// Byte consumes c, failing if the next byte is anything else.
func (d *Decoder) Byte(c byte) bool {
	if !d.ok || d.pos >= len(d.data) || d.data[d.pos] != c {
		return d.fail()
	}
	d.pos++
	return true
}

// Peek is the next byte, 0 at the end.
func (d *Decoder) Peek() byte {
	if d.pos >= len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

// Null consumes the literal null, failing on anything else.
func (d *Decoder) Null() bool {
	if !d.ok || !bytes.HasPrefix(d.data[d.pos:], []byte("null")) {
		return d.fail()
	}
	d.pos += len("null")
	return true
}

// End succeeds when all of the data was read.
func (d *Decoder) End() bool {
	if !d.ok || d.pos != len(d.data) {
		return d.fail()
	}
	return true
}

// Fields reads an object, calling field for each key with the decoder at
// its value; field must read the value, or return false for a key it does
// not know (the decoder then fails). A key with an escape fails too.
func (d *Decoder) Fields(field func(key string) bool) bool {
	if !d.Byte('{') {
		return false
	}
	if d.Peek() == '}' {
		d.pos++
		return true
	}
	for {
		key, ok := d.rawString()
		if !ok || !d.Byte(':') {
			return d.fail()
		}
		if !field(key) || !d.ok {
			return d.fail()
		}
		switch d.Peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return true
		default:
			return d.fail()
		}
	}
}

// rawString reads a string with no escapes, no control characters and
// only valid UTF-8: exactly the bytes json.Unmarshal would give.
func (d *Decoder) rawString() (string, bool) {
	if !d.Byte('"') {
		return "", false
	}
	start := d.pos
	ascii := true
	for d.pos < len(d.data) {
		b := d.data[d.pos]
		if plainASCII[b] {
			d.pos++
			continue
		}
		switch {
		case b == '"':
			s := d.data[start:d.pos]
			d.pos++
			if !ascii && !utf8.Valid(s) {
				return "", d.fail()
			}
			return string(s), true
		case b == '\\' || b < 0x20:
			return "", d.fail()
		case b >= utf8.RuneSelf:
			ascii = false
		}
		d.pos++
	}
	return "", d.fail()
}

// String reads a string value. Escaped strings (and invalid UTF-8) are
// decoded by json.Unmarshal itself, so they read exactly as it reads them.
func (d *Decoder) String() (string, bool) {
	if !d.ok {
		return "", false
	}
	save := d.pos
	if s, ok := d.rawString(); ok {
		return s, true
	}
	d.pos, d.ok = save, true
	// Find the end of the string token, then let encoding/json decode it.
	if !d.Byte('"') {
		return "", false
	}
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case '\\':
			d.pos += 2
			continue
		case '"':
			d.pos++
			var s string
			if err := json.Unmarshal(d.data[save:d.pos], &s); err != nil {
				return "", d.fail()
			}
			return s, true
		}
		d.pos++
	}
	return "", d.fail()
}

// Int reads an integer without fraction, exponent, leading zero or plus
// sign that fits an int64 ("-0" reads as 0, as json.Unmarshal gives).
func (d *Decoder) Int() (int64, bool) {
	if !d.ok {
		return 0, false
	}
	start := d.pos
	if d.Peek() == '-' {
		d.pos++
	}
	digits := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	if d.pos == digits || (d.data[digits] == '0' && d.pos-digits > 1) {
		return 0, d.fail()
	}
	if c := d.Peek(); c == '.' || c == 'e' || c == 'E' {
		return 0, d.fail()
	}
	n, err := strconv.ParseInt(string(d.data[start:d.pos]), 10, 64)
	if err != nil {
		return 0, d.fail()
	}
	return n, true
}
