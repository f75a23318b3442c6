package executor

import "testing"

func TestMaskKeepsLengthsAndHoldsAPossibleSecretStart(t *testing.T) {
	secrets := [][]byte{[]byte("hunter22"), []byte("s3cr3t")}
	for _, tc := range []struct {
		in, want string
		hold     int
	}{
		{"password hunter22 ok", "password ******** ok", 0},
		{"twice s3cr3ts3cr3t", "twice ************", 0},
		{"ends with hun", "ends with hun", 3},         // may become hunter22
		{"ends with s3cr3", "ends with s3cr3", 5},     // may become s3cr3t
		{"ends with hunter2", "ends with hunter2", 7}, // one byte short
		{"nothing here", "nothing here", 0},
		{"h", "h", 1},
	} {
		buf := []byte(tc.in)
		hold := mask(buf, secrets)
		if string(buf) != tc.want || hold != tc.hold {
			t.Errorf("mask(%q) = %q hold %d, want %q hold %d", tc.in, buf, hold, tc.want, tc.hold)
		}
	}
	// A secret split across two reads is masked once the rest arrives.
	buf := []byte("key=hun")
	hold := mask(buf, secrets)
	buf = append(buf[len(buf)-hold:], "ter22!"...)
	mask(buf, secrets)
	if string(buf) != "********!" {
		t.Errorf("split secret: %q, want it masked", buf)
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
		var secrets [][]byte
		for _, s := range tc.secrets {
			secrets = append(secrets, []byte(s))
		}
		buf := []byte(tc.in)
		mask(buf, secrets)
		if string(buf) != tc.want {
			t.Errorf("mask(%q) with %q = %q, want %q", tc.in, tc.secrets, buf, tc.want)
		}
	}
}
