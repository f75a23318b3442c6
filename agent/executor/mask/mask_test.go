package mask

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func set(values ...string) *Set {
	var vs [][]byte
	for _, v := range values {
		vs = append(vs, []byte(v))
	}
	return New(vs)
}

func TestMaskKeepsLengthsAndHoldsAPossibleSecretStart(t *testing.T) {
	s := set("hunter22", "s3cr3t")
	for _, tc := range []struct {
		in, want string
		hold     int
	}{
		{"password hunter22 ok", "password ******** ok", 0},
		{"twice s3cr3ts3cr3t", "twice ************", 0},
		{"ends with hun", "ends with hun", 3},         // may become hunter22
		{"ends with s3cr3", "ends with s3cr3", 5},     // may become s3cr3t
		{"ends with hunter2", "ends with hunter2", 7}, // one byte short
		{"nothing here.", "nothing here.", 0},
		{"h", "h", 1},
	} {
		buf := []byte(tc.in)
		hold := s.Mask(buf)
		if string(buf) != tc.want || hold != tc.hold {
			t.Errorf("Mask(%q) = %q hold %d, want %q hold %d", tc.in, buf, hold, tc.want, tc.hold)
		}
	}
}

func TestMaskCoversOverlappingAndNestedSecrets(t *testing.T) {
	for _, tc := range []struct {
		secrets []string
		in      string
		want    string
	}{
		{[]string{"abcd", "xxabcdyy"}, "<xxabcdyy>", "<********>"},
		{[]string{"xxabcdyy", "abcd"}, "<xxabcdyy>", "<********>"},
		{[]string{"abab"}, "ababab", "******"},
		{[]string{"aXaXb"}, "aXaXaXb", "aX*****"},
	} {
		buf := []byte(tc.in)
		set(tc.secrets...).Mask(buf)
		if string(buf) != tc.want {
			t.Errorf("Mask(%q) with %q = %q, want %q", tc.in, tc.secrets, buf, tc.want)
		}
	}
}

func TestMaskHidesEncodedAndSplitForms(t *testing.T) {
	secret := "RPLEAK8-line1\nRPLEAK8-line2-\xfb\xff?>tail\n"
	s := set(secret, "ab\ncd\n    \nxyz") // short lines and blank ones are not patterns
	blob := base64.StdEncoding.EncodeToString([]byte("some prefix " + secret + " and more"))
	for _, in := range []string{
		secret,
		"line: RPLEAK8-line1 !",
		"  RPLEAK8-line2-\xfb\xff?>tail\r\n",
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.URLEncoding.EncodeToString([]byte(secret)),
		base64.RawStdEncoding.EncodeToString([]byte(secret)),
		base64.RawURLEncoding.EncodeToString([]byte(secret)),
		blob,
	} {
		buf := []byte(in)
		s.Mask(buf)
		if bytes.Contains(buf, []byte("RPLEAK8")) || strings.Count(string(buf), "*") < 13 {
			t.Errorf("Mask(%q) = %q: a form of the secret survived", in, buf)
		}
	}
	// A short line must not mask every occurrence of it.
	buf := []byte("ab cd xyz    end")
	s.Mask(buf)
	if string(buf) != "ab cd xyz    end" {
		t.Errorf("short lines were masked: %q", buf)
	}
}

func TestStreamMasksAcrossPiecesAndKeepsOriginalTail(t *testing.T) {
	// "abcd" completes first and "cdXYZW" needs the original "cd" that
	// the first match covers: masking the held tail in place would leak
	// "XYZW".
	s := set("abcd", "cdXYZW")
	st := NewStream(s)
	var out []byte
	for _, p := range []string{"xxab", "cd", "XY", "ZW!"} {
		st.Write([]byte(p))
		out = append(out, st.Next(false)...)
	}
	out = append(out, st.Next(true)...)
	if string(out) != "xx********!" {
		t.Errorf("got %q", out)
	}
	// The same, when the longer pattern never completes: the held "cd"
	// is still part of "abcd".
	st = NewStream(s)
	out = nil
	for _, p := range []string{"xxab", "cd", "QQ"} {
		st.Write([]byte(p))
		out = append(out, st.Next(false)...)
	}
	if out = append(out, st.Next(true)...); string(out) != "xx****QQ" {
		t.Errorf("got %q, want xx****QQ", out)
	}
	// Resume: the occurrence began before the stream's start.
	st = NewStream(s)
	st.Resume([]byte("xxab"))
	st.Write([]byte("cdQQ"))
	if got := string(st.Next(true)); got != "**QQ" {
		t.Errorf("resumed: got %q, want **QQ", got)
	}
}

// wrapLines breaks s into lines of width characters ending in eol, the
// way GNU base64 (76) and openssl base64 (64) print: every line, the last
// one too, ends in eol.
func wrapLines(s string, width int, eol string) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width] + eol)
		s = s[width:]
	}
	b.WriteString(s + eol)
	return b.String()
}

// `echo "$S" | base64` of a 64-character token: GNU base64 wraps at 76
// columns, so no form of the token is on one line; openssl wraps at 64,
// and Windows tools end lines in "\r\n".
func TestMaskHidesWrappedBase64(t *testing.T) {
	token := "ghp_" + strings.Repeat("A1b2C3d4E5", 6) // 64 characters
	s := set(token)
	enc := base64.StdEncoding.EncodeToString([]byte(token + "\n"))
	core := 8 * len(token) / 6 // the characters that depend only on the token
	for _, tc := range []struct {
		width int
		eol   string
	}{{76, "\n"}, {64, "\n"}, {76, "\r\n"}, {64, "\r\n"}} {
		in := "$ echo \"$S\" | base64\n" + wrapLines(enc, tc.width, tc.eol) + "done\n"
		whole := []byte(in)
		s.Mask(whole)
		st := NewStream(s)
		var streamed []byte
		for rest := []byte(in); len(rest) > 0; {
			n := min(len(rest), 7)
			st.Write(rest[:n])
			rest = rest[n:]
			streamed = append(streamed, st.Next(false)...)
		}
		streamed = append(streamed, st.Next(true)...)
		for _, out := range [][]byte{whole, streamed} {
			if len(out) != len(in) || !bytes.HasPrefix(out, []byte("$ echo \"$S\" | base64\n")) || !bytes.HasSuffix(out, []byte("\ndone\n")) {
				t.Fatalf("width %d %q: %q", tc.width, tc.eol, out)
			}
			view := strings.NewReplacer("\r", "", "\n", "").Replace(string(out[len("$ echo \"$S\" | base64\n"):]))
			if masked := strings.Repeat("*", core); !strings.HasPrefix(view, masked) {
				t.Errorf("width %d %q: the token's base64 survived: %q", tc.width, tc.eol, out)
			}
		}
		if !bytes.Equal(whole, streamed) {
			t.Errorf("width %d %q: streamed %q, whole %q", tc.width, tc.eol, streamed, whole)
		}
	}
}

// A prefix of a base64 form followed by endless blank lines is not held
// forever: more than two line-break bytes end any base64 match.
func TestStreamHoldIsBoundedByLineBreaks(t *testing.T) {
	token := "ghp_" + strings.Repeat("A1b2C3d4E5", 6)
	s := set(token)
	st := NewStream(s)
	st.Write([]byte(base64.StdEncoding.EncodeToString([]byte(token))[:20]))
	for i := 0; i < 100; i++ {
		st.Write([]byte("\n"))
		st.Next(false)
	}
	if st.Pending() >= s.MaxLen() {
		t.Fatalf("holding %d bytes, MaxLen %d", st.Pending(), s.MaxLen())
	}
	if st.Pending() != 0 {
		t.Fatalf("holding %d bytes after 100 line breaks", st.Pending())
	}
}
