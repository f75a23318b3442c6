package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestExtensionTriggersStartOneRunPerKey (G3): an extension installed
// through a follower starts runs with its token and trigger keys through
// every node at once; one key starts exactly one run, also after the token
// rotates; the subscription's watermark follows the ticks; a disabled
// extension's token is refused; an uninstall takes the subscriptions.
func TestExtensionTriggersStartOneRunPerKey(t *testing.T) {
	c := NewCluster(t, 3)
	ctx := context.Background()
	ensureImages(t)
	health, err := c.Nodes[0].Health()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeContainers(t, health.ClusterID) })
	admin := c.Client()
	follower := c.Followers()[0]

	// An extension that runs (subscriptions are validated by it); this test
	// then plays the extension itself with its token.
	image := upstreamExtensionImage(t)
	inst, err := follower.Client(c.Token).InstallExtension(ctx, client.InstallRequest{ID: "interval", Image: image, Settings: map[string]string{"MIN_INTERVAL": "1m"}})
	if err != nil {
		t.Fatalf("install through follower %s: %v", follower.Name, err)
	}
	if inst.Token.Secret == "" || inst.Extension.Status != model.ExtensionEnabled {
		t.Fatalf("install answered %+v", inst)
	}
	const pipe = "ticked"
	cfg := &sdk.PipelineConfig{ID: pipe, Name: pipe, Tasks: []*sdk.TaskConfig{{ID: "quick", Image: "gofer/busybox:latest", Command: []string{"true"}}}}
	if _, err := admin.RegisterConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DeployConfig(ctx, pipe, 1); err != nil {
		t.Fatal(err)
	}
	waitExtensionState(t, admin, "interval", "running")
	if _, err := admin.Subscribe(ctx, pipe, "interval", "every-min", map[string]string{"every": "1m"}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if _, err := admin.Subscribe(ctx, pipe, "interval", "too-fast", map[string]string{"every": "10s"}); !client.IsStatus(err, 400) {
		t.Fatalf("an interval below MIN_INTERVAL: %v, want 400", err)
	}

	// The same key from 5 goroutines through the 3 nodes: one run.
	extOn := func(secret string) []*client.Client {
		var out []*client.Client
		for _, n := range c.Nodes {
			out = append(out, n.Client(secret))
		}
		return out
	}
	ext := extOn(inst.Token.Secret)
	tick := time.Unix(1_700_000_040, 0)
	key := func(tick time.Time) string { return fmt.Sprintf("interval:default/%s/every-min:%d", pipe, tick.Unix()) }
	startAll := func(k string) map[int64]int {
		got := map[int64]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < 5; i++ {
			wg.Add(1)
			go func(cl *client.Client) {
				defer wg.Done()
				r, err := cl.StartRunWithKey(ctx, pipe, k, nil)
				if err != nil {
					t.Errorf("start with %s: %v", k, err)
					return
				}
				mu.Lock()
				got[r.RunID]++
				mu.Unlock()
			}(ext[i%len(ext)])
		}
		wg.Wait()
		return got
	}
	first := startAll(key(tick))
	if len(first) != 1 {
		t.Fatalf("one key from 5 callers started runs %v, want exactly one", first)
	}
	var runID int64
	for id := range first {
		runID = id
	}
	runs, err := admin.Consistent().ListRuns(ctx, pipe, client.Page{Limit: 100})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs of %s: %d %v, want 1", pipe, len(runs), err)
	}
	if runs[0].Initiator.User != model.ExtensionUser("interval") {
		t.Errorf("run initiator %+v, want the extension", runs[0].Initiator)
	}
	sub, err := admin.Consistent().GetSubscription(ctx, pipe, "interval", "every-min")
	if err != nil || sub.Watermark != tick.UnixMilli() {
		t.Fatalf("watermark after the first tick: %+v %v, want %d", sub, err, tick.UnixMilli())
	}
	next := tick.Add(time.Minute)
	if second := startAll(key(next)); len(second) != 1 || second[runID] != 0 {
		t.Fatalf("the next tick started %v, want one new run", second)
	}
	if sub, err = admin.Consistent().GetSubscription(ctx, pipe, "interval", "every-min"); err != nil || sub.Watermark != next.UnixMilli() {
		t.Fatalf("watermark after the second tick: %+v %v, want %d", sub, err, next.UnixMilli())
	}

	// A reinstall rotates the token: the old secret stops working, and the
	// first key with the new one answers the first run.
	again, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "interval", Image: image})
	if err != nil || again.Token.Secret == inst.Token.Secret {
		t.Fatalf("reinstall: %+v %v", again, err)
	}
	if _, err := ext[0].StartRunWithKey(ctx, pipe, key(tick.Add(2*time.Minute)), nil); !client.IsStatus(err, 401) {
		t.Fatalf("the rotated-out token: %v, want 401", err)
	}
	ext = extOn(again.Token.Secret)
	if r, err := ext[2].StartRunWithKey(ctx, pipe, key(tick), nil); err != nil || r.RunID != runID {
		t.Fatalf("the first key after rotation: %+v %v, want run %d", r, err, runID)
	}
	subs, err := ext[1].ListExtensionSubscriptions(ctx, "interval", client.Page{})
	if err != nil || len(subs) != 1 || subs[0].SubscriptionID != "every-min" {
		t.Fatalf("the extension's own subscription list: %+v %v", subs, err)
	}

	// Its role reads subscriptions but may not make them (upstream's grant).
	if _, err := ext[1].Subscribe(ctx, pipe, "interval", "self-made", map[string]string{"every": "1m"}); !client.IsStatus(err, 403) {
		t.Fatalf("the extension's token subscribing a pipeline: %v, want 403", err)
	}

	// Disabled: its token may not start runs, with or without a key.
	if _, err := admin.SetExtensionEnabled(ctx, "interval", false); err != nil {
		t.Fatal(err)
	}
	idx := admin.LastIndex()
	for i, cl := range ext {
		if _, err := cl.AtLeast(idx).StartRunWithKey(ctx, pipe, key(tick.Add(time.Duration(3+i)*time.Minute)), nil); !client.IsStatus(err, 403) {
			t.Errorf("disabled extension's token through %s: %v, want 403", c.Nodes[i].Name, err)
		}
	}
	if _, err := admin.SetExtensionEnabled(ctx, "interval", true); err != nil {
		t.Fatal(err)
	}

	// Uninstall: the subscriptions and the token go.
	if err := follower.Client(c.Token).UninstallExtension(ctx, "interval"); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if subs, err := admin.Consistent().ListSubscriptions(ctx, pipe, client.Page{}); err != nil || len(subs) != 0 {
		t.Fatalf("subscriptions after uninstall: %+v %v", subs, err)
	}
	if _, err := ext[0].Consistent().ListExtensionSubscriptions(ctx, "interval", client.Page{}); !client.IsStatus(err, 401) {
		t.Fatalf("the uninstalled extension's token: %v, want 401", err)
	}
}
