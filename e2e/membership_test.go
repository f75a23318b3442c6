package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// TestMembershipJoinAndRemoveThroughCLI: an operator adds a fourth node
// (started from a config file, neither bootstrapped nor joining) with
// `gofer server join`, repeats the join harmlessly, removes the node with
// `gofer server remove`, and the cluster takes writes at every step.
func TestMembershipJoinAndRemoveThroughCLI(t *testing.T) {
	c := NewCluster(t, 3)
	ctx := context.Background()

	cfg := filepath.Join(t.TempDir(), "node4.toml")
	if err := os.WriteFile(cfg, []byte("[server]\nlog_level = \"info\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	node4 := NewNode(t, "node4", "--config", cfg)
	node4.Start()
	// Until it joins, node4 knows no leader, so its health check answers
	// 503; it is up once that answer names it.
	WaitFor(t, 30*time.Second, func() error {
		resp, err := rawRequest("GET", node4.URL+"/api/system/health", "", "")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var h model.Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			return fmt.Errorf("node4 health (%d): %v", resp.StatusCode, err)
		}
		if h.NodeID != "node4" || h.ClusterID != "" {
			return fmt.Errorf("node4 health: %+v", h)
		}
		return nil
	})

	join := []string{"-a", node4.URL, "--token", c.Token, "server", "join", c.Followers()[0].URL}
	out, err := runCLI(t, nil, join...)
	if err != nil {
		t.Fatalf("gofer %s: %v\n%s", strings.Join(join, " "), err, out)
	}
	three := c.Nodes
	c.Nodes = append(append([]*Node{}, three...), node4)
	c.WaitForMembers(4)
	membershipCheckMembers(t, c, c.Nodes)

	// Joining again is a no-op that succeeds.
	out, err = runCLI(t, nil, join...)
	if err != nil {
		t.Fatalf("second gofer %s: %v\n%s", strings.Join(join, " "), err, out)
	}
	c.WaitForMembers(4)
	membershipCheckMembers(t, c, c.Nodes)
	membershipCheckWrites(t, c, "mj-four")

	out, err = runCLI(t, nil, "-a", three[0].URL, "--token", c.Token, "server", "remove", "node4")
	if err != nil {
		t.Fatalf("gofer server remove node4: %v\n%s", err, out)
	}
	// node4 keeps running but is no longer a member; the rest carry on.
	c.Nodes = three
	c.WaitForMembers(3)
	membershipCheckMembers(t, c, three)
	membershipCheckWrites(t, c, "mj-three")
	if _, err := c.Client().GetNamespace(ctx, "mj-four-node4"); err != nil {
		t.Fatalf("a write made through node4 while it was a member is gone: %v", err)
	}
}

// membershipMember is one entry of `gofer server members -o json`, with
// pointers so a missing field is told apart from a zero value.
type membershipMember struct {
	ID            *string `json:"id"`
	RaftAddr      *string `json:"raft_addr"`
	APIAddr       *string `json:"api_addr"`
	Voter         *bool   `json:"voter"`
	Leader        *bool   `json:"leader"`
	Reachable     *bool   `json:"reachable"`
	AppliedIndex  *uint64 `json:"applied_index"`
	LastContactMS *int64  `json:"last_contact_ms"`
}

// membershipCheckMembers runs `gofer server members -o json` against every
// node in want and checks it lists exactly want, with every field set:
// addresses match the nodes, all are reachable voters, one is the leader.
func membershipCheckMembers(t *testing.T, c *Cluster, want []*Node) {
	t.Helper()
	byID := map[string]*Node{}
	var wantIDs []string
	for _, n := range want {
		byID[n.Name] = n
		wantIDs = append(wantIDs, n.Name)
	}
	sort.Strings(wantIDs)
	for _, via := range want {
		WaitFor(t, 60*time.Second, func() error {
			out, err := runCLI(t, nil, "-a", via.URL, "--token", c.Token, "server", "members", "-o", "json")
			if err != nil {
				return fmt.Errorf("server members via %s: %v: %s", via.Name, err, out)
			}
			var got struct {
				Members []membershipMember `json:"members"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				return fmt.Errorf("server members -o json via %s printed %q: %v", via.Name, out, err)
			}
			var ids []string
			leaders := 0
			for i, m := range got.Members {
				if m.ID == nil || m.RaftAddr == nil || m.APIAddr == nil || m.Voter == nil || m.Leader == nil ||
					m.Reachable == nil || m.AppliedIndex == nil || m.LastContactMS == nil {
					t.Fatalf("member %d via %s lacks a field (want id, raft_addr, api_addr, voter, leader, reachable, applied_index, last_contact_ms):\n%s", i, via.Name, out)
				}
				n := byID[*m.ID]
				if n == nil {
					return fmt.Errorf("via %s: unexpected member %q: %s", via.Name, *m.ID, out)
				}
				ids = append(ids, *m.ID)
				if *m.APIAddr == "" {
					// The member is in the raft configuration but the
					// entry recording its API address has not been
					// applied on this node yet.
					return fmt.Errorf("via %s: member %s has no api_addr yet", via.Name, *m.ID)
				}
				if *m.RaftAddr != n.RaftAddr || *m.APIAddr != n.URL {
					t.Fatalf("via %s: member %s has raft_addr %q and api_addr %q, want %q and %q", via.Name, *m.ID, *m.RaftAddr, *m.APIAddr, n.RaftAddr, n.URL)
				}
				if !*m.Voter {
					t.Fatalf("via %s: member %s is not a voter", via.Name, *m.ID)
				}
				if !*m.Reachable {
					return fmt.Errorf("via %s: member %s is unreachable", via.Name, *m.ID)
				}
				if *m.AppliedIndex == 0 {
					return fmt.Errorf("via %s: member %s has applied nothing", via.Name, *m.ID)
				}
				if *m.Leader {
					leaders++
					if *m.LastContactMS != 0 {
						t.Fatalf("via %s: leader %s reports last_contact_ms %d, want 0", via.Name, *m.ID, *m.LastContactMS)
					}
				} else if *m.LastContactMS < 0 {
					return fmt.Errorf("via %s: follower %s has not heard from the leader", via.Name, *m.ID)
				}
			}
			sort.Strings(ids)
			if strings.Join(ids, ",") != strings.Join(wantIDs, ",") {
				return fmt.Errorf("via %s: members %v, want %v", via.Name, ids, wantIDs)
			}
			if leaders != 1 {
				return fmt.Errorf("via %s: %d members marked leader, want 1", via.Name, leaders)
			}
			return nil
		})
	}
}

// membershipCheckWrites writes one namespace through every node of the
// cluster (followers forward) and reads them all back from every node.
func membershipCheckWrites(t *testing.T, c *Cluster, prefix string) {
	t.Helper()
	ctx := context.Background()
	want := map[string]bool{}
	var index uint64
	for _, n := range c.Nodes {
		id := prefix + "-" + n.Name
		cl := n.Client(c.Token)
		if _, err := cl.CreateNamespace(ctx, id, "Via "+n.Name, ""); err != nil {
			t.Fatalf("write through %s: %v", n.Name, err)
		}
		want[id] = true
		index = max(index, cl.LastIndex())
	}
	for _, n := range c.Nodes {
		if err := restartHasAll(restartNodeNamespaces(t, n, c.Token, index), want); err != nil {
			t.Fatalf("%s at index %d: %v", n.Name, index, err)
		}
	}
}
