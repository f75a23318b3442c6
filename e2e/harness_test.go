// Package e2e runs clusters of real gofer processes on 127.0.0.1 and
// checks what users rely on: replication, failover, restarts, backups,
// authorization, and a real load balancer in front.
package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// goferBin is the binary under test: $GOFER_BIN, or built once by TestMain.
var goferBin string

func TestMain(m *testing.M) {
	goferBin = os.Getenv("GOFER_BIN")
	if goferBin == "" {
		dir, err := os.MkdirTemp("", "gofer-e2e-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		goferBin = filepath.Join(dir, "gofer")
		build := exec.Command("go", "build", "-o", goferBin, "..")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build gofer:", err)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// envNoFile, in a node's Env (GOFER_E2E_NOFILE=N), starts it with an
// open-file limit of N instead of the test process's.
const envNoFile = "GOFER_E2E_NOFILE"

// testSecret is the cluster secret test clusters share.
const testSecret = "e2e-cluster-secret-0123456789abcdef"

// testEncryptionKey seals the secrets of test clusters (every node needs
// the same one).
const testEncryptionKey = "e2e-secret-store-key-5f1d9c3a7b2e8d40"

// fastRaft makes elections quick enough for tests while staying well
// above loopback latency.
var fastRaft = []string{
	"GOFER_WEB_RAFT__HEARTBEAT_TIMEOUT=500ms",
	"GOFER_WEB_RAFT__ELECTION_TIMEOUT=500ms",
	"GOFER_WEB_RAFT__LEADER_LEASE_TIMEOUT=250ms",
}

var (
	portMu   sync.Mutex
	usedPort = map[int]bool{}
)

// freePort finds a loopback port nobody in this process has used.
func freePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for i := 0; i < 100; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !usedPort[port] {
			usedPort[port] = true
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// Node is one gofer server process.
type Node struct {
	t        testing.TB
	Name     string
	Dir      string
	APIAddr  string
	RaftAddr string
	URL      string
	// Args are passed to `gofer service start` after the address flags.
	Args []string
	// Env is added to the process environment.
	Env []string
	// TLS verifies an https node (tls_test.go); nil for http nodes.
	TLS *tls.Config

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	starts  int
	paused  bool // SIGSTOPped by Pause
}

// NewNode prepares (but does not start) a node with fresh ports and dir.
func NewNode(t testing.TB, name string, args ...string) *Node {
	t.Helper()
	api, raft := freePort(t), freePort(t)
	n := &Node{
		t:        t,
		Name:     name,
		Dir:      filepath.Join(t.TempDir(), name),
		APIAddr:  fmt.Sprintf("127.0.0.1:%d", api),
		RaftAddr: fmt.Sprintf("127.0.0.1:%d", raft),
		Args:     args,
		// Standard extensions are off unless a test asks for them: two
		// containers per cluster, health-checked, are load every other
		// test would carry for nothing.
		Env: append([]string{"GOFER_WEB_CLUSTER__SECRET=" + testSecret,
			"GOFER_WEB_SECRET_STORE__ENCRYPTION_KEY=" + testEncryptionKey,
			"GOFER_WEB_EXTENSIONS__INSTALL_STD_EXTENSIONS=false"}, fastRaft...),
	}
	n.URL = "http://" + n.APIAddr
	n.logPath = filepath.Join(filepath.Dir(n.Dir), name+".log")
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			n.dumpLog(60)
		}
	})
	return n
}

// Start launches the process.
func (n *Node) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.t.Fatalf("%s is already running", n.Name)
	}
	args := append([]string{"service", "start", "--node-id", n.Name, "--data-dir", n.Dir,
		"--api-addr", n.APIAddr, "--raft-addr", n.RaftAddr}, n.Args...)
	log, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	n.starts++
	fmt.Fprintf(log, "\n===== start #%d: gofer %s\n", n.starts, strings.Join(args, " "))
	cmd := exec.Command(goferBin, args...)
	env := n.Env
	if i := slices.IndexFunc(env, func(kv string) bool { return strings.HasPrefix(kv, envNoFile+"=") }); i >= 0 {
		// Run the node with this open-file limit (soft and hard), so
		// that it cannot raise it.
		limit := strings.TrimPrefix(env[i], envNoFile+"=")
		env = slices.Delete(slices.Clone(env), i, i+1)
		cmd = exec.Command("/bin/sh", append([]string{"-c", `ulimit -n "$0" && exec "$@"`, limit, goferBin}, args...)...)
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		n.t.Fatalf("start %s: %v", n.Name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
}

// Running reports whether the process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *Node) Kill() { n.signal(syscall.SIGKILL, 5*time.Second) }

// Stop sends SIGTERM (graceful shutdown) and waits.
func (n *Node) Stop() { n.signal(syscall.SIGTERM, 30*time.Second) }

// Pause freezes the process (SIGSTOP): it holds its sockets open but
// answers nothing, like a hung host. Kill, Stop and cleanup resume it first.
func (n *Node) Pause() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		n.t.Fatalf("%s is not running", n.Name)
	}
	if err := n.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		n.t.Fatalf("pause %s: %v", n.Name, err)
	}
	n.paused = true
}

// Resume lets a paused process run again (SIGCONT).
func (n *Node) Resume() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.resumeLocked()
}

func (n *Node) resumeLocked() {
	if n.cmd != nil && n.paused {
		_ = n.cmd.Process.Signal(syscall.SIGCONT)
	}
	n.paused = false
}

// Pid is the running process's id (0 when not running).
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

func (n *Node) signal(sig syscall.Signal, wait time.Duration) {
	n.mu.Lock()
	// A stopped process would not act on SIGTERM.
	n.resumeLocked()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		n.t.Errorf("%s did not exit within %s of %v", n.Name, wait, sig)
	}
}

// Restart starts the node again with the same data dir and flags.
func (n *Node) Restart() {
	n.t.Helper()
	n.Kill()
	n.Start()
}

func (n *Node) dumpLog(lines int) {
	f, err := os.Open(n.logPath)
	if err != nil {
		return
	}
	defer f.Close()
	var all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	n.t.Logf("---- last %d log lines of %s ----\n%s", len(all), n.Name, strings.Join(all, "\n"))
}

// Health asks the node about itself.
func (n *Node) Health() (*model.Health, error) {
	cl, err := client.New([]string{n.URL}, client.WithRetryFor(0), client.WithTLS(n.TLS))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h, err := cl.Health(ctx)
	if err != nil && h != nil && h.NodeID != "" {
		return h, nil // a 503 still carries the body
	}
	return h, err
}

// Client talks to this node only.
func (n *Node) Client(token string) *client.Client {
	n.t.Helper()
	cl, err := client.New([]string{n.URL}, client.WithToken(token), client.WithRetryFor(10*time.Second), client.WithTLS(n.TLS))
	if err != nil {
		n.t.Fatal(err)
	}
	return cl
}

// Cluster is a set of nodes that formed one raft cluster.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
	// Token is the bootstrap admin token.
	Token string
}

// NewCluster starts size nodes, with env (KEY=VALUE) added to each: the
// first bootstraps, the rest join it with the cluster secret. It waits
// until every node agrees on a leader and then creates the admin token.
func NewCluster(t testing.TB, size int, env ...string) *Cluster {
	t.Helper()
	return NewClusterEach(t, size, nil, env...)
}

// NewClusterEach is NewCluster with nodeEnv(name)'s KEY=VALUE added to
// that node's environment after env: a cluster whose nodes differ (one on
// another raft.log_store, say). nodeEnv may be nil.
func NewClusterEach(t testing.TB, size int, nodeEnv func(name string) []string, env ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	// Extension containers outlive their nodes (a leader leaves them
	// running for the next, agent/supervisor): remove whatever the
	// cluster left on the engine once its nodes are gone (registered
	// first, so it runs after the nodes' cleanups).
	var clusterID string
	t.Cleanup(func() {
		if clusterID != "" {
			removeContainers(t, clusterID)
		}
	})
	first := NewNode(t, "node1", "--bootstrap")
	c.Nodes = append(c.Nodes, first)
	for i := 2; i <= size; i++ {
		c.Nodes = append(c.Nodes, NewNode(t, fmt.Sprintf("node%d", i), "--join", first.URL))
	}
	for _, n := range c.Nodes {
		n.Env = append(n.Env, env...)
		if nodeEnv != nil {
			n.Env = append(n.Env, nodeEnv(n.Name)...)
		}
		n.Start()
	}
	c.WaitForMembers(size)
	if h, err := first.Health(); err == nil {
		clusterID = h.ClusterID
	}
	tok, err := c.Client().BootstrapToken(context.Background())
	if err != nil {
		t.Fatalf("bootstrap token: %v", err)
	}
	c.Token = tok.Secret
	return c
}

// Client talks to every running node, failing over between them.
func (c *Cluster) Client() *client.Client {
	c.t.Helper()
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL)
	}
	cl, err := client.New(urls, client.WithToken(c.Token), client.WithTLS(c.Nodes[0].TLS))
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// WaitForMembers waits until every running node reports the same leader
// and the leader lists want members, all reachable.
func (c *Cluster) WaitForMembers(want int) *Node {
	c.t.Helper()
	var leader *Node
	WaitFor(c.t, 30*time.Second, func() error {
		l, err := c.agreedLeader(nil)
		if err != nil {
			return err
		}
		cl, err := client.New([]string{l.URL}, client.WithToken(c.Token), client.WithRetryFor(0), client.WithTLS(l.TLS))
		if err != nil {
			return err
		}
		h, _ := l.Health()
		if h == nil || h.ClusterID == "" {
			return fmt.Errorf("leader has no cluster id yet")
		}
		if c.Token == "" {
			leader = l
			return c.membersViaHealth(want)
		}
		ms, err := cl.Members(context.Background())
		if err != nil {
			return err
		}
		if len(ms) != want {
			return fmt.Errorf("%d members, want %d", len(ms), want)
		}
		for _, m := range ms {
			if !m.Reachable {
				return fmt.Errorf("member %s unreachable", m.ID)
			}
		}
		leader = l
		return nil
	})
	return leader
}

// membersViaHealth is WaitForMembers before any token exists: every
// running node must know the leader.
func (c *Cluster) membersViaHealth(want int) error {
	known := 0
	for _, n := range c.Nodes {
		if h, err := n.Health(); err == nil && h.KnownLeader {
			known++
		}
	}
	if known < want {
		return fmt.Errorf("%d of %d nodes know the leader", known, want)
	}
	return nil
}

// Leader waits until the running nodes (except those listed) agree on a
// leader and returns it.
func (c *Cluster) Leader(except ...*Node) *Node {
	c.t.Helper()
	var leader *Node
	WaitFor(c.t, 30*time.Second, func() (err error) {
		leader, err = c.agreedLeader(except)
		return err
	})
	return leader
}

func (c *Cluster) agreedLeader(except []*Node) (*Node, error) {
	skip := map[*Node]bool{}
	for _, n := range except {
		skip[n] = true
	}
	var leaderID string
	var leader *Node
	for _, n := range c.Nodes {
		if skip[n] || !n.Running() {
			continue
		}
		h, err := n.Health()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", n.Name, err)
		}
		if !h.KnownLeader {
			return nil, fmt.Errorf("%s knows no leader", n.Name)
		}
		if leaderID != "" && h.Leader != leaderID {
			return nil, fmt.Errorf("nodes disagree on the leader: %s vs %s", leaderID, h.Leader)
		}
		leaderID = h.Leader
		if h.State == "Leader" {
			leader = n
		}
	}
	if leader == nil || leader.Name != leaderID {
		return nil, fmt.Errorf("no running node is leader %q yet", leaderID)
	}
	return leader, nil
}

// Followers are the running nodes other than the leader.
func (c *Cluster) Followers() []*Node {
	leader := c.Leader()
	var out []*Node
	for _, n := range c.Nodes {
		if n != leader && n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// WaitFor retries fn until it returns nil or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 20 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s: %v", timeout, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// runCLI runs the gofer CLI and returns its combined output.
func runCLI(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, goferBin, args...)
	cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir()), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// rawRequest sends one HTTP request with the version header set.
func rawRequest(method, url, token string, body string) (*http.Response, error) {
	var r *strings.Reader
	if body != "" {
		r = strings.NewReader(body)
	} else {
		r = strings.NewReader("")
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("gofer-api-version", "v0")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return http.DefaultClient.Do(req)
}
