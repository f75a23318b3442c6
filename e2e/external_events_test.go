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
	sdk "github.com/goferhq/gofer/sdk/go"
)

// newEventsCluster is NewCluster with the external-events listener enabled
// on every node, each at a port of its own, and env added; events maps
// node name → its listener's base URL.
func newEventsCluster(t *testing.T, size int, env ...string) (c *Cluster, events map[string]string) {
	t.Helper()
	c = &Cluster{t: t}
	events = map[string]string{}
	var clusterID string
	t.Cleanup(func() { // after the nodes' cleanups, as NewCluster's
		if clusterID != "" {
			removeContainers(t, clusterID)
		}
	})
	for i := 1; i <= size; i++ {
		args := []string{"--bootstrap"}
		if i > 1 {
			args = []string{"--join", c.Nodes[0].URL}
		}
		n := NewNode(t, fmt.Sprintf("node%d", i), args...)
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		n.Env = append(n.Env, "GOFER_WEB_EXTERNAL_EVENTS__ENABLE=true", "GOFER_WEB_EXTERNAL_EVENTS__BIND_ADDRESS="+addr)
		n.Env = append(n.Env, env...)
		events[n.Name] = "http://" + addr
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		n.Start()
	}
	c.WaitForMembers(size)
	if h, err := c.Nodes[0].Health(); err == nil {
		clusterID = h.ClusterID
	}
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
// and other paths are refused by the listener itself. (With the noop
// engine nothing runs extensions: an installed one answers 503.)
func TestExternalEventsThroughAFollower(t *testing.T) {
	c, events := newEventsCluster(t, 3, "GOFER_WEB_SCHEDULER__ENGINE=noop")
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

// extensionLogs is the extension container's output so far, read through
// node.
func extensionLogs(t *testing.T, cl *client.Client, id string) string {
	t.Helper()
	rc, err := cl.ExtensionLogs(context.Background(), id, false)
	if err != nil {
		t.Fatalf("logs of %s: %v", id, err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// waitLog waits until the extension printed want.
func waitLog(t *testing.T, cl *client.Client, id, want string) {
	t.Helper()
	WaitFor(t, 30*time.Second, func() error {
		if logs := extensionLogs(t, cl, id); !strings.Contains(logs, want) {
			return fmt.Errorf("extension %s has not printed %q; its output:\n%s", id, want, logs)
		}
		return nil
	})
}

// An extension written against upstream's contract (e2e/testdata/
// upstreamext), run by the supervisor on a real 3-node cluster: a
// subscription made through a follower is validated by it (a refusal is
// a 400 with its plain-text message, nothing stored; secret markers reach
// it resolved), a disable tells it to drop the subscription, the debug
// route answers its dump, and an external event posted to a follower's
// listener reaches it with its headers and body (a refusal: the
// extension's own status and message, as a bad signature's 401).
func TestSubscriptionsDebugAndEventsReachARunningExtension(t *testing.T) {
	ensureImages(t)
	image := upstreamExtensionImage(t)
	c, events := newEventsCluster(t, 3, "GOFER_WEB_EXTENSIONS__INSTALL_STD_EXTENSIONS=false", "GOFER_WEB_EXTENSIONS__STOP_TIMEOUT=2s")
	ctx := context.Background()
	admin := c.Client()
	upx, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "upx", Image: image})
	if err != nil {
		t.Fatal(err)
	}
	waitExtensionState(t, admin, "upx", "running")
	follower := c.Followers()[0]
	fcl := follower.Client(c.Token)
	const pipe = "hooked"
	if _, err := admin.RegisterConfig(ctx, &sdk.PipelineConfig{ID: pipe, Name: pipe, Tasks: []*sdk.TaskConfig{{ID: "quick", Image: "gofer/busybox:latest", Command: []string{"true"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutSecret(ctx, client.SecretScope{Pipeline: pipe}, "tok", "hunter2", nil, false); err != nil {
		t.Fatal(err)
	}

	// An extension whose image is on no engine never runs: a subscription
	// to it is a 503 naming it, its logs a 404 (no container), and the
	// authz fixture's running extension no longer shows that case.
	if _, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "ghost", Image: "example/ext:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := fcl.Subscribe(ctx, pipe, "ghost", "sub1", nil); !client.IsStatus(err, 503) || !strings.Contains(err.Error(), `extension "ghost" is not running`) {
		t.Fatalf("subscribe to an extension that does not run: %v", err)
	}
	if _, err := fcl.ExtensionLogs(ctx, "ghost", false); !client.IsStatus(err, 404) || !strings.Contains(err.Error(), "no container") {
		t.Fatalf("logs of an extension without a container: %v", err)
	}

	// Refused by the extension: 400 with its message; nothing stored.
	_, err = fcl.Subscribe(ctx, pipe, "upx", "sub1", map[string]string{"refuse": "not this one"})
	if !client.IsStatus(err, 400) || !strings.Contains(err.Error(), "refused: not this one") {
		t.Fatalf("refused subscription through a follower: %v", err)
	}
	if _, err := admin.GetSubscription(ctx, pipe, "upx", "sub1"); !client.IsStatus(err, 404) {
		t.Fatalf("a refused subscription is stored: %v", err)
	}
	// Accepted: the extension saw the secret resolved; the cluster keeps
	// the marker.
	sub, err := fcl.Subscribe(ctx, pipe, "upx", "sub1", map[string]string{"tok": "pipeline_secret{{tok}}"})
	if err != nil || sub.Settings["tok"] != "pipeline_secret{{tok}}" {
		t.Fatalf("subscribe: %+v %v", sub, err)
	}
	waitLog(t, fcl, "upx", "upstreamext: subscribe default/"+pipe+"/sub1 map[tok:hunter2]")
	// What the extension restores at boot (its own token, through a
	// follower) carries the secret resolved, as its subscribe call did;
	// anyone else reads the marker.
	for _, read := range []struct {
		who  string
		cl   *client.Client
		want string
	}{{"the extension", follower.Client(upx.Token.Secret), "hunter2"}, {"an admin", fcl, "pipeline_secret{{tok}}"}} {
		// A follower serves the list from its own state, which may not
		// have applied the subscription yet.
		WaitFor(t, 10*time.Second, func() error {
			subs, err := read.cl.ListExtensionSubscriptions(ctx, "upx", client.Page{})
			if err != nil || len(subs) != 1 || subs[0].Settings["tok"] != read.want {
				return fmt.Errorf("subscriptions as %s read them: %+v %v; want tok=%s", read.who, subs, err, read.want)
			}
			return nil
		})
	}

	// Debug, through a follower (the leader calls the extension).
	info, err := fcl.DebugExtension(ctx, "upx")
	if err != nil || info != `{"subscriptions":1}` {
		t.Fatalf("debug: %q %v", info, err)
	}

	// An external event posted to the follower's listener.
	req, _ := http.NewRequest(http.MethodPost, events[follower.Name]+"/api/external/upx", strings.NewReader(`{"zen":"hi"}`))
	req.Header.Set("X-GitHub-Delivery", "d-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("event through follower: %d", resp.StatusCode)
	}
	waitLog(t, fcl, "upx", `upstreamext: event d-42 12 bytes: {"zen":"hi"}`)
	req, _ = http.NewRequest(http.MethodPost, events[follower.Name]+"/external/upx", strings.NewReader("x"))
	req.Header.Set("X-Refuse", "yes")
	if got := func() eventAnswer {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		a := eventAnswer{status: resp.StatusCode, raw: string(raw)}
		_ = json.Unmarshal(raw, &a.body)
		return a
	}(); got.status != http.StatusUnauthorized || !strings.Contains(got.body.Message, "event refused") {
		t.Fatalf("refused event: %d %s", got.status, got.raw)
	}

	// Disable, then delete: the extension is told to drop it.
	if _, err := fcl.SetSubscriptionStatus(ctx, pipe, "upx", "sub1", "disabled"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, fcl, "upx", "upstreamext: unsubscribe default/"+pipe+"/sub1")
	if info, err := admin.DebugExtension(ctx, "upx"); err != nil || info != `{"subscriptions":0}` {
		t.Fatalf("debug after disable: %q %v", info, err)
	}
	if _, err := fcl.SetSubscriptionStatus(ctx, pipe, "upx", "sub1", "active"); err != nil {
		t.Fatal(err)
	}
	if info, err := admin.DebugExtension(ctx, "upx"); err != nil || info != `{"subscriptions":1}` {
		t.Fatalf("debug after enable: %q %v", info, err)
	}
	if err := fcl.Unsubscribe(ctx, pipe, "upx", "sub1"); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, func() error {
		if info, err := admin.DebugExtension(ctx, "upx"); err != nil || info != `{"subscriptions":0}` {
			return fmt.Errorf("debug after delete: %q %v", info, err)
		}
		return nil
	})
}
