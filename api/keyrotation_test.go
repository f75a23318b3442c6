package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestRotateEncryptionKeyInputs: the rotation routes refuse bad bodies
// with a clear error and no write, and report the node's keys.
func TestRotateEncryptionKeyInputs(t *testing.T) {
	const key, previous = "4d7a1c9e3b5f8a2d6c0e4b8f1a3d5c7e", "8e2c4a6f0b1d3e5a7c9f2b4d6e8a0c1f"
	cl, url := devNode(t, func(c *agent.Config) {
		c.Scheduler.Engine = "noop"
		c.Secrets.EncryptionKey, c.Secrets.PreviousEncryptionKeys = key, []string{previous}
	})
	ctx := context.Background()
	send := func(method, path, body string) (int, string) {
		return sendRaw(t, url, method, path, body, "application/json")
	}
	const rotate = "/api/system/encryption-key/rotate"
	for _, tc := range []struct {
		body   string
		status int
		names  string
	}{
		{`{"abort":"yes"}`, 400, "abort"},
		{`{"colour":"red"}`, 400, "colour"},
		{`{"abort":false,"pad":"` + strings.Repeat("x", 2<<10) + `"}`, 413, ""},
		{`{"abort":true}`, 409, "no encryption key rotation is running"},
	} {
		status, body := send(http.MethodPost, rotate, tc.body)
		if status != tc.status || !strings.Contains(body, tc.names) {
			t.Errorf("POST %s %.40s: %d %.200s; want %d naming %q", rotate, tc.body, status, body, tc.status, tc.names)
		}
	}
	st, err := cl.EncryptionKeyRotation(ctx)
	if err != nil || st.Rotation != nil || len(st.NodeKeyChecks) != 2 {
		t.Fatalf("status after refused requests: %+v %v; want no rotation and two keys", st, err)
	}
	// The first secret is sealed under the configured key: nothing to rotate.
	if _, err := cl.PutSecret(ctx, client.SecretScope{}, "ggg", "value-1234", []string{".*"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RotateEncryptionKey(ctx, false); !client.IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "nothing to rotate") {
		t.Fatalf("rotate with everything under the configured key: %v, want 409", err)
	}
	st, err = cl.EncryptionKeyRotation(ctx)
	if err != nil || st.KeyCheck != st.NodeKeyChecks[0] || st.Total.Secrets != 1 || st.Remaining.Sum() != 0 {
		t.Fatalf("status: %+v %v", st, err)
	}
}

// Two keys for the restart tests: data is first sealed under keyA.
const keyA, keyB = "4d7a1c9e3b5f8a2d6c0e4b8f1a3d5c7e", "8e2c4a6f0b1d3e5a7c9f2b4d6e8a0c1f"

// restartableNode runs a dev node on a fixed data dir and addresses, so a
// test can stop it and start it again with other keys.
type restartableNode struct {
	t    *testing.T
	cfg  agent.Config
	stop func()
}

func newRestartableNode(t *testing.T) *restartableNode {
	cfg := agent.DefaultConfig()
	cfg.Server.DataDir = t.TempDir()
	cfg.Server.APIAddr = freeAddr(t)
	cfg.Server.RaftAddr = freeAddr(t)
	cfg = agent.DevConfig(cfg)
	// No standard extensions: these tests count tokens and sealed run
	// tokens, and the in-process node's executable is this test binary,
	// not a gofer to make extension images of.
	cfg.Extensions.InstallStdExtensions = false
	cfg.Scheduler.Engine = "noop"
	return &restartableNode{t: t, cfg: cfg}
}

// start runs the node with the given keys and waits until it serves.
func (n *restartableNode) start(mutate func(*agent.Config)) *client.Client {
	t := n.t
	t.Helper()
	cfg := n.cfg
	mutate(&cfg)
	a, err := agent.New(cfg, model.Metadata{Semver: "test"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with: %v", err)
		}
	}
	t.Cleanup(n.stop)
	cl, err := client.New([]string{"http://" + cfg.Server.APIAddr})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := cl.ListNamespaces(context.Background(), client.Page{}); err == nil {
			return cl
		}
		if time.Now().After(deadline) {
			t.Fatal("dev node never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAbortTwiceStaysARollback: the operator's CLI times out on --abort
// and they run it again. The second abort must leave the rollback running
// back to the old key, not turn it into a rotation to the new key again.
func TestAbortTwiceStaysARollback(t *testing.T) {
	n := newRestartableNode(t)
	cl := n.start(func(c *agent.Config) { c.Secrets.EncryptionKey = keyA })
	ctx := context.Background()
	for _, k := range []string{"aaa", "bbb", "ccc", "ddd"} {
		if _, err := cl.PutSecret(ctx, client.SecretScope{}, k, "value-of-"+k, []string{".*"}, false); err != nil {
			t.Fatal(err)
		}
	}
	n.stop()
	// The new key rolled out; one value per batch and an hour between
	// batches, so the rotation stays mid-way for the test.
	cl = n.start(func(c *agent.Config) {
		c.Secrets.EncryptionKey, c.Secrets.PreviousEncryptionKeys = keyB, []string{keyA}
		c.Secrets.RotationBatchSize, c.Secrets.RotationBatchInterval = 1, agent.Duration(time.Hour)
	})
	st, err := cl.RotateEncryptionKey(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	oldCheck, newCheck := st.Rotation.Source, st.Rotation.Target
	for i := 1; i <= 3; i++ {
		st, err := cl.RotateEncryptionKey(ctx, true)
		if err != nil {
			t.Fatalf("abort %d: %v", i, err)
		}
		if r := st.Rotation; r.Target != oldCheck || r.Source != newCheck || !r.Aborted {
			t.Fatalf("after abort %d: %+v; want a rollback to %s", i, r, oldCheck)
		}
	}
}

// TestRunTokenNeedsTheClusterKey: a leader that lacks the cluster's key
// cannot seal a run token the cluster can open: a run that needs one is
// refused with a 409 saying so (no token sealed under another key, which
// would show as "remaining" with no rotation running and which no other
// leader could open); a run that needs none still starts.
func TestRunTokenNeedsTheClusterKey(t *testing.T) {
	n := newRestartableNode(t)
	cl := n.start(func(c *agent.Config) { c.Secrets.EncryptionKey = keyA })
	ctx := context.Background()
	if _, err := cl.PutSecret(ctx, client.SecretScope{}, "aaa", "value-1234", []string{".*"}, false); err != nil {
		t.Fatal(err)
	}
	for i, p := range []*sdk.PipelineConfig{
		sdk.NewPipeline("tok", "tok").Tasks(sdk.NewTask("tsk", "img").InjectAPIToken(true)).Config(),
		sdk.NewPipeline("plain", "plain").Tasks(sdk.NewTask("tsk", "img")).Config(),
	} {
		if _, err := cl.RegisterConfig(ctx, p); err != nil {
			t.Fatal(i, err)
		}
		if _, err := cl.DeployConfig(ctx, p.ID, 1); err != nil {
			t.Fatal(i, err)
		}
	}
	n.stop()
	cl = n.start(func(c *agent.Config) { c.Secrets.EncryptionKey = keyB }) // the cluster's key is missing
	_, err := cl.StartRun(ctx, "tok", nil)
	if !client.IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "encryption_key") {
		t.Fatalf("a run needing a token on a leader without the cluster's key: %v; want 409 naming the key", err)
	}
	if _, err := cl.StartRun(ctx, "plain", nil); err != nil {
		t.Fatalf("a run needing no token: %v", err)
	}
	st, err := cl.EncryptionKeyRotation(ctx)
	if err != nil || st.Remaining.Sum() != 0 || st.Total.RunTokens != 0 {
		t.Fatalf("status: %+v %v; want no run token and nothing remaining", st, err)
	}
}

// TestHealthHidesKeyChecks: the anonymous health answer carries no key
// material; another node (the cluster secret) and an admin see the node's
// key checks, which the leader's pre-rotation check of every voter needs.
func TestHealthHidesKeyChecks(t *testing.T) {
	const secret = "health-test-cluster-secret-0123456789"
	_, url := devNode(t, func(c *agent.Config) {
		c.Scheduler.Engine = "noop"
		c.Secrets.EncryptionKey, c.Cluster.Secret = keyA, secret
	})
	health := func(header, value string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url+"/api/system/health", nil)
		if header != "" {
			req.Header.Set(header, value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for _, tc := range []struct {
		header, value string
		want          bool
	}{
		{"", "", false},
		{"X-Gofer-Cluster-Secret", "not-the-secret-0123456789abcdefghij", false},
		{"X-Gofer-Cluster-Secret", secret, true},
		{"Authorization", "Bearer anything", true}, // dev mode: every caller is an admin
	} {
		if body := health(tc.header, tc.value); strings.Contains(body, "key_checks") != tc.want {
			t.Errorf("health with %s %q: %s; want key checks listed: %v", tc.header, tc.value, body, tc.want)
		}
	}
}
