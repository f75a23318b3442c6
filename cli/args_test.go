package cli

import (
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
