package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// closedAddr is an API address nothing listens on: a command that gets as
// far as its request fails with a connection error, one stopped by the
// question never tries.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// runWithInput runs the CLI with stdin answering the question; terminal
// says whether stdin counts as a terminal.
func runWithInput(t *testing.T, input string, terminal bool, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	old := isTerminal
	isTerminal = func(io.Reader) bool { return terminal }
	defer func() { isTerminal = old }()
	var out, errs bytes.Buffer
	app := App(Build{}, &out, &errs)
	app.Reader = strings.NewReader(input)
	// The client retries an unreachable node for 30s; the deadline ends
	// a request (the count in the question, the delete itself) at once.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := app.RunContext(ctx, normalizeArgs(app, append([]string{"gofer"}, args...)))
	var exit cli.ExitCoder
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
		errs.WriteString(exit.Error())
	default:
		code = 1
		errs.WriteString(err.Error())
	}
	return code, out.String(), errs.String()
}

// Destructive commands ask on a terminal, refuse without one (exit 2,
// naming --yes), stop on anything but yes, and go ahead with --yes.
func TestDestructiveCommandsConfirm(t *testing.T) {
	addr := closedAddr(t)
	backup := filepath.Join(t.TempDir(), "backup.snap")
	if err := os.WriteFile(backup, []byte("not really a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"pipeline", "delete", "dag"},
		{"namespace", "delete", "team-a"},
		{"secret", "pipeline", "delete", "dag", "key"},
		{"secret", "global", "delete", "key"},
		{"pipeline", "object", "delete", "dag", "key"},
		{"run", "object", "delete", "dag", "3", "key"},
		{"extension", "uninstall", "cron"},
		{"server", "snapshot", "restore", backup},
	} {
		name := strings.Join(cmd, " ")
		args := append([]string{"-a", addr}, cmd...)

		code, _, errs := runWithInput(t, "", false, args...)
		if code != 2 || !strings.Contains(errs, "pass --yes") || !strings.Contains(errs, "no terminal to answer on") {
			t.Errorf("%s without a terminal: exit %d, %q; want exit 2 naming --yes", name, code, errs)
		}
		for _, no := range []string{"\n", "n\n", "no\n", "whatever\n", ""} {
			code, _, errs = runWithInput(t, no, true, args...)
			if code != 1 || !strings.Contains(errs, "[y/N]") || !strings.Contains(errs, "not confirmed; nothing changed") {
				t.Errorf("%s answered %q: exit %d, %q; want exit 1, not confirmed", name, no, code, errs)
			}
		}
		// Yes (asked, or --yes) goes ahead: the request fails against the
		// closed address, which shows it was sent.
		for _, yes := range [][]string{{"y\n"}, {"YES\n"}, {"", "--yes"}, {"", "-y"}} {
			a := args
			if len(yes) == 2 {
				a = append(append([]string{}, args...), yes[1])
			}
			code, _, errs = runWithInput(t, yes[0], len(yes) == 1, a...)
			if code == 2 || strings.Contains(errs, "not confirmed") || !strings.Contains(errs, "deadline") && !strings.Contains(errs, "connect") && !strings.Contains(errs, "backup.snap") {
				t.Errorf("%s confirmed by %q: exit %d, %q; want the request attempted", name, yes, code, errs)
			}
		}
	}
}

// A snapshot restore opens its file before it asks: a missing file or a
// directory fails at once, with or without a terminal, and nothing asks.
func TestSnapshotRestoreChecksTheFileFirst(t *testing.T) {
	addr := closedAddr(t)
	missing := filepath.Join(t.TempDir(), "typo.snap")
	for _, terminal := range []bool{false, true} {
		for file, want := range map[string]string{missing: "no such file", t.TempDir(): "is a directory"} {
			code, _, errs := runWithInput(t, "y\n", terminal, "-a", addr, "server", "snapshot", "restore", file)
			if code != 1 || !strings.Contains(errs, want) || strings.Contains(errs, "[y/N]") || strings.Contains(errs, "--yes") {
				t.Errorf("restore of %s (terminal %v): exit %d, %q; want exit 1 saying %q before any question", file, terminal, code, errs, want)
			}
		}
	}
}

// The question counts what a pipeline delete takes with it when it can;
// here the count fails (nothing listens) and the question still names the
// pipeline.
func TestConfirmQuestionNamesTheTarget(t *testing.T) {
	_, _, errs := runWithInput(t, "n\n", true, "-a", closedAddr(t), "pipeline", "delete", "dag")
	if !strings.Contains(errs, `Delete pipeline "dag" with all its versions and runs? [y/N]`) {
		t.Errorf("question %q", errs)
	}
	if got := countWords(1000, 1000, "pipeline"); got != "1000+ pipelines" {
		t.Errorf("countWords full page: %q", got)
	}
	if got := countWords(1, 1000, "pipeline"); got != "1 pipeline" {
		t.Errorf("countWords one: %q", got)
	}
}
