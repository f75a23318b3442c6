package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
)

// triggersSetup starts a 3-node cluster, deploys pipeline p (one quick
// task), installs the interval extension with MIN_INTERVAL=1s — run as a
// host process, or (supervised) in the container the supervisor runs —
// and subscribes p every `every` with the default catch-up (latest).
func triggersSetup(t *testing.T, p string, every time.Duration, supervised bool) (*Cluster, *client.Client, triggerExtension) {
	t.Helper()
	var c *Cluster
	if supervised {
		c = NewCluster(t, 3)
	} else {
		// The interval extension is the host process below, not the
		// supervised standard one; the leader cannot call a process it
		// does not run, so subscriptions get the built-in check only.
		c = NewCluster(t, 3, "GOFER_WEB_EXTENSIONS__INSTALL_STD_EXTENSIONS=false", "GOFER_WEB_EXTENSIONS__CALL_EXTENSIONS=false")
	}
	ctx := context.Background()
	ensureImages(t)
	health, err := c.Nodes[0].Health()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeContainers(t, health.ClusterID) })
	admin := c.Client()
	cfg := &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{{ID: "quick", Image: "gofer/busybox:latest", Command: []string{"true"}}}}
	if _, err := admin.RegisterConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DeployConfig(ctx, p, 1); err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{"MIN_INTERVAL": "1s"}
	subscribe := func() {
		t.Helper()
		if _, err := admin.Subscribe(ctx, p, "interval", "tick", map[string]string{"every": every.String()}); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
	}
	if supervised {
		// Install (the settings), subscribe, then reinstall: the
		// replacement container restores the subscription at boot.
		superviseBuiltinExtension(t, c, "interval", settings)
		subscribe()
		ext, _ := superviseBuiltinExtension(t, c, "interval", settings)
		return c, admin, ext
	}
	// The extension runs as a host process here: the install names an
	// image no engine has, so the supervisor runs no second copy (any tag
	// of gofer/extension-interval would be imported and run).
	inst, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "interval", Image: hostProcessImage, Settings: settings})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	subscribe()
	return c, admin, startBuiltinExtension(t, c, "interval", inst.Token.Secret, settings)
}

// waitWatermark waits until the subscription's watermark reaches at.
func waitWatermark(t *testing.T, admin *client.Client, p string, at time.Time, limit time.Duration) {
	t.Helper()
	WaitFor(t, limit, func() error {
		s, err := admin.Consistent().GetSubscription(context.Background(), p, "interval", "tick")
		if err != nil {
			return err
		}
		if s.Watermark < at.UnixMilli() {
			return fmt.Errorf("watermark %s, waiting for %s", time.UnixMilli(s.Watermark).UTC().Format(time.TimeOnly), at.UTC().Format(time.TimeOnly))
		}
		return nil
	})
}

// TestIntervalTriggerOnTimeAndRestart: the interval extension, a host
// process, starts one run per 2-second tick, each committed at or after
// its tick and before the next; killed for 7 s and restarted, it fires the
// latest missed tick, records the others as skipped-tick events, and no
// tick has two runs or both a run and a skip.
func TestIntervalTriggerOnTimeAndRestart(t *testing.T) {
	const p, every = "ticking", 2 * time.Second
	_, admin, ext := triggersSetup(t, p, every, false)

	waitWatermark(t, admin, p, time.Now().Add(4*every), 30*time.Second)
	l := readLedger(t, admin, p, "interval", "tick", every)
	for _, r := range l.runs {
		tick := r.Variables["GOFER_EXTENSION_SCHEDULED_TIME"]
		var u int64
		fmt.Sscan(tick, &u)
		// Not early, and not a tick late: the tick's own run.
		if r.Created < u*1000 || r.Created >= (u+int64(every/time.Second))*1000 {
			t.Errorf("run %d for tick %d committed at %d ms", r.RunID, u, r.Created)
		}
	}
	if f, s := l.check(t); f < 3 || s != 0 {
		t.Fatalf("while running: %d fired, %d skipped; want ≥3 fired and none skipped", f, s)
	}

	ext.Kill()
	down := time.Now()
	time.Sleep(7 * time.Second) // the outage being tested
	ext.Start()
	waitWatermark(t, admin, p, down.Add(7*time.Second+3*every), 30*time.Second)
	ext.Stop()

	l = readLedger(t, admin, p, "interval", "tick", every)
	fired, skipped := l.check(t)
	if skipped < 1 {
		t.Errorf("a 7 s outage of a 2 s interval skipped %d ticks, want ≥1 (catch_up latest fires only the newest)", skipped)
	}
	l.checkLatest(t)
	t.Logf("%d ticks fired, %d skipped", fired, skipped)
}

// TestIntervalTriggerFaults is the fault test: while an interval
// subscription (every 2 s, catch_up latest) ticks for about 100 s on 3
// nodes, the leader is SIGKILLed twice and the extension's container (run
// by the leader's supervisor) once.
// Afterwards every tick up to the watermark has exactly one run or one
// skipped-tick event, skips only ever precede a fired tick (latest), and
// the extension kept up to the end. It takes ~2 minutes; it runs in
// parallel with the other parallel tests.
func TestIntervalTriggerFaults(t *testing.T) {
	t.Parallel()
	const p, every = "faulted", 2 * time.Second
	c, admin, ext := triggersSetup(t, p, every, true)
	start := time.Now()
	at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))) }

	killLeader := func() {
		l := c.Leader()
		t.Logf("%s: SIGKILL leader %s", time.Since(start).Round(time.Second), l.Name)
		l.Kill()
		c.Leader(l) // a new leader among the others
		time.Sleep(3 * time.Second)
		l.Start()
	}
	at(20 * time.Second)
	killLeader()
	at(45 * time.Second)
	t.Logf("%s: SIGKILL the extension's container", time.Since(start).Round(time.Second))
	killedAt := time.Now()
	ext.Kill()
	ext.Start() // the supervisor restarts it
	outage, restartedAt, readyAt := time.Since(killedAt), ext.StartedAt(), time.Now()
	t.Logf("%s: the extension runs again after %s", time.Since(start).Round(time.Second), outage.Round(100*time.Millisecond))
	at(70 * time.Second)
	killLeader()
	at(100 * time.Second)
	end := time.Now()
	c.WaitForMembers(3)
	waitWatermark(t, admin, p, end.Add(-2*every), 30*time.Second)
	ext.Stop()

	l := readLedger(t, admin, p, "interval", "tick", every)
	fired, skipped := l.check(t)
	l.checkLatest(t)
	// The ticks that fell while no extension process ran (from the kill,
	// with a second's margin for a tick the old process was already
	// firing, to the new container's start) cannot have fired on time:
	// catch_up latest fires at most the newest of them and skips the rest.
	// (The outage logged above also counts the supervisor's health checks,
	// so it overstates how long no process ran.)
	gap := l.ticksBetween(killedAt.Add(time.Second), restartedAt)
	for _, u := range gap[:max(len(gap)-1, 0)] {
		if l.skipped[u] != 1 {
			t.Errorf("tick %d fell while the extension was down and is not the newest such tick (%v), yet it was not recorded as skipped", u, gap)
		}
	}
	// And no tick outside that outage was skipped: through the leader
	// failovers the extension's retries (same key) fire every tick, late.
	for u := range l.skipped {
		if at := time.Unix(u, 0); at.Before(killedAt.Add(-every)) || at.After(readyAt.Add(every)) {
			t.Errorf("tick %d (%s) was skipped outside the extension's outage (%s to %s)", u, at.UTC().Format(time.TimeOnly),
				killedAt.UTC().Format(time.TimeOnly), readyAt.UTC().Format(time.TimeOnly))
		}
	}
	t.Logf("%d ticks: %d fired, %d skipped (recorded as events)", fired+skipped, fired, skipped)
}

// hostProcessImage is the image of extensions the tests run as host
// processes: present on no engine, so the supervisor never starts them.
const hostProcessImage = "example/host-process-extension:none"

// TestSkippedTicksRoute: the skipped-ticks route takes the subscription's
// extension's own token or an admin's, refuses another extension's and a
// user's (403), refuses bad bodies naming the field (400, 413), records
// each tick once as an event in the pipeline and moves the watermark.
func TestSkippedTicksRoute(t *testing.T) {
	// Nothing runs the extensions here: subscriptions get the built-in
	// check only.
	c := NewCluster(t, 1, "GOFER_WEB_EXTENSIONS__INSTALL_STD_EXTENSIONS=false", "GOFER_WEB_EXTENSIONS__CALL_EXTENSIONS=false")
	ctx := context.Background()
	admin := c.Client()
	const p = "skipping"
	cfg := &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{{ID: "quick", Image: "gofer/busybox:latest", Command: []string{"true"}}}}
	if _, err := admin.RegisterConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DeployConfig(ctx, p, 1); err != nil {
		t.Fatal(err)
	}
	own, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "interval", Image: hostProcessImage, Settings: map[string]string{"MIN_INTERVAL": "1s"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "cron", Image: hostProcessImage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Subscribe(ctx, p, "interval", "tick", map[string]string{"every": "1m"}); err != nil {
		t.Fatal(err)
	}
	user, err := admin.CreateToken(ctx, "skip-user", []string{"user"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := c.Nodes[0].URL + "/api/namespaces/default/pipelines/" + p + "/subscriptions/interval/tick/skipped-ticks"
	send := func(token, body string) int {
		t.Helper()
		resp, err := rawRequest("POST", url, token, body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tick := time.Now().Truncate(time.Second).Unix() // the subscription is a moment old
	body := fmt.Sprintf(`{"ticks":[%d,%d],"reason":"test"}`, tick, tick+30)
	for _, tc := range []struct {
		name, token, body string
		want              int
	}{
		{"another extension", other.Token.Secret, body, 403},
		{"a user token", user.Secret, body, 403},
		{"no ticks", own.Token.Secret, `{"reason":"x"}`, 400},
		{"a bad tick", own.Token.Secret, `{"ticks":[-5]}`, 400},
		{"a tick an hour ahead", own.Token.Secret, fmt.Sprintf(`{"ticks":[%d]}`, tick+3600), 400},
		{"a tick before the subscription", own.Token.Secret, fmt.Sprintf(`{"ticks":[%d]}`, tick-3600), 400},
		{"501 ticks", own.Token.Secret, `{"ticks":[` + strings.Repeat("1,", 500) + `1]}`, 400},
		{"over the body limit", own.Token.Secret, `{"ticks":[],"reason":"` + strings.Repeat("x", 20<<10) + `"}`, 413},
		{"its own extension", own.Token.Secret, body, 200},
		{"an admin, again", c.Token, body, 200},
	} {
		if got := send(tc.token, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	sub, err := admin.Consistent().GetSubscription(ctx, p, "interval", "tick")
	if err != nil || sub.Watermark != (tick+30)*1000 {
		t.Fatalf("watermark %+v %v, want %d", sub, err, (tick+30)*1000)
	}
	evs, err := admin.Consistent().ListEvents(ctx, client.Page{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == "skipped_trigger_tick" {
			n++
			if e.NamespaceID != "default" || e.PipelineID != p || e.Actor != "interval (extension)" {
				t.Errorf("event %+v", e)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d skip events, want 2 (the admin's repeat records nothing)", n)
	}

	// The CLI shows the last tick decided (the watermark: here a skip),
	// the last fired one (none) and the next one.
	out, err := runCLI(t, []string{"GOFER_API_BASE_URL=" + c.Nodes[0].URL, "GOFER_TOKEN=" + c.Token}, "pipeline", "subscription", "get", p, "interval", "tick")
	last := time.Unix(tick+30, 0).UTC().Format(time.RFC3339)
	if err != nil || !strings.Contains(out, "last tick (fired or skipped):") || !strings.Contains(out, last) || !strings.Contains(out, "next tick:") ||
		!strings.Contains(out, "last fired tick:") || !strings.Contains(out, "(none yet)") {
		t.Fatalf("subscription get: %v\n%s\nwant last tick %s and a next tick", err, out, last)
	}
}
