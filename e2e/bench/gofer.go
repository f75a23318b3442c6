package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// goferCluster is 3 gofer processes on 127.0.0.1: node1 bootstraps,
// node2 and node3 join it with the cluster secret.
type goferCluster struct {
	nodes      []*goferNode
	token      string
	bodies     [][]byte // {"description": <256 bytes>}
	namespaces []string
}

type goferNode struct {
	name      string
	url       string
	pprofAddr string
	proc      *proc
}

// benchSecret lets nodes join; any 32+ characters.
const benchSecret = "gofer-bench-cluster-secret-0123456789abcdef"

type goferOptions struct {
	bin        string
	heartbeat  time.Duration
	election   time.Duration
	namespaces int
	pprof      bool // serve Go's profiler (server.pprof_addr)
	extraEnv   []string
}

func startGofer(ctx context.Context, reg *procs, dir string, size int, payloads []string, o goferOptions) (*goferCluster, error) {
	c := &goferCluster{}
	for _, p := range payloads {
		b, _ := json.Marshal(map[string]string{"description": p})
		c.bodies = append(c.bodies, b)
	}
	// An empty config file keeps /etc/gofer/gofer.toml, if a machine has
	// one, out of the benchmark.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "gofer.toml")
	if err := os.WriteFile(cfgPath, []byte("# gofer bench: defaults + GOFER_WEB_* env\n"), 0o644); err != nil {
		return nil, err
	}
	lease := min(500*time.Millisecond, o.heartbeat/2)
	env := append([]string{
		"GOFER_WEB_CLUSTER__SECRET=" + benchSecret,
		"GOFER_WEB_SECRET_STORE__ENCRYPTION_KEY=gofer-bench-secret-store-key-6a2f0e9d4c1b",
		// Throughput is the measure: one token writes far above the
		// default api.rate_limit.
		"GOFER_WEB_API__RATE_LIMIT=0",
		"GOFER_WEB_API__ANONYMOUS_RATE_LIMIT=0",
		"GOFER_WEB_RAFT__HEARTBEAT_TIMEOUT=" + o.heartbeat.String(),
		"GOFER_WEB_RAFT__ELECTION_TIMEOUT=" + o.election.String(),
		"GOFER_WEB_RAFT__LEADER_LEASE_TIMEOUT=" + lease.String(),
	}, o.extraEnv...)
	var first string
	for i := 1; i <= size; i++ {
		name := fmt.Sprintf("node%d", i)
		api, err := freePort()
		if err != nil {
			return nil, err
		}
		raft, err := freePort()
		if err != nil {
			return nil, err
		}
		n := &goferNode{name: name, url: fmt.Sprintf("http://127.0.0.1:%d", api)}
		args := []string{"service", "start", "--config", cfgPath, "--node-id", name,
			"--data-dir", filepath.Join(dir, name), "--api-addr", fmt.Sprintf("127.0.0.1:%d", api),
			"--raft-addr", fmt.Sprintf("127.0.0.1:%d", raft)}
		if i == 1 {
			args = append(args, "--bootstrap")
			first = n.url
		} else {
			args = append(args, "--join", first)
		}
		nenv := env
		if o.pprof {
			pp, err := freePort()
			if err != nil {
				return nil, err
			}
			n.pprofAddr = fmt.Sprintf("127.0.0.1:%d", pp)
			nenv = append(append([]string{}, env...), "GOFER_WEB_SERVER__PPROF_ADDR="+n.pprofAddr)
		}
		n.proc = reg.newProc("gofer "+name, o.bin, args, nenv, filepath.Join(dir, name+".log"))
		c.nodes = append(c.nodes, n)
	}
	fail := func(err error) (*goferCluster, error) {
		return nil, fmt.Errorf("gofer cluster did not come up: %w\n--- %s:\n%s", err, c.nodes[0].name, tail(c.nodes[0].proc.logPath, 20))
	}
	// The first node bootstraps and elects itself; the others then join.
	if err := c.nodes[0].proc.start(); err != nil {
		return nil, err
	}
	if err := waitFor(60*time.Second, "node1 leader", func() error {
		if err := exited(c.nodes[0].proc); err != nil {
			return err
		}
		h, err := c.health(ctx, 0)
		if err != nil {
			return err
		}
		if h.State != "Leader" {
			return fmt.Errorf("node1 is %s", h.State)
		}
		return nil
	}); err != nil {
		return fail(err)
	}
	for _, n := range c.nodes[1:] {
		if err := n.proc.start(); err != nil {
			return nil, err
		}
	}
	if err := waitFor(60*time.Second, "gofer members", func() error {
		for i := range c.nodes {
			if err := exited(c.nodes[i].proc); err != nil {
				return err
			}
			h, err := c.health(ctx, i)
			if err != nil {
				return err
			}
			if !h.KnownLeader {
				return fmt.Errorf("%s knows no leader", c.nodes[i].name)
			}
		}
		_, err := c.Leader(ctx)
		return err
	}); err != nil {
		return fail(err)
	}
	li, err := c.Leader(ctx)
	if err != nil {
		return fail(err)
	}
	var tok struct {
		Secret string `json:"secret"`
	}
	if err := waitFor(30*time.Second, "bootstrap token", func() error {
		status, body, _, err := c.do(ctx, http.DefaultClient, http.MethodPost, c.nodes[li].url+"/api/tokens/bootstrap", nil)
		if err != nil {
			return err
		}
		if status != http.StatusCreated {
			return fmt.Errorf("POST /api/tokens/bootstrap: %d %s", status, body)
		}
		return json.Unmarshal(body, &tok)
	}); err != nil {
		return fail(err)
	}
	c.token = tok.Secret
	hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.WaitHealthy(hctx); err != nil {
		return fail(err)
	}
	// The leader starts the built-in extensions as containers labelled
	// with the cluster id; they outlive the killed nodes unless removed.
	if h, err := c.health(ctx, li); err == nil && h.ClusterID != "" {
		cleanupLabels.add("gofer.cluster=" + h.ClusterID)
	}
	if err := c.createNamespaces(ctx, o.namespaces); err != nil {
		return fail(err)
	}
	return c, nil
}

// createNamespaces makes k0000001…kNNNNNNN, 16 at a time, on the leader.
func (c *goferCluster) createNamespaces(ctx context.Context, n int) error {
	li, err := c.Leader(ctx)
	if err != nil {
		return err
	}
	hc := newHTTPClient(32, 0)
	defer hc.CloseIdleConnections()
	ids := make(chan string)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				body, _ := json.Marshal(map[string]string{"id": id, "name": id, "description": "gofer bench namespace"})
				status, rb, _, err := c.do(ctx, hc, http.MethodPost, c.nodes[li].url+"/api/namespaces", body)
				if err == nil && status != http.StatusCreated {
					err = fmt.Errorf("POST /api/namespaces %s: %d %s", id, status, rb)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("k%07d", i)
		c.namespaces = append(c.namespaces, id)
		ids <- id
	}
	close(ids)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func newHTTPClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns + 16,
			MaxIdleConnsPerHost: conns + 16,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// do sends one API request with the version header and the token and reads
// the whole response, so keep-alive connections are reused.
func (c *goferCluster) do(ctx context.Context, hc *http.Client, method, url string, body []byte) (int, []byte, http.Header, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("gofer-api-version", "v0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	return resp.StatusCode, rb, resp.Header, err
}

// patch is the measured write: PATCH /api/namespaces/{id} with a 256-byte
// description, a replicated state change that also appends an event.
func (c *goferCluster) patch(ctx context.Context, hc *http.Client, base string, rng *rand.Rand) error {
	id := c.namespaces[rng.IntN(len(c.namespaces))]
	status, rb, _, err := c.do(ctx, hc, http.MethodPatch, base+"/api/namespaces/"+id, c.bodies[rng.IntN(len(c.bodies))])
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		if len(rb) > 200 {
			rb = rb[:200]
		}
		return fmt.Errorf("PATCH %s: %d %s", id, status, rb)
	}
	return nil
}

type goferHealth struct {
	ClusterID    string `json:"cluster_id"`
	NodeID       string `json:"node_id"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	KnownLeader  bool   `json:"known_leader"`
	AppliedIndex uint64 `json:"applied_index"`
}

var healthClient = newHTTPClient(8, 2*time.Second)

func (c *goferCluster) health(ctx context.Context, i int) (*goferHealth, error) {
	status, body, _, err := c.do(ctx, healthClient, http.MethodGet, c.nodes[i].url+"/api/system/health", nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.nodes[i].name, err)
	}
	var h goferHealth
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, fmt.Errorf("%s: health %d: %w", c.nodes[i].name, status, err)
	}
	return &h, nil
}

func (c *goferCluster) Name() string            { return "gofer" }
func (c *goferCluster) Size() int               { return len(c.nodes) }
func (c *goferCluster) MemberName(i int) string { return c.nodes[i].name }
func (c *goferCluster) Kill(i int)              { c.nodes[i].proc.kill() }
func (c *goferCluster) Restart(i int) error     { return c.nodes[i].proc.start() }
func (c *goferCluster) Pause(i int)             { c.nodes[i].proc.signal(syscall.SIGSTOP) }
func (c *goferCluster) Resume(i int)            { c.nodes[i].proc.signal(syscall.SIGCONT) }

func (c *goferCluster) stop() {
	for _, n := range c.nodes {
		n.proc.kill()
	}
}

// Leader returns the node every running node names as leader (health
// state "Leader").
func (c *goferCluster) Leader(ctx context.Context) (int, error) {
	leaderID := ""
	idx := -1
	for i, n := range c.nodes {
		if !n.proc.running() {
			continue
		}
		h, err := c.health(ctx, i)
		if err != nil {
			return -1, err
		}
		if !h.KnownLeader {
			return -1, fmt.Errorf("%s knows no leader", n.name)
		}
		if leaderID != "" && h.Leader != leaderID {
			return -1, fmt.Errorf("nodes disagree on the leader: %s vs %s", leaderID, h.Leader)
		}
		leaderID = h.Leader
		if h.State == "Leader" && h.NodeID == n.name {
			idx = i
		}
	}
	if idx < 0 {
		return -1, fmt.Errorf("no running node is leader %q yet", leaderID)
	}
	return idx, nil
}

// WaitHealthy waits for an agreed leader, a successful write through it
// (once a token exists) and then for every node to apply that write.
func (c *goferCluster) WaitHealthy(ctx context.Context) error {
	timeout := 60 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	var index uint64
	if err := waitFor(timeout, "gofer leader accepts a write", func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, n := range c.nodes {
			if err := exited(n.proc); err != nil {
				return err
			}
		}
		li, err := c.Leader(ctx)
		if err != nil {
			return err
		}
		if c.token == "" {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		status, body, hdr, err := c.do(wctx, healthClient, http.MethodPatch, c.nodes[li].url+"/api/namespaces/default",
			[]byte(`{"description":"gofer bench health check"}`))
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("health write: %d %s", status, body)
		}
		index, err = strconv.ParseUint(hdr.Get("X-Gofer-Index"), 10, 64)
		if err != nil {
			return fmt.Errorf("health write: no X-Gofer-Index: %w", err)
		}
		return nil
	}); err != nil {
		return err
	}
	return waitFor(timeout, "gofer nodes catch up", func() error {
		for i, n := range c.nodes {
			if err := exited(n.proc); err != nil {
				return err
			}
			h, err := c.health(ctx, i)
			if err != nil {
				return err
			}
			if h.AppliedIndex < index {
				return fmt.Errorf("%s applied %d, want %d", n.name, h.AppliedIndex, index)
			}
		}
		return nil
	})
}

// WriterVia PATCHes through node i with a fresh keep-alive client.
func (c *goferCluster) WriterVia(i int) (func(ctx context.Context, rng *rand.Rand) error, func(), error) {
	hc := newHTTPClient(2, 0)
	base := c.nodes[i].url
	write := func(ctx context.Context, rng *rand.Rand) error { return c.patch(ctx, hc, base, rng) }
	return write, hc.CloseIdleConnections, nil
}

// writeLoad returns the measured op against the leader with a keep-alive
// client sized for conns concurrent requests.
func (c *goferCluster) writeLoad(ctx context.Context, conns int) (opFunc, func(), int, error) {
	li, err := c.Leader(ctx)
	if err != nil {
		return nil, nil, -1, err
	}
	hc := newHTTPClient(conns, 0)
	base := c.nodes[li].url
	op := func(ctx context.Context, w int, rng *rand.Rand) error { return c.patch(ctx, hc, base, rng) }
	return op, hc.CloseIdleConnections, li, nil
}
