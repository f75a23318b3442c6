package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// clusterNode is one in-process agent of a test cluster.
type clusterNode struct {
	a      *agent.Agent
	url    string
	events string // the external-events listener's base URL
}

// eventsCluster runs three real agents in this process (real raft, bbolt
// and HTTP; no auth in the way of the listener) with the external-events
// listener on each.
func eventsCluster(t *testing.T) []*clusterNode {
	t.Helper()
	var nodes []*clusterNode
	for i := 1; i <= 3; i++ {
		cfg := agent.DefaultConfig()
		cfg.Server.NodeID = fmt.Sprintf("node%d", i)
		cfg.Server.DataDir = t.TempDir()
		cfg.Server.APIAddr = freeAddr(t)
		cfg.Server.RaftAddr = freeAddr(t)
		cfg.Cluster.Secret = "api-test-cluster-secret-0123456789"
		cfg.Secrets.EncryptionKey = "api-test-encryption-key-9876543210ab"
		cfg.Scheduler.Engine = "noop"
		cfg.Extensions.InstallStdExtensions = false
		cfg.Raft.HeartbeatTimeout = agent.Duration(300 * time.Millisecond)
		cfg.Raft.ElectionTimeout = agent.Duration(300 * time.Millisecond)
		cfg.Raft.LeaderLeaseTimeout = agent.Duration(150 * time.Millisecond)
		cfg.ExternalEvents.Enable = true
		cfg.ExternalEvents.BindAddress = freeAddr(t)
		if i == 1 {
			cfg.Server.Bootstrap = true
		} else {
			cfg.Server.Join = []string{nodes[0].url}
		}
		a, err := agent.New(cfg, model.Metadata{Semver: "test"}, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		nodes = append(nodes, &clusterNode{a: a, url: "http://" + cfg.Server.APIAddr, events: "http://" + cfg.ExternalEvents.BindAddress})
	}
	return nodes
}

// An external event posted to a follower's listener reaches the extension
// the leader runs, with its headers and body intact.
func TestExternalEventThroughAFollowerReachesTheExtension(t *testing.T) {
	nodes := eventsCluster(t)
	urls := []string{nodes[0].url, nodes[1].url, nodes[2].url}
	cl, err := client.New(urls)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var tok *client.TokenWithSecret
	deadline := time.Now().Add(30 * time.Second)
	for {
		if tok, err = cl.BootstrapToken(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bootstrap token: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	admin, _ := client.New(urls, client.WithToken(tok.Secret))
	// Every node is a member once each knows the others' API address.
	var leader, follower *clusterNode
	for {
		leader, follower = nil, nil
		members, err := admin.Members(ctx)
		for _, n := range nodes {
			if n.a.IsLeader() {
				leader = n
			} else {
				follower = n
			}
		}
		if err == nil && len(members) == 3 && leader != nil && follower != nil {
			if _, known := follower.a.Leader(); known != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3-node cluster: %d members, %v", len(members), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "github", Image: "example/github:1"}); err != nil {
		t.Fatal(err)
	}
	// Only the leader runs the extension: the follower's directory stays
	// empty, so a 204 means the event went through the leader.
	ext := newStandIn(t)
	leader.a.ExtensionDirectory().Set("github", ext.target())

	payload := []byte(`{"action":"opened","number":7}`)
	req, _ := http.NewRequest(http.MethodPost, follower.events+"/api/external/github", bytes.NewReader(payload))
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("event through follower: %d", resp.StatusCode)
	}
	c := ext.next(t)
	var got struct {
		Headers map[string]string `json:"headers"`
		Body    []byte            `json:"body"`
	}
	if err := json.Unmarshal(c.raw, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, payload) || got.Headers["x-github-event"] != "pull_request" || got.Headers["x-multi"] != "a, b" {
		t.Fatalf("the extension got %q with headers %v", got.Body, got.Headers)
	}
	for _, internal := range []string{"x-gofer-cluster-secret", "x-gofer-event-headers", "x-gofer-forwarded-from", "gofer-api-version"} {
		if _, ok := got.Headers[internal]; ok {
			t.Errorf("the extension got the hop's header %s", internal)
		}
	}
}
