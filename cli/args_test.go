package cli

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestNormalizeArgs(t *testing.T) {
	app := App(Build{}, io.Discard, io.Discard)
	tests := []struct{ in, want string }{
		{"gofer namespace create team-a --name X -o json", "gofer -o json namespace create --name X team-a"},
		{"gofer -a http://x namespace list", "gofer -a http://x namespace list"},
		{"gofer namespace list --limit=5 --reverse", "gofer namespace list --limit=5 --reverse"},
		{"gofer token create alice -r user -e 24h", "gofer token create -r user -e 24h alice"},
		{"gofer pipeline config get simple 2 --output json", "gofer --output json pipeline config get simple 2"},
		{"gofer server join http://a:1 --token s", "gofer --token s server join http://a:1"},
		{"gofer namespace create -- -weird", "gofer namespace create -- -weird"},
		{"gofer namespace get list", "gofer namespace get list"},
	}
	for _, tt := range tests {
		got := strings.Join(normalizeArgs(app, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("normalizeArgs(%q)\n got  %q\n want %q", tt.in, got, tt.want)
		}
	}
}

func TestDiffLines(t *testing.T) {
	got := strings.Join(diffLines(strings.Split("a b c d", " "), strings.Split("a c d e", " ")), ",")
	if want := " a,-b, c, d,+e"; got != want {
		t.Fatalf("diff %q, want %q", got, want)
	}
}

func TestContextHunks(t *testing.T) {
	lines := diffLines(strings.Split("a b c d e f g h i j", " "), strings.Split("a B c d e f g h i J", " "))
	got := fmt.Sprint(contextHunks(lines, 1))
	if want := "[[0 4] [9 12]]"; got != want {
		t.Fatalf("hunks %s of %q, want %s", got, lines, want)
	}
}
