package local

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// `gofer run local` masks with the executor's masker: encoded forms and
// the lines of a multi-line secret too, also when split across chunks.
func TestLogPrinterMasksEncodedAndSplitSecrets(t *testing.T) {
	secret := "RPLEAK8-line1\nRPLEAK8-line2-zz"
	var out bytes.Buffer
	p := newLogPrinter(&out, []string{secret, "ab"})
	p.width = 4
	b64 := base64.RawURLEncoding.EncodeToString([]byte(secret))
	output := "std " + base64.StdEncoding.EncodeToString([]byte(secret)) + "\nurl " + b64 + "\nline RPLEAK8-line2-zz\nab ok\n" + "split RPLEAK8-line1\n"
	for i := 0; i < len(output); i += 3 { // three bytes a chunk
		p.feed("task", [][]byte{[]byte(output[i:min(i+3, len(output))])}, false)
	}
	p.feed("task", nil, true)
	got := out.String()
	if strings.Contains(got, "RPLEAK8") || strings.Contains(got, b64[:8]) || strings.Contains(got, base64.StdEncoding.EncodeToString([]byte(secret))[:8]) {
		t.Fatalf("a form of the secret was printed:\n%s", got)
	}
	if !strings.Contains(got, "task | ab ok\n") || strings.Count(got, "\n") != 5 {
		t.Fatalf("unexpected output:\n%s", got)
	}
}
