package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A second server started on a data dir another one uses exits at once
// (bbolt's lock on raft.db, waited for one second) with an error that
// names the dir and the way out, prints nothing that looks like success,
// writes nothing into the dir, and leaves the first server serving.
func TestSecondServerOnADataDirInUseExits(t *testing.T) {
	c := NewCluster(t, 1)
	first := c.Nodes[0]
	nodeID, err := os.ReadFile(filepath.Join(first.Dir, "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--bootstrap"},
		// Another node id: the lock is found before the dir's node id is
		// read or written.
		{"--node-id", "intruder", "--join", first.URL},
		// Dev mode prints its banner only once the node holds the dir.
		{"--dev"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		full := append([]string{"service", "start", "--data-dir", first.Dir,
			"--api-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--raft-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, args...)
		if args[0] == "--bootstrap" {
			full = append(full, "--node-id", "node1")
		}
		cmd := exec.CommandContext(ctx, goferBin, full...)
		cmd.Env = append(os.Environ(), first.Env...)
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("gofer %s still ran after 30s on a data dir in use:\n%s", strings.Join(full, " "), out)
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("gofer %s: %v; want a non-zero exit\n%s", strings.Join(full, " "), err, out)
		}
		want := fmt.Sprintf("error: data dir %s is in use by another gofer process (%s is locked); stop it or choose another --data-dir",
			first.Dir, filepath.Join(first.Dir, "raft.db"))
		if !strings.Contains(string(out), want) {
			t.Errorf("output of gofer %s:\n%s\nwant %q", strings.Join(full, " "), out, want)
		}
		if strings.Contains(string(out), "✓") || strings.Contains(strings.ToLower(string(out)), "ready") || strings.Contains(string(out), "DEV MODE") {
			t.Errorf("output of gofer %s claims success:\n%s", strings.Join(full, " "), out)
		}
	}
	if after, err := os.ReadFile(filepath.Join(first.Dir, "node-id")); err != nil || string(after) != string(nodeID) {
		t.Fatalf("node-id is %q (%v) after the refused starts, was %q", after, err, nodeID)
	}
	// The first server still serves, writes included.
	if !first.Running() {
		t.Fatal("the first server stopped")
	}
	if _, err := c.Client().CreateNamespace(context.Background(), "still-here", "Still here", ""); err != nil {
		t.Fatalf("a write to the first server: %v", err)
	}
}
