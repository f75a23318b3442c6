package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestFailoverLeaderSIGKILLElectsNewLeaderAndNodeCatchesUp (G1): while
// writers run, the leader is killed with SIGKILL. The survivors elect a
// new leader, writes through the failover client keep being acknowledged,
// and the killed node, once restarted, serves every acknowledged write.
func TestFailoverLeaderSIGKILLElectsNewLeaderAndNodeCatchesUp(t *testing.T) {
	c := NewCluster(t, 3)
	cl := c.Client()
	ctx := context.Background()

	w := restartStartWriters(t, cl, "fk", 3)
	w.WaitForAcks(t, 15)

	old := c.Leader()
	old.Kill()
	leader := c.Leader(old)
	if leader == old {
		t.Fatalf("%s was killed but is still reported as the leader", old.Name)
	}
	t.Logf("killed leader %s; %s took over", old.Name, leader.Name)

	// The writers that were running through the kill keep making progress.
	w.WaitForAcks(t, w.Acked()+15)
	acked, _ := w.Stop(t)

	// And new writes through the failover client are acknowledged.
	for i := range 5 {
		id := fmt.Sprintf("fk-after-%d", i)
		if _, err := cl.CreateNamespace(ctx, id, "After "+id, ""); err != nil {
			t.Fatalf("write %s after the failover: %v", id, err)
		}
		acked[id] = true
	}
	index := cl.LastIndex()

	for _, n := range c.Nodes {
		if n == old {
			continue
		}
		if err := restartHasAll(restartNodeNamespaces(t, n, c.Token, index), acked); err != nil {
			t.Fatalf("survivor %s: %v", n.Name, err)
		}
	}

	old.Start()
	c.WaitForMembers(3)
	if err := restartHasAll(restartNodeNamespaces(t, old, c.Token, index), acked); err != nil {
		t.Fatalf("restarted %s did not catch up: %v", old.Name, err)
	}
	restartCheckTrusted(t, old, false)
}

// TestFailoverGracefulLeaderStopTransfersLeadership: SIGTERM on the leader
// hands leadership to a peer before the process exits, writes continue
// through every remaining node, and the stopped node comes back with its
// state file and catches up.
func TestFailoverGracefulLeaderStopTransfersLeadership(t *testing.T) {
	c := NewCluster(t, 3)
	cl := c.Client()
	ctx := context.Background()
	if _, err := cl.CreateNamespace(ctx, "gs-before", "Before the stop", ""); err != nil {
		t.Fatalf("write before the stop: %v", err)
	}

	old := c.Leader()
	old.Stop()
	if log := restartLatestLog(t, old); !strings.Contains(log, "transferred leadership before stopping") {
		t.Errorf("%s stopped without transferring leadership; its log lacks %q", old.Name, "transferred leadership before stopping")
	}
	leader := c.Leader(old)
	if leader == old {
		t.Fatalf("%s was stopped but is still reported as the leader", old.Name)
	}
	t.Logf("stopped leader %s; %s took over", old.Name, leader.Name)

	want := map[string]bool{"gs-before": true}
	if _, err := cl.CreateNamespace(ctx, "gs-after", "After the stop", ""); err != nil {
		t.Fatalf("write through the failover client after the stop: %v", err)
	}
	want["gs-after"] = true
	index := cl.LastIndex()
	// Every remaining node takes writes (followers forward them).
	for _, n := range c.Nodes {
		if n == old {
			continue
		}
		id := "gs-via-" + n.Name
		ncl := n.Client(c.Token)
		if _, err := ncl.CreateNamespace(ctx, id, "Via "+n.Name, ""); err != nil {
			t.Fatalf("write through %s after the stop: %v", n.Name, err)
		}
		want[id] = true
		index = max(index, ncl.LastIndex())
	}
	for _, n := range c.Nodes {
		if n == old {
			continue
		}
		if err := restartHasAll(restartNodeNamespaces(t, n, c.Token, index), want); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
	}

	old.Start()
	c.WaitForMembers(3)
	restartCheckTrusted(t, old, true)
	if err := restartHasAll(restartNodeNamespaces(t, old, c.Token, index), want); err != nil {
		t.Fatalf("restarted %s did not catch up: %v", old.Name, err)
	}
}
