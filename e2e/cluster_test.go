package e2e

import (
	"context"
	"testing"
)

// TestWriteThroughFollowerIsReadableOnEveryNode: a write sent to a
// follower is forwarded to the leader, and with ?min_index every node
// serves it immediately.
func TestWriteThroughFollowerIsReadableOnEveryNode(t *testing.T) {
	c := NewCluster(t, 3)
	follower := c.Followers()[0]
	cl := follower.Client(c.Token)
	ctx := context.Background()
	if _, err := cl.CreateNamespace(ctx, "via-follower", "Via follower", ""); err != nil {
		t.Fatalf("create through follower %s: %v", follower.Name, err)
	}
	idx := cl.LastIndex()
	if idx == 0 {
		t.Fatal("write returned no X-Gofer-Index")
	}
	for _, n := range c.Nodes {
		ns, err := n.Client(c.Token).AtLeast(idx).GetNamespace(ctx, "via-follower")
		if err != nil {
			t.Fatalf("%s: read with min_index=%d: %v", n.Name, idx, err)
		}
		if ns.Name != "Via follower" {
			t.Fatalf("%s: got %+v", n.Name, ns)
		}
	}
}
