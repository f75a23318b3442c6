package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRecoverLostQuorumWithPeersJSON follows docs/production.md
// ("Recovering from lost quorum"): a 3-node cluster loses two nodes for
// good; the survivor, given a peers.json naming only itself, restarts as a
// one-node cluster with its data, applies the file once, and refuses to
// start on a malformed file.
func TestRecoverLostQuorumWithPeersJSON(t *testing.T) {
	c := NewCluster(t, 3)
	ctx := context.Background()
	var written []string
	for i := range 10 {
		id := fmt.Sprintf("keep-%d", i)
		if _, err := c.Client().CreateNamespace(ctx, id, id, "written before quorum was lost"); err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
		written = append(written, id)
	}
	survivor := c.Followers()[0]
	for _, n := range c.Nodes {
		if n != survivor {
			n.Kill()
		}
	}
	// Without a quorum the survivor cannot become leader: no write.
	short := survivor.Client(c.Token)
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err := short.CreateNamespace(wctx, "no-quorum", "no-quorum", "")
	cancel()
	if err == nil {
		t.Fatal("a write succeeded on a lone survivor before recovery")
	}
	survivor.Stop()

	peers := filepath.Join(survivor.Dir, "peers.json")
	writePeers(t, peers, fmt.Sprintf(`[{"id": %q, "address": %q, "non_voter": false}]`, survivor.Name, survivor.RaftAddr))
	survivor.Start()
	c.Nodes = []*Node{survivor}
	if l := c.Leader(); l != survivor {
		t.Fatalf("leader is %s, want the survivor %s", l.Name, survivor.Name)
	}
	if log := restartLatestLog(t, survivor); !strings.Contains(log, "RECOVERING CLUSTER MEMBERSHIP") {
		t.Fatalf("the survivor's log does not say it recovered:\n%s", log)
	}
	if _, err := os.Stat(peers); !os.IsNotExist(err) {
		t.Fatalf("peers.json still there after recovery (stat: %v)", err)
	}
	if _, err := os.Stat(peers + ".recovered"); err != nil {
		t.Fatalf("peers.json was not renamed to peers.json.recovered: %v", err)
	}
	cl := survivor.Client(c.Token)
	ms, err := cl.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != survivor.Name || !ms[0].Voter {
		t.Fatalf("members after recovery: %+v, want the survivor alone as a voter", ms)
	}
	recoveredHasAll(t, c, append(written, "after-recovery-0"), "after-recovery-0")

	// Applied once: a plain restart keeps the one-node cluster and
	// does not recover again.
	survivor.Stop()
	survivor.Start()
	c.Leader()
	if log := restartLatestLog(t, survivor); strings.Contains(log, "RECOVERING CLUSTER MEMBERSHIP") {
		t.Fatal("the restart after recovery applied peers.json again")
	}
	recoveredHasAll(t, c, append(written, "after-recovery-0", "after-recovery-1"), "after-recovery-1")

	// A malformed file stops the start and names the file.
	survivor.Stop()
	writePeers(t, peers, `[{"id": "node1", "address": `)
	survivor.Start()
	WaitFor(t, 30*time.Second, func() error {
		if survivor.Running() {
			return fmt.Errorf("still running")
		}
		return nil
	})
	if log := restartLatestLog(t, survivor); !strings.Contains(log, "recovery file "+peers+" is not valid") {
		t.Fatalf("a malformed peers.json did not stop the start with an error naming it:\n%s", log)
	}
}

func writePeers(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// recoveredHasAll writes create through the cluster and checks that every
// namespace in want is there.
func recoveredHasAll(t *testing.T, c *Cluster, want []string, create string) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Client().CreateNamespace(ctx, create, create, "written after recovery"); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	got, err := restartListNamespaces(ctx, c.Client())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, ns := range got {
		have[ns.ID] = true
	}
	for _, id := range want {
		if !have[id] {
			t.Fatalf("namespace %s lost in recovery", id)
		}
	}
}
