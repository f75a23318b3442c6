package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

const envWAL = "GOFER_WEB_RAFT__LOG_STORE=wal"

// TestMixedLogStoresCluster: raft does not care which store a member keeps
// its log in, so a cluster with node2 on raft-wal and the others on
// raft-boltdb takes writes and runs; every node reports its own store in
// health and in `gofer server members`; and the wal node, SIGKILLed while
// the others go on writing, restarts and catches up.
func TestMixedLogStoresCluster(t *testing.T) {
	ensureImages(t)
	const walNode = "node2"
	c := NewClusterEach(t, 3, func(name string) []string {
		if name == walNode {
			return []string{envWAL}
		}
		return nil
	},
		"GOFER_WEB_API__TASK_EXECUTION_STOP_TIMEOUT="+runsStopGrace.String(),
		"GOFER_WEB_SCHEDULER__DOCKER__NETWORK=none")
	h, err := c.Leader().Health()
	if err != nil || h.ClusterID == "" {
		t.Fatalf("leader health: %+v %v", h, err)
	}
	rc := &runsCluster{Cluster: c, ID: h.ClusterID, cl: c.Client().Consistent()}
	wantStore := func(name string) string {
		if name == walNode {
			return "wal"
		}
		return "boltdb"
	}
	var wal *Node
	for _, n := range c.Nodes {
		if n.Name == walNode {
			wal = n
		}
		logStoreCheckFiles(t, n, wantStore(n.Name))
		h, err := n.Health()
		if err != nil || h.LogStore != wantStore(n.Name) {
			t.Fatalf("%s health: log_store %q (%v), want %q", n.Name, h.LogStore, err, wantStore(n.Name))
		}
	}
	logStoreCheckMembers(t, c, wantStore)

	membershipCheckWrites(t, c, "mixed")
	// raft-wal's counters are served beside raft's, on the wal node only.
	for _, n := range c.Nodes {
		code, body, err := scrapeMetrics(n, c.Token)
		if err != nil || code != 200 {
			t.Fatalf("%s /metrics: %d %v", n.Name, code, err)
		}
		has := len(missingSeries(body, []string{"gofer_raft_wal_log_appends "})) == 0
		if has != (n.Name == walNode) {
			t.Fatalf("%s (%s) serves gofer_raft_wal_log_appends: %v", n.Name, wantStore(n.Name), has)
		}
	}
	p := "mixed-stores"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "mixed stores", Tasks: []*sdk.TaskConfig{runsSh("hello", "echo hello")}})
	logStoreRunSucceeds(t, rc, p)

	// SIGKILL the wal node; the others (a quorum) keep writing.
	wal.Kill()
	ctx := context.Background()
	cl := c.Client()
	want := map[string]bool{}
	for i := range 200 {
		id := fmt.Sprintf("while-down-%d", i)
		if _, err := cl.CreateNamespace(ctx, id, "written while "+walNode+" was down", ""); err != nil {
			t.Fatalf("write %s with %s down: %v", id, walNode, err)
		}
		want[id] = true
	}
	index := cl.LastIndex()
	logStoreRunSucceeds(t, rc, p)

	wal.Start()
	if err := restartHasAll(restartNodeNamespaces(t, wal, c.Token, index), want); err != nil {
		t.Fatalf("%s after its restart at index %d: %v", walNode, index, err)
	}
	c.WaitForMembers(3)
	logStoreCheckMembers(t, c, wantStore)
	membershipCheckWrites(t, c, "after-restart")
	logStoreRunSucceeds(t, rc, p)
}

// TestLogStoreSwitchRefused: a node whose data dir holds a log in one store
// and is restarted configured with the other exits non-zero with an error
// that names both stores and the way to switch, and changes nothing in the
// data dir: restarted with its own store, it serves its data.
func TestLogStoreSwitchRefused(t *testing.T) {
	for _, tc := range []struct{ store, other string }{{"boltdb", "wal"}, {"wal", "boltdb"}} {
		t.Run(tc.store+" to "+tc.other, func(t *testing.T) {
			var env []string
			if tc.store == "wal" {
				env = []string{envWAL}
			}
			c := NewCluster(t, 1, env...)
			n := c.Nodes[0]
			if _, err := c.Client().CreateNamespace(context.Background(), "kept", "Kept", ""); err != nil {
				t.Fatal(err)
			}
			n.Stop()
			before := logStoreDirDigest(t, n.Dir)

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			args := []string{"service", "start", "--node-id", n.Name, "--data-dir", n.Dir,
				"--api-addr", n.APIAddr, "--raft-addr", n.RaftAddr, "--bootstrap"}
			cmd := exec.CommandContext(ctx, goferBin, args...)
			cmd.Env = append(append(os.Environ(), n.Env...), "GOFER_WEB_RAFT__LOG_STORE="+tc.other)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("gofer with raft.log_store=%s on a %s data dir still ran after 60s:\n%s", tc.other, tc.store, out)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("gofer with raft.log_store=%s on a %s data dir: %v; want a non-zero exit\n%s", tc.other, tc.store, err, out)
			}
			for _, want := range []string{
				fmt.Sprintf("data dir %s holds a raft log in the %q log store, but raft.log_store is %q", n.Dir, tc.store, tc.other),
				"gofer server remove", "raft.db", "wal/", "snapshots/", "state.db", "--join",
			} {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if after := logStoreDirDigest(t, n.Dir); after != before {
				t.Fatalf("the refused start changed the data dir:\nbefore:\n%s\nafter:\n%s", before, after)
			}

			n.Start()
			c.WaitForMembers(1)
			if _, err := c.Client().GetNamespace(context.Background(), "kept"); err != nil {
				t.Fatalf("after the refusal, restarted with %s: %v", tc.store, err)
			}
		})
	}
}

// logStoreCheckFiles: the data dir records the store and holds only its
// files.
func logStoreCheckFiles(t *testing.T, n *Node, store string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(n.Dir, "log-store"))
	if err != nil || strings.TrimSpace(string(raw)) != store {
		t.Fatalf("%s: log-store record %q (%v), want %q", n.Name, raw, err, store)
	}
	present := func(name string) bool { _, err := os.Stat(filepath.Join(n.Dir, name)); return err == nil }
	if store == "wal" && (present("raft.db") || !present("wal/wal-meta.db")) {
		t.Fatalf("%s on wal: raft.db present %v, wal/wal-meta.db present %v", n.Name, present("raft.db"), present("wal/wal-meta.db"))
	}
	if store == "boltdb" && (!present("raft.db") || present("wal")) {
		t.Fatalf("%s on boltdb: raft.db present %v, wal/ present %v", n.Name, present("raft.db"), present("wal"))
	}
}

// logStoreCheckMembers: the members list, through every node, gives each
// member's own store, in JSON and in the table.
func logStoreCheckMembers(t *testing.T, c *Cluster, want func(string) string) {
	t.Helper()
	for _, via := range c.Nodes {
		WaitFor(t, 30*time.Second, func() error {
			out, err := runCLI(t, nil, "-a", via.URL, "--token", c.Token, "server", "members", "-o", "json")
			if err != nil {
				return fmt.Errorf("server members via %s: %v: %s", via.Name, err, out)
			}
			var got struct {
				Members []model.Member `json:"members"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				return fmt.Errorf("server members -o json via %s: %v: %s", via.Name, err, out)
			}
			if len(got.Members) != len(c.Nodes) {
				return fmt.Errorf("via %s: %d members", via.Name, len(got.Members))
			}
			for _, m := range got.Members {
				if m.LogStore != want(m.ID) {
					return fmt.Errorf("via %s: member %s log_store %q, want %q", via.Name, m.ID, m.LogStore, want(m.ID))
				}
			}
			return nil
		})
	}
	out, err := runCLI(t, nil, "-a", c.Nodes[0].URL, "--token", c.Token, "server", "members")
	if err != nil || !strings.Contains(out, "LOG STORE") && !strings.Contains(out, "log store") {
		t.Fatalf("server members table has no log store column (%v):\n%s", err, out)
	}
}

func logStoreRunSucceeds(t *testing.T, rc *runsCluster, pipeline string) {
	t.Helper()
	run := rc.start(t, pipeline, nil)
	r := rc.wait(t, pipeline, run.RunID, 90*time.Second)
	if r.Status != model.RunStatusSuccessful {
		t.Fatalf("run %d of %s: %s\n%s", r.RunID, pipeline, r.Status, rc.describe(pipeline, r.RunID))
	}
}

// logStoreDirDigest lists every file under dir with its size and content
// hash (and every directory), sorted by path.
func logStoreDirDigest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			fmt.Fprintf(&b, "%s/\n", rel)
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s %d %s\n", rel, len(data), hex.EncodeToString(sum[:8]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
