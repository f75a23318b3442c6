package mask

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// FuzzStream: whatever surrounds a secret, however its base64 is wrapped
// into lines (every 64 or 76 characters, "\n" or "\r\n") and however the
// output is cut into pieces, no form of it survives, the output is as
// long as the input, the characters of an embedding base64 stream that
// depend only on the secret are masked, and the stream masks exactly what
// Mask masks in the whole output, also when it resumes at offset at with
// the output before it as context. `go test` runs the seeds.
func FuzzStream(f *testing.F) {
	f.Add([]byte("hunter22"), []byte("x"), []byte("pre "), []byte(" post"), uint8(0), []byte("ab"), []byte{3, 1, 7}, uint8(0), uint16(0))
	f.Add([]byte("RPLEAK8-line1\nRPLEAK8-line2-xyz"), []byte("other"), []byte("a"), []byte("b"), uint8(1), []byte("\x01"), []byte{1}, uint8(4), uint16(3))
	f.Add([]byte("RPLEAK8-line1\nRPLEAK8-line2-xyz"), []byte(""), []byte(""), []byte("\n"), uint8(2), []byte{}, []byte{0, 0, 0}, uint8(5), uint16(17))
	f.Add([]byte("\xff\xfe\xfd\xfcsecret"), []byte("abab"), []byte("ab"), []byte("ab"), uint8(3), []byte("zz"), []byte{5}, uint8(6), uint16(1))
	f.Add([]byte("0123456789"), []byte("3456"), []byte("012"), []byte("789"), uint8(6), []byte("pq"), []byte{2, 2}, uint8(0), uint16(5))
	f.Add([]byte("s3cr3t-value"), []byte(""), []byte("base64: "), []byte("=="), uint8(7), []byte("\x00\x00"), []byte{1, 1, 1, 1}, uint8(7), uint16(40))
	f.Add([]byte("abcd"), []byte("cdXYZW"), []byte("xx"), []byte("QQ"), uint8(0), []byte{}, []byte{5}, uint8(0), uint16(3))
	f.Add([]byte("ghp_A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5"), []byte("x"), []byte("$ base64\n"), []byte("\ndone"), uint8(6), []byte("\n"), []byte{9, 15, 3}, uint8(4), uint16(30))
	f.Add([]byte("ghp_A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5"), []byte("y"), []byte("k: "), []byte("\r\n"), uint8(2), []byte{}, []byte{15}, uint8(7), uint16(90))
	f.Fuzz(func(t *testing.T, secret, other, pre, post []byte, form uint8, around, cuts []byte, wrap uint8, at uint16) {
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
		// pos[i] is where x's i-th byte is once wrapped.
		pos := make([]int, len(x))
		for i := range pos {
			pos[i] = i
		}
		if form%8 >= 2 && wrap&4 != 0 {
			width, eol := 64, []byte("\n")
			if wrap&1 != 0 {
				width = 76
			}
			if wrap&2 != 0 {
				eol = []byte("\r\n")
			}
			var wrapped []byte
			for i, c := range x {
				if i > 0 && i%width == 0 {
					wrapped = append(wrapped, eol...)
				}
				pos[i] = len(wrapped)
				wrapped = append(wrapped, c)
			}
			x = wrapped
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
			for k := stableFrom; k < stableTo; k++ {
				if i := len(pre) + pos[k]; out[i] != '*' {
					t.Fatalf("byte %d of %q (%q) survived in %q", i, in, in[i], out)
				}
			}
		}
		// No form of either secret survives anywhere, nor a base64 form
		// split by line breaks (a form made of '*' is indistinguishable
		// from its masking).
		unwrapped := unwrap(out)
		for _, v := range [][]byte{secret, other} {
			if len(v) < MinLen {
				continue
			}
			plain, encoded := forms(v)
			for _, f := range append(plain, encoded...) {
				if len(f) >= MinLen && bytes.IndexByte(f, '*') < 0 && bytes.Contains(out, f) {
					t.Fatalf("form %q of %q survived in %q", f, v, out)
				}
			}
			for _, f := range encoded {
				if len(f) >= MinLen && bytes.IndexByte(f, '*') < 0 && bytes.Contains(unwrapped, f) {
					t.Fatalf("form %q of %q survived wrapped in %q", f, v, out)
				}
			}
		}
		// Pieces mask exactly what the whole does, also when resumed.
		whole := bytes.Clone(in)
		s.Mask(whole)
		if !bytes.Equal(out, whole) {
			t.Fatalf("streamed %q, whole %q", out, whole)
		}
		from := int(at) % (len(in) + 1)
		st = NewStream(s)
		st.Resume(in[:from])
		var resumed []byte
		for i, rest := 0, in[from:]; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = min(n, 1+int(cuts[(i+1)%len(cuts)]%16))
			}
			st.Write(rest[:n])
			rest = rest[n:]
			resumed = append(resumed, st.Next(false)...)
		}
		resumed = append(resumed, st.Next(true)...)
		if !bytes.Equal(resumed, whole[from:]) {
			t.Fatalf("resumed at %d: %q, want %q", from, resumed, whole[from:])
		}
	})
}

// unwrap is b without runs of at most maxBreak line-break bytes; a longer
// run becomes one NUL, which no base64 form contains.
func unwrap(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && (b[j] == '\r' || b[j] == '\n') {
			j++
		}
		switch {
		case j-i > maxBreak:
			out = append(out, 0)
		case j == i:
			out = append(out, b[i])
			j++
		}
		i = j
	}
	return out
}
