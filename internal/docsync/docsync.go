// Package docsync keeps generated sections of the Markdown docs in step
// with the code they describe. A generated section sits between
//
//	<!-- BEGIN GENERATED: <name> -->
//	<!-- END GENERATED -->
//
// and everything outside the markers is hand-written prose that
// regeneration never touches. Tests call Check: it fails with the exact
// command that regenerates the section when the file differs from what
// the code produces, and rewrites the section instead when that command's
// -update flag is set.
package docsync

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// EndMarker closes every generated section.
const EndMarker = "<!-- END GENERATED -->"

// BeginMarker opens the generated section called name.
func BeginMarker(name string) string { return "<!-- BEGIN GENERATED: " + name + " -->" }

// ErrNoSection is returned when a file lacks a section's markers.
var ErrNoSection = errors.New("generated section markers not found")

// Replace returns doc with the body of section name replaced by body.
func Replace(doc, name, body string) (string, error) {
	begin := BeginMarker(name)
	i := strings.Index(doc, begin)
	if i < 0 {
		return "", fmt.Errorf("%w: %q", ErrNoSection, begin)
	}
	start := i + len(begin)
	j := strings.Index(doc[start:], EndMarker)
	if j < 0 {
		return "", fmt.Errorf("%w: %q after %q", ErrNoSection, EndMarker, begin)
	}
	return doc[:start] + "\n" + strings.TrimSpace(body) + "\n" + doc[start+j:], nil
}

// Check compares section name of the file at path with generated. With
// update set it rewrites the section; otherwise a difference fails t with
// the command that regenerates it (regenerate) and the first differing
// line.
func Check(t testing.TB, path, name, generated string, update bool, regenerate string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Replace(string(raw), name, generated)
	if err != nil {
		t.Fatalf("%s: %v; add the markers around the generated part, then run: %s", path, err, regenerate)
	}
	if want == string(raw) {
		return
	}
	if update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the %q section of %s", name, path)
		return
	}
	t.Fatalf("%s: the %q section differs from what the code produces (%s).\nRegenerate it with:\n\n\t%s\n",
		path, name, firstDifference(string(raw), want), regenerate)
}

// firstDifference names the first line where have and want differ.
func firstDifference(have, want string) string {
	h, w := strings.Split(have, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(h) || i < len(w); i++ {
		var a, b string
		if i < len(h) {
			a = h[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d is %q, want %q", i+1, a, b)
		}
	}
	return "no line differs"
}
