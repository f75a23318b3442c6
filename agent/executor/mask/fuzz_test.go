package mask

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// FuzzStream: whatever surrounds a secret and however the output is cut
// into pieces, no form of it survives, the output is as long as the
// input, and the characters of an embedding base64 stream that depend
// only on the secret are masked. `go test` runs the seeds.
func FuzzStream(f *testing.F) {
	f.Add([]byte("hunter22"), []byte("x"), []byte("pre "), []byte(" post"), uint8(0), []byte("ab"), []byte{3, 1, 7})
	f.Add([]byte("RPLEAK8-line1\nRPLEAK8-line2-xyz"), []byte("other"), []byte("a"), []byte("b"), uint8(1), []byte("\x01"), []byte{1})
	f.Add([]byte("RPLEAK8-line1\nRPLEAK8-line2-xyz"), []byte(""), []byte(""), []byte("\n"), uint8(2), []byte{}, []byte{0, 0, 0})
	f.Add([]byte("\xff\xfe\xfd\xfcsecret"), []byte("abab"), []byte("ab"), []byte("ab"), uint8(3), []byte("zz"), []byte{5})
	f.Add([]byte("0123456789"), []byte("3456"), []byte("012"), []byte("789"), uint8(6), []byte("pq"), []byte{2, 2})
	f.Add([]byte("s3cr3t-value"), []byte(""), []byte("base64: "), []byte("=="), uint8(7), []byte("\x00\x00"), []byte{1, 1, 1, 1})
	f.Add([]byte("abcd"), []byte("cdXYZW"), []byte("xx"), []byte("QQ"), uint8(0), []byte{}, []byte{5})
	f.Fuzz(func(t *testing.T, secret, other, pre, post []byte, form uint8, around, cuts []byte) {
		if len(secret) > 256 || len(other) > 256 || len(pre)+len(post)+len(around) > 1024 {
			return
		}
		s := New([][]byte{secret, other})
		// What the task prints: pre + one form of the secret + post.
		var x []byte
		stableFrom, stableTo := 0, 0 // the part of x that must be masked
		encodings := []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding}
		switch k := int(form % 8); {
		case k == 0:
			x = secret
			stableTo = len(x)
		case k == 1: // a line of it
			lines := bytes.FieldsFunc(secret, func(r rune) bool { return r == '\n' || r == '\r' })
			if len(lines) == 0 {
				return
			}
			x = bytes.Trim(lines[len(around)%len(lines)], " \t")
			stableTo = len(x)
		case k <= 5:
			x = []byte(encodings[k-2].EncodeToString(secret))
			stableTo = len(x)
		default: // inside a longer base64 stream
			o := len(around) % 3
			stream := append(append(append([]byte(nil), around[:o]...), secret...), around[o:]...)
			enc := encodings[(k-6)*3%4] // std or raw url
			x = []byte(enc.EncodeToString(stream))
			stableFrom, stableTo = (8*o+5)/6, 8*(o+len(secret))/6
		}
		in := append(append(append([]byte(nil), pre...), x...), post...)
		masked := len(x) >= MinLen && len(secret) >= MinLen && stableTo-stableFrom >= MinLen

		st := NewStream(s)
		var out []byte
		rest := in
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = min(n, 1+int(cuts[i%len(cuts)]%16))
			}
			st.Write(rest[:n])
			rest = rest[n:]
			out = append(out, st.Next(false)...)
		}
		out = append(out, st.Next(true)...)
		if len(out) != len(in) {
			t.Fatalf("output is %d bytes, input %d", len(out), len(in))
		}
		for i := range in {
			if out[i] != in[i] && out[i] != '*' {
				t.Fatalf("byte %d changed to %q, not masked", i, out[i])
			}
		}
		if masked {
			for i := len(pre) + stableFrom; i < len(pre)+stableTo; i++ {
				if out[i] != '*' {
					t.Fatalf("byte %d of %q (%q) survived in %q", i, in, in[i], out)
				}
			}
		}
		// No form of either secret survives anywhere (a form made of '*'
		// is indistinguishable from its masking).
		for _, v := range [][]byte{secret, other} {
			if len(v) < MinLen {
				continue
			}
			for _, f := range Forms(v) {
				if len(f) >= MinLen && bytes.IndexByte(f, '*') < 0 && bytes.Contains(out, f) {
					t.Fatalf("form %q of %q survived in %q", f, v, out)
				}
			}
		}
	})
}
