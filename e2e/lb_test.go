package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// lbTemplate is the documented HAProxy configuration; the test runs it
// with only the listen port and the server lines replaced.
const lbTemplate = "../docs/examples/haproxy.cfg"

// TestLBHAProxyFailoverKeepsCLIWorking puts a 3-node cluster behind a real
// HAProxy configured by docs/examples/haproxy.cfg and drives the gofer CLI
// through it while the leader is SIGKILLed: every command must succeed
// (the LB fails over, the CLI retries with the same idempotency key),
// every namespace must exist exactly once afterwards, followers must be in
// the pool, a live node that knows no leader must be kept out of it, and
// the killed node must come back into the pool and catch up.
func TestLBHAProxyFailoverKeepsCLIWorking(t *testing.T) {
	haproxy := lbHAProxyPath(t)
	c := NewCluster(t, 3)

	// A live node that knows no leader (it tries to join a cluster that
	// does not exist): its health check answers 503, so the LB must never
	// send it a request (it knows no tokens and holds no state).
	orphan := NewNode(t, "orphan", "--join", fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
	orphan.Start()
	WaitFor(t, 30*time.Second, func() error {
		resp, err := http.Get(orphan.URL + "/api/system/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var h model.Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusServiceUnavailable || h.KnownLeader {
			return fmt.Errorf("orphan health: %d %+v; want 503 without a leader", resp.StatusCode, h)
		}
		return nil
	})

	lb := lbStartHAProxy(t, haproxy, append(append([]*Node(nil), c.Nodes...), orphan))
	// Followers pass the health check too: every cluster node is UP.
	lb.waitStatus(t, map[string]string{"node1": "UP", "node2": "UP", "node3": "UP", "orphan": "DOWN"})
	lb.waitServedBy(t, "node1", "node2", "node3")

	cli := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, nil, append([]string{"-a", lb.URL, "--token", c.Token}, args...)...)
		if err != nil {
			t.Fatalf("gofer %s through the LB: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	createArgs := func(i int) []string {
		return []string{"-a", lb.URL, "--token", c.Token, "namespace", "create", fmt.Sprintf("lb-%d", i)}
	}
	checkCreate := func(i int, out string, err error) {
		t.Helper()
		id := fmt.Sprintf("lb-%d", i)
		if err != nil {
			t.Fatalf("gofer namespace create %s through the LB: %v\n%s", id, err, out)
		}
		if !strings.Contains(out, `"`+id+`"`) {
			t.Fatalf("namespace create %s printed %q", id, out)
		}
	}
	create := func(i int) {
		t.Helper()
		out, err := runCLI(t, nil, createArgs(i)...)
		checkCreate(i, out, err)
	}

	const total, killAt = 12, 4
	var killed *Node
	for i := 1; i <= total; i++ {
		if i != killAt {
			start := time.Now()
			create(i)
			if i > killAt && i <= killAt+2 {
				t.Logf("namespace create lb-%d took %s", i, time.Since(start).Round(time.Millisecond))
			}
			continue
		}
		// Kill the leader while this command is on its way, so it may be
		// cut off mid-flight; the following commands run during the
		// election.
		killed = c.Leader()
		t.Logf("SIGKILL leader %s during namespace create lb-%d", killed.Name, i)
		type result struct {
			out string
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, err := runCLI(t, nil, createArgs(i)...)
			done <- result{out, err}
		}()
		start := time.Now()
		killed.Kill()
		r := <-done
		checkCreate(i, r.out, r.err)
		t.Logf("namespace create lb-%d took %s", i, time.Since(start).Round(time.Millisecond))
	}
	newLeader := c.Leader(killed)
	t.Logf("new leader: %s", newLeader.Name)
	lb.waitStatus(t, map[string]string{killed.Name: "DOWN", "orphan": "DOWN"})

	want := map[string]bool{}
	for i := 1; i <= total; i++ {
		want[fmt.Sprintf("lb-%d", i)] = true
	}
	// A linearizable read through the LB sees every acknowledged write.
	ctx := context.Background()
	lbClient, err := client.New([]string{lb.URL}, client.WithToken(c.Token))
	if err != nil {
		t.Fatal(err)
	}
	consistent := lbClient.Consistent()
	list, err := consistent.ListNamespaces(ctx, client.Page{Limit: 1000})
	if err != nil {
		t.Fatalf("consistent list through the LB: %v", err)
	}
	if err := lbExactlyOnce(list, want); err != nil {
		t.Fatalf("consistent list through the LB: %v", err)
	}
	index := consistent.LastIndex()
	if index == 0 {
		t.Fatal("consistent read returned no X-Gofer-Index")
	}

	// The CLI reads through the LB from whichever node it lands on; a
	// default read may lag the leader by about the last contact plus a
	// replication round, so poll.
	WaitFor(t, 15*time.Second, func() error {
		var got struct {
			Namespaces []*model.Namespace `json:"namespaces"`
		}
		out := cli("namespace", "list", "--limit", "1000", "-o", "json")
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("namespace list -o json: %v\n%s", err, out)
		}
		return lbExactlyOnce(got.Namespaces, want)
	})

	// The killed node restarts (its state file is rebuilt from raft after
	// the crash), catches up, and re-enters the pool.
	killed.Start()
	caughtUp, err := client.New([]string{killed.URL}, client.WithToken(c.Token), client.WithRetryFor(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	list, err = caughtUp.AtLeast(index).ListNamespaces(ctx, client.Page{Limit: 1000})
	if err != nil {
		t.Fatalf("read %s directly with min_index=%d after restart: %v", killed.Name, index, err)
	}
	if err := lbExactlyOnce(list, want); err != nil {
		t.Fatalf("%s after restart (min_index=%d): %v", killed.Name, index, err)
	}
	lb.waitStatus(t, map[string]string{"node1": "UP", "node2": "UP", "node3": "UP", "orphan": "DOWN"})
	lb.waitServedBy(t, killed.Name)

	// The whole cluster keeps working through the LB afterwards.
	create(total + 1)
	idx := lbNamespaceIndex(t, c, fmt.Sprintf("lb-%d", total+1))
	for _, n := range c.Nodes {
		if _, err := n.Client(c.Token).AtLeast(idx).GetNamespace(ctx, fmt.Sprintf("lb-%d", total+1)); err != nil {
			t.Fatalf("%s: read lb-%d with min_index=%d: %v", n.Name, total+1, idx, err)
		}
	}

	// HAProxy's own counters: the leaderless node never got a request,
	// and followers got their share (the pool is not the leader alone).
	stats, err := lb.status()
	if err != nil {
		t.Fatal(err)
	}
	if s := stats["orphan"]; s.sessions != 0 {
		t.Errorf("haproxy sent %d requests to the node that knows no leader", s.sessions)
	}
	for _, n := range c.Nodes {
		if stats[n.Name].sessions == 0 {
			t.Errorf("haproxy sent no request to %s: %+v", n.Name, stats)
		}
	}
}

// lbHAProxyPath finds the haproxy binary; the test fails (never skips)
// without it.
func lbHAProxyPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("haproxy is not installed: run e2e/scripts/install-test-deps.sh (or `make test-deps`) to install it from Debian's packages")
	return ""
}

// lbProxy is a running HAProxy.
type lbProxy struct {
	URL      string
	statsURL string
	backend  string
	done     chan struct{}
	logPath  string
}

// lbRenderConfig substitutes the listen address and the server lines of
// the documented template. Each server gets the first template server
// line's options, so the health check under test is the documented one.
func lbRenderConfig(t *testing.T, template string, listen string, nodes []*Node) (cfg, backend string) {
	t.Helper()
	if !strings.Contains(template, "/api/system/health") {
		t.Fatalf("%s does not health-check /api/system/health", lbTemplate)
	}
	var out []string
	binds, servers := 0, 0
	section := ""
	for _, line := range strings.Split(template, "\n") {
		fields := strings.Fields(line)
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if len(fields) >= 2 && (fields[0] == "backend" || fields[0] == "listen") {
			section = fields[1]
		}
		switch {
		case len(fields) >= 2 && fields[0] == "bind":
			binds++
			out = append(out, indent+"bind "+listen)
		case len(fields) >= 3 && fields[0] == "server":
			servers++
			if backend != "" && backend != section {
				t.Fatalf("%s has server lines in two sections (%s, %s)", lbTemplate, backend, section)
			}
			backend = section
			if servers > 1 {
				continue
			}
			opts := strings.Join(fields[3:], " ")
			for _, n := range nodes {
				out = append(out, strings.TrimRight(fmt.Sprintf("%sserver %s %s %s", indent, n.Name, n.APIAddr, opts), " "))
			}
		default:
			out = append(out, line)
		}
	}
	if binds != 1 || servers == 0 {
		t.Fatalf("%s must have exactly one bind line and at least one server line; found %d and %d", lbTemplate, binds, servers)
	}
	return strings.Join(out, "\n"), backend
}

// lbStartHAProxy runs haproxy in the foreground with the documented
// config (plus a test-only stats listener) and stops it at cleanup.
func lbStartHAProxy(t *testing.T, haproxy string, nodes []*Node) *lbProxy {
	t.Helper()
	return lbStartHAProxyEdited(t, haproxy, nodes, nil)
}

// lbStartHAProxyEdited is lbStartHAProxy with the template passed through
// edit first (a test that shortens a timeout).
func lbStartHAProxyEdited(t *testing.T, haproxy string, nodes []*Node, edit func(string) string) *lbProxy {
	t.Helper()
	tmpl, err := os.ReadFile(lbTemplate)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		tmpl = []byte(edit(string(tmpl)))
	}
	dir := t.TempDir()
	port, statsPort := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "haproxy.cfg")
	rendered, backend := lbRenderConfig(t, string(tmpl), fmt.Sprintf("127.0.0.1:%d", port), nodes)
	if err := os.WriteFile(cfg, []byte(rendered), 0o644); err != nil {
		t.Fatal(err)
	}
	stats := filepath.Join(dir, "stats.cfg")
	if err := os.WriteFile(stats, []byte(fmt.Sprintf(
		"listen lb_test_stats\n    mode http\n    bind 127.0.0.1:%d\n    stats enable\n    stats uri /stats\n", statsPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(haproxy, "-c", "-f", cfg, "-f", stats).CombinedOutput(); err != nil {
		t.Fatalf("haproxy rejects the rendered %s: %v\n%s", lbTemplate, err, out)
	}
	p := &lbProxy{
		URL:      fmt.Sprintf("http://127.0.0.1:%d", port),
		statsURL: fmt.Sprintf("http://127.0.0.1:%d/stats;csv", statsPort),
		backend:  backend,
		done:     make(chan struct{}),
		logPath:  filepath.Join(dir, "haproxy.log"),
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxy, "-db", "-f", cfg, "-f", stats)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start haproxy: %v", err)
	}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			if b, err := os.ReadFile(p.logPath); err == nil {
				t.Logf("---- haproxy log ----\n%s", b)
			}
		}
	})
	return p
}

// lbServerStat is one backend server as HAProxy sees it.
type lbServerStat struct {
	state    string // UP or DOWN (a transition in progress keeps the old state)
	sessions int    // requests (sessions) sent to it so far; checks excluded
}

// serverRows reads the stats page and returns, for each server of the
// backend, the named columns' values (an error names a missing column).
func (p *lbProxy) serverRows(cols ...string) (map[string]map[string]string, error) {
	select {
	case <-p.done:
		b, _ := os.ReadFile(p.logPath)
		return nil, fmt.Errorf("haproxy exited:\n%s", b)
	default:
	}
	resp, err := http.Get(p.statsURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("stats answered %d", resp.StatusCode)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("stats csv: %v", err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, h := range append([]string{"pxname", "svname"}, cols...) {
		if _, ok := col[h]; !ok {
			return nil, fmt.Errorf("stats csv has no %q column: %v", h, rows[0])
		}
	}
	out := map[string]map[string]string{}
	for _, row := range rows[1:] {
		if len(row) != len(rows[0]) || row[col["pxname"]] != p.backend ||
			row[col["svname"]] == "FRONTEND" || row[col["svname"]] == "BACKEND" {
			continue
		}
		vals := map[string]string{}
		for _, h := range cols {
			vals[h] = row[col[h]]
		}
		out[row[col["svname"]]] = vals
	}
	return out, nil
}

// status reads each backend server's state from the stats page.
func (p *lbProxy) status() (map[string]lbServerStat, error) {
	rows, err := p.serverRows("status", "stot")
	if err != nil {
		return nil, err
	}
	out := map[string]lbServerStat{}
	for name, row := range rows {
		stot, err := strconv.Atoi(row["stot"])
		if err != nil {
			return nil, fmt.Errorf("stats csv: stot %q: %v", row["stot"], err)
		}
		// "UP 1/2" is going down, "DOWN 1/2" going up: report the state.
		out[name] = lbServerStat{state: strings.Fields(row["status"] + " ?")[0], sessions: stot}
	}
	return out, nil
}

// waitStatus waits until HAProxy reports the given servers in the given
// states.
func (p *lbProxy) waitStatus(t *testing.T, want map[string]string) {
	t.Helper()
	WaitFor(t, 30*time.Second, func() error {
		got, err := p.status()
		if err != nil {
			return err
		}
		for name, state := range want {
			if got[name].state != state {
				return fmt.Errorf("haproxy reports %+v; want %v", got, want)
			}
		}
		return nil
	})
}

// waitServedBy waits until requests through the LB have reached each
// named node (the health endpoint names the node that answered).
func (p *lbProxy) waitServedBy(t *testing.T, names ...string) {
	t.Helper()
	seen := map[string]bool{}
	WaitFor(t, 30*time.Second, func() error {
		for i := 0; i < 2*len(names)+2; i++ {
			resp, err := http.Get(p.URL + "/api/system/health")
			if err != nil {
				return err
			}
			var h model.Health
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err == nil && h.NodeID != "" {
				seen[h.NodeID] = true
			}
		}
		for _, n := range names {
			if !seen[n] {
				return fmt.Errorf("no request through the LB reached %s yet (seen %v)", n, seen)
			}
		}
		return nil
	})
}

// lbExactlyOnce checks every wanted namespace is listed exactly once.
func lbExactlyOnce(list []*model.Namespace, want map[string]bool) error {
	count := map[string]int{}
	for _, ns := range list {
		count[ns.ID]++
	}
	var missing, dup []string
	for id := range want {
		switch count[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			dup = append(dup, id)
		}
	}
	if len(missing) > 0 || len(dup) > 0 {
		return fmt.Errorf("missing %v, duplicated %v (listed %d namespaces)", missing, dup, len(list))
	}
	return nil
}

// lbNamespaceIndex returns an index at which id is known to exist: the
// X-Gofer-Index of a consistent (leader) read of it.
func lbNamespaceIndex(t *testing.T, c *Cluster, id string) uint64 {
	t.Helper()
	cl := c.Client().Consistent()
	if _, err := cl.GetNamespace(context.Background(), id); err != nil {
		t.Fatalf("consistent read of %s: %v", id, err)
	}
	idx := cl.LastIndex()
	if idx == 0 {
		t.Fatal("consistent read returned no X-Gofer-Index")
	}
	return idx
}
