package e2e

import (
	"context"
	"fmt"
	"testing"
)

// TestFiveNodesSurviveTwoSIGKILLs: a five-node cluster keeps taking writes
// while two of its nodes — the leader and a follower — are SIGKILLed
// (three voters are still a majority), and both killed nodes, restarted,
// rejoin, catch up and agree with the others on every acknowledged write
// (docs/production.md, "3 or 5 nodes").
func TestFiveNodesSurviveTwoSIGKILLs(t *testing.T) {
	c := NewCluster(t, 5)
	cl := c.Client()
	ctx := context.Background()

	w := restartStartWriters(t, cl, "five", 3)
	w.WaitForAcks(t, 15)

	leader := c.Leader()
	follower := c.Followers()[0]
	leader.Kill()
	follower.Kill()
	next := c.Leader(leader, follower)
	t.Logf("killed leader %s and follower %s; %s took over", leader.Name, follower.Name, next.Name)

	// The writers running through both kills keep making progress on the
	// three survivors.
	w.WaitForAcks(t, w.Acked()+15)
	acked, _ := w.Stop(t)
	for i := range 5 {
		id := fmt.Sprintf("five-after-%d", i)
		if _, err := cl.CreateNamespace(ctx, id, "After "+id, ""); err != nil {
			t.Fatalf("write %s with two of five nodes down: %v", id, err)
		}
		acked[id] = true
	}
	index := cl.LastIndex()
	for _, n := range c.Nodes {
		if n.Running() {
			if err := restartHasAll(restartNodeNamespaces(t, n, c.Token, index), acked); err != nil {
				t.Fatalf("survivor %s: %v", n.Name, err)
			}
		}
	}

	// Both come back, rejoin as members and serve every acknowledged
	// write; all five agree.
	leader.Start()
	follower.Start()
	c.WaitForMembers(5)
	for _, n := range []*Node{leader, follower} {
		if err := restartHasAll(restartNodeNamespaces(t, n, c.Token, index), acked); err != nil {
			t.Fatalf("restarted %s did not catch up: %v", n.Name, err)
		}
		restartCheckTrusted(t, n, false)
	}
	restartAgreedNamespaces(t, c, "five-marker")
}
