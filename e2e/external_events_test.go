package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/api"
	"github.com/goferhq/gofer/client"
)

// newEventsCluster is NewCluster with the external-events listener enabled
// on every node, each at a port of its own; events maps node name → its
// listener's base URL.
func newEventsCluster(t *testing.T, size int) (c *Cluster, events map[string]string) {
	t.Helper()
	c = &Cluster{t: t}
	events = map[string]string{}
	for i := 1; i <= size; i++ {
		args := []string{"--bootstrap"}
		if i > 1 {
			args = []string{"--join", c.Nodes[0].URL}
		}
		n := NewNode(t, fmt.Sprintf("node%d", i), args...)
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		n.Env = append(n.Env, "GOFER_WEB_SCHEDULER__ENGINE=noop",
			"GOFER_WEB_EXTERNAL_EVENTS__ENABLE=true", "GOFER_WEB_EXTERNAL_EVENTS__BIND_ADDRESS="+addr)
		events[n.Name] = "http://" + addr
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		n.Start()
	}
	c.WaitForMembers(size)
	tok, err := c.Client().BootstrapToken(context.Background())
	if err != nil {
		t.Fatalf("bootstrap token: %v", err)
	}
	c.Token = tok.Secret
	return c, events
}

type eventAnswer struct {
	status int
	node   string // X-Gofer-Node: which node's API answered
	body   api.ErrorBody
	raw    string
}

func postEvent(t *testing.T, url string, body []byte) eventAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("X-GitHub-Delivery", "d-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := eventAnswer{status: resp.StatusCode, node: resp.Header.Get(api.HeaderServedBy), raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// An external event sent to a follower's listener is decided by the
// leader (over the cluster-secret internal route): the leader's state
// says which extensions exist, and the leader runs them. Oversized bodies
// and other paths are refused by the listener itself. (This build has no
// extension supervisor, so an installed extension answers 503 "runs no
// extensions"; api.TestExternalEventsListener covers delivery to a
// running extension.)
func TestExternalEventsThroughAFollower(t *testing.T) {
	c, events := newEventsCluster(t, 3)
	admin := c.Nodes[0].Client(c.Token)
	if _, err := admin.InstallExtension(context.Background(), client.InstallRequest{ID: "hook", Image: "example/hook:1"}); err != nil {
		t.Fatal(err)
	}
	leader := c.Leader()
	follower := c.Followers()[0]
	// The follower applied the install too, but the answer must be the
	// leader's: it is the one that runs extensions.
	WaitFor(t, 10*time.Second, func() error {
		if _, err := follower.Client(c.Token).GetExtension(context.Background(), "hook"); err != nil {
			return err
		}
		return nil
	})

	for _, path := range []string{"/api/external/hook", "/external/hook"} {
		got := postEvent(t, events[follower.Name]+path, []byte(`{"zen":"keep it logically awesome"}`))
		if got.status != 503 || got.node != leader.Name || !strings.Contains(got.body.Message, `extension "hook" is not running`) {
			t.Fatalf("%s through follower %s: %d from %q: %s; want the leader %s's 503", path, follower.Name, got.status, got.node, got.raw, leader.Name)
		}
	}
	if got := postEvent(t, events[follower.Name]+"/api/external/ghost", []byte("{}")); got.status != 404 || got.node != leader.Name || !strings.Contains(got.body.Message, "ghost") {
		t.Fatalf("unknown extension through a follower: %d from %q: %s", got.status, got.node, got.raw)
	}
	// On the leader's own listener the same answer.
	if got := postEvent(t, events[leader.Name]+"/api/external/hook", []byte("{}")); got.status != 503 || !strings.Contains(got.body.Message, "not running") {
		t.Fatalf("on the leader: %d %s", got.status, got.raw)
	}
	// Refused by the follower's listener before anything is forwarded.
	if got := postEvent(t, events[follower.Name]+"/api/external/hook", make([]byte, api.MaxExternalEventBody+1)); got.status != 413 || got.node == leader.Name {
		t.Fatalf("oversize: %d from %q: %.200s", got.status, got.node, got.raw)
	}
	if got := postEvent(t, events[follower.Name]+"/api/namespaces", nil); got.status != 404 {
		t.Fatalf("an API path on the events listener: %d %s", got.status, got.raw)
	}
	// The internal route wants the cluster secret (or an admin token).
	resp, err := rawRequest(http.MethodPost, follower.URL+"/api/cluster/external-events/hook", "", "{}")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 && resp.StatusCode != 400 {
		t.Fatalf("internal route without credentials: %d", resp.StatusCode)
	}
}
