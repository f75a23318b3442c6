package cli

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"
)

// A list whose cells are long (an event's details) is cut to fit 120
// columns, the widest column first, so short columns stay whole; a table
// that fits is printed as it is.
func TestTableFitsWidth(t *testing.T) {
	long := strings.Repeat("namespace_id=default ", 10)
	rows := [][]string{
		{"1", "completed_task_execution", long, "admin", "3 minutes ago"},
		{"2", "started_task_execution_cancellation", "k=v", "system", "just now"},
	}
	var b bytes.Buffer
	table(&b, eventHeader, rows)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), b.String())
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(strings.TrimRight(l, " ")); n > tableWidth {
			t.Errorf("line of %d columns, want at most %d: %q", n, tableWidth, l)
		}
	}
	for _, whole := range []string{"started_task_execution_cancellation", "3 minutes ago", "admin", "k=v"} {
		if !strings.Contains(b.String(), whole) {
			t.Errorf("%q was cut:\n%s", whole, b.String())
		}
	}
	if !strings.Contains(lines[1], "namespace_id=default namespace_id") || !strings.Contains(lines[1], "…") {
		t.Errorf("details not cut with an ellipsis: %q", lines[1])
	}

	b.Reset()
	short := [][]string{{"1", "created_namespace", "namespace_id=default", "admin", "just now"}}
	table(&b, eventHeader, short)
	if strings.Contains(b.String(), "…") {
		t.Errorf("a table that fits was cut:\n%s", b.String())
	}

	// Two long columns share the cut; neither goes below minCellWidth.
	got := fitTable([]string{"A", "B", "C"}, [][]string{{strings.Repeat("a", 100), strings.Repeat("b", 100), "c"}}, 60)
	if a, b := utf8.RuneCountInString(got[0][0]), utf8.RuneCountInString(got[0][1]); a+b+1+2*columnGap > 60 || a < minCellWidth || b < minCellWidth {
		t.Errorf("widths %d and %d, want both cut to fit 60", a, b)
	}
}

// The reproduce line of a failed `gofer up` pastes into a shell as it is.
func TestReproduceLineQuotes(t *testing.T) {
	for dir, want := range map[string]string{
		"examples/dag": "(cd examples/dag && go run .)",
		"my pipelines": "(cd 'my pipelines' && go run .)",
		"it's/here":    `(cd 'it'\''s/here' && go run .)`,
	} {
		if got := reproduceLine(dir, nil, "go", []string{"run", "."}); got != want {
			t.Errorf("reproduceLine(%q) = %s, want %s", dir, got, want)
		}
	}
	// An environment word stays an assignment: only its value is quoted.
	env := []string{"PYTHONPATH=/a b:/c", "EMPTY=", "PLAIN=x", "not a name=v"}
	want := `(cd dir && PYTHONPATH='/a b:/c' EMPTY= PLAIN=x 'not a name=v' python3 'my pipeline.py' 'A=b c')`
	if got := reproduceLine("dir", env, "python3", []string{"my pipeline.py", "A=b c"}); got != want {
		t.Errorf("reproduceLine with env = %s, want %s", got, want)
	}
	out, err := exec.Command("sh", "-c", strings.TrimSuffix(strings.TrimPrefix(
		reproduceLine(t.TempDir(), []string{"V=a b"}, "sh", []string{"-c", `printf %s "$V"`}), "("), ")")).Output()
	if err != nil || string(out) != "a b" {
		t.Errorf("sh ran the reproduce line: %q %v; want the assignment to reach the command", out, err)
	}
}
