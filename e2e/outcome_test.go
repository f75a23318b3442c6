package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
)

// Honest outcomes (docs/cli.md, "When a command fails"): the real CLI
// binary talks to a real node through a proxy in the test that loses the
// answers to writes after forwarding them — so the write happened and the
// CLI cannot know. The CLI must either succeed through its retry with the
// same idempotency key or say the outcome is unknown with the request id
// and the key; never create a second namespace or run.

// outcomeDropped is one write whose answer the proxy lost.
type outcomeDropped struct{ key, requestID string }

// outcomeProxy forwards every request to a node; while dropping is on it
// forwards each POST, waits for the node's answer and then closes the
// client's connection without a word.
type outcomeProxy struct {
	*httptest.Server
	mu      sync.Mutex
	drops   int // POST answers still to lose; -1: all of them
	dropped []outcomeDropped
}

func newOutcomeProxy(t *testing.T, target string) *outcomeProxy {
	p := &outcomeProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		out.ContentLength = r.ContentLength
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if r.Method == http.MethodPost && p.drop(r) {
			_, _ = io.Copy(io.Discard, resp.Body)
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *outcomeProxy) drop(r *http.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drops == 0 {
		return false
	}
	if p.drops > 0 {
		p.drops--
	}
	p.dropped = append(p.dropped, outcomeDropped{r.Header.Get("Idempotency-Key"), r.Header.Get("X-Request-Id")})
	return true
}

func (p *outcomeProxy) setDrops(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drops = n
}

func (p *outcomeProxy) droppedSoFar() []outcomeDropped {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]outcomeDropped(nil), p.dropped...)
}

// outcomeCluster is one real node with a deployed pipeline "outcome".
func outcomeCluster(t *testing.T) *runsCluster {
	rc := runsNewCluster(t, 1)
	rc.deploy(t, &sdk.PipelineConfig{ID: "outcome", Tasks: []*sdk.TaskConfig{runsSh("noop", "true")}})
	return rc
}

func (rc *runsCluster) countRuns(t *testing.T, pipeline string) []int64 {
	t.Helper()
	runs, err := rc.cl.ListRuns(context.Background(), pipeline, client.Page{Limit: 100})
	if err != nil {
		t.Fatalf("list runs of %s: %v", pipeline, err)
	}
	var ids []int64
	for _, r := range runs {
		ids = append(ids, r.RunID)
	}
	return ids
}

// TestOutcomeLostAnswerRetriedSafely: the first answer to a create and to
// a run start is lost; the CLI sends the write again with the same key and
// request id, gets the first outcome back and succeeds — one namespace,
// one run (a retry without the key would answer 409 "exists" for the
// namespace and start a second run).
func TestOutcomeLostAnswerRetriedSafely(t *testing.T) {
	rc := outcomeCluster(t)
	proxy := newOutcomeProxy(t, rc.Nodes[0].URL)

	proxy.setDrops(1)
	out, code := rc.cli(t, proxy.URL, "namespace", "create", "outcome-ns")
	if code != 0 || !strings.Contains(out, "outcome-ns") {
		t.Fatalf("namespace create with its first answer lost: exit %d\n%s", code, out)
	}
	if d := proxy.droppedSoFar(); len(d) != 1 || d[0].key == "" || d[0].requestID == "" {
		t.Fatalf("dropped %+v; want one write carrying a key and a request id", d)
	}
	list, err := rc.cl.ListNamespaces(context.Background(), client.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ns := range list {
		if ns.ID == "outcome-ns" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d namespaces outcome-ns; want exactly one", n)
	}

	proxy.setDrops(1)
	out, code = rc.cli(t, proxy.URL, "run", "start", "outcome")
	if code != 0 || !strings.Contains(out, "Started run 1 ") {
		t.Fatalf("run start with its first answer lost: exit %d\n%s", code, out)
	}
	ids := rc.countRuns(t, "outcome")
	if len(ids) != 1 {
		t.Errorf("runs %v after one run start; want exactly one", ids)
	}
	rc.finishRuns(t, ids)
}

// finishRuns waits for the runs to end and their containers to go, so
// none is left on the engine when the node stops.
func (rc *runsCluster) finishRuns(t *testing.T, ids []int64) {
	t.Helper()
	for _, id := range ids {
		rc.wait(t, "outcome", id, time.Minute)
	}
	rc.noContainersLeft(t, 40*time.Second)
}

var outcomeLine = regexp.MustCompile(`^error: the outcome of POST /api/namespaces/default/pipelines/outcome/runs is unknown ` +
	`\((?:connection lost after sending: [^;]+|interrupted after sending); request id ([0-9a-f]+)\): it may or may not have been applied\. ` +
	`Check with 'gofer run list outcome', or run the same command again with --idempotency-key ([0-9a-f]+): ` +
	`the server then answers with the first outcome instead of applying it twice$`)

// TestOutcomeUnknownReportedAndRerunSafe: every answer to a run start is
// lost and the user interrupts the CLI. It says the outcome is unknown,
// with the request id and key it sent; the run did start; running the
// command again with that key answers with that run instead of starting
// another.
func TestOutcomeUnknownReportedAndRerunSafe(t *testing.T) {
	rc := outcomeCluster(t)
	proxy := newOutcomeProxy(t, rc.Nodes[0].URL)
	proxy.setDrops(-1)

	cmd := exec.Command(goferBin, "-a", proxy.URL, "--token", rc.Token, "run", "start", "outcome")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, func() error {
		if len(proxy.droppedSoFar()) == 0 {
			return errors.New("no run start reached the proxy yet")
		}
		return nil
	})
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("interrupted run start: %v, want a non-zero exit; stdout %q stderr %q", err, stdout.String(), stderr.String())
	}
	line := strings.TrimSuffix(stderr.String(), "\n")
	t.Logf("interrupted run start: %s", line)
	m := outcomeLine.FindStringSubmatch(line)
	dropped := proxy.droppedSoFar()
	if m == nil || stdout.Len() != 0 {
		t.Fatalf("interrupted run start printed stdout %q, stderr %q; want one line matching %s", stdout.String(), stderr.String(), outcomeLine)
	}
	for _, d := range dropped {
		if d.requestID != m[1] || d.key != m[2] {
			t.Errorf("the proxy saw request id %s key %s; the CLI named %s and %s", d.requestID, d.key, m[1], m[2])
		}
	}
	first := rc.countRuns(t, "outcome")
	if len(first) != 1 {
		t.Fatalf("runs %v after the lost run start (%d attempts); want exactly one", first, len(dropped))
	}

	proxy.setDrops(0)
	out, code := rc.cli(t, proxy.URL, "run", "start", "outcome", "--idempotency-key", m[2])
	if want := fmt.Sprintf("Started run %d ", first[0]); code != 0 || !strings.Contains(out, want) {
		t.Errorf("run start again with --idempotency-key %s: exit %d\n%s\nwant %q", m[2], code, out, want)
	}
	ids := rc.countRuns(t, "outcome")
	if len(ids) != 1 {
		t.Errorf("runs %v after running the command again with its key; want still one", ids)
	}
	rc.finishRuns(t, ids)
}

// TestOutcomeHAProxy503Summarised: a real HAProxy whose backend is down
// answers its HTML 503 page. After its retries the CLI prints one line:
// the outcome is unknown and what answered, summarised — never the HTML.
func TestOutcomeHAProxy503Summarised(t *testing.T) {
	haproxy := lbHAProxyPath(t)
	down := NewNode(t, "down")
	lb := lbStartHAProxy(t, haproxy, []*Node{down})
	lb.waitStatus(t, map[string]string{"down": "DOWN"})

	out, err := runCLI(t, nil, "-a", lb.URL, "--token", "gofer_x", "namespace", "create", "outcome-ns")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("namespace create through HAProxy with no backend: %v, want a non-zero exit\n%s", err, out)
	}
	line := strings.TrimSuffix(out, "\n")
	for _, want := range []string{
		`error: the outcome of POST /api/namespaces is unknown (a proxy or another server answered 503 Service Unavailable instead of the gofer API (text/html: "503 Service Unavailable"); request id `,
		"Check with 'gofer namespace get outcome-ns', or run the same command again with --idempotency-key ",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("output %q does not say %q", out, want)
		}
	}
	if strings.Contains(line, "\n") || strings.Contains(line, "<") {
		t.Errorf("output %q; want one line without HTML", out)
	}
}

// TestOutcomeRefusedFailsFast: with nothing listening the CLI gives up
// after its short budget for refused connections (the 30 s budget is for
// nodes that answer), saying where the address came from; a node list
// with one node down still works.
func TestOutcomeRefusedFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	start := time.Now()
	out, err := runCLI(t, []string{"GOFER_API_BASE_URL=" + closed}, "namespace", "create", "x")
	took := time.Since(start)
	want := "error: cannot reach a gofer server at " + closed + " (connection refused). Is the server running? " +
		"Set the address with --api-base-url or GOFER_API_BASE_URL (now: GOFER_API_BASE_URL)\n"
	if err == nil || out != want {
		t.Errorf("namespace create with no server: %v %q; want %q", err, out, want)
	}
	// Loose on purpose: the old behaviour retried for 30 s.
	if took > 15*time.Second {
		t.Errorf("took %s to report a refused connection; want the short budget", took)
	}

	c := NewCluster(t, 1)
	out, err = runCLI(t, nil, "-a", closed+","+c.Nodes[0].URL, "--token", c.Token, "namespace", "create", "outcome-two")
	if err != nil || !strings.Contains(out, "outcome-two") {
		t.Errorf("create with the first of two nodes down: %v\n%s", err, out)
	}

	// Auth errors say where the token came from and how to set one.
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "(401): no token was found (looked at --token, GOFER_TOKEN, ~/.gofer.toml, ~/.config/gofer.toml); set one with --token, GOFER_TOKEN or token = \"…\" in ~/.gofer.toml\n"},
		{[]string{"GOFER_TOKEN=gofer_not-a-real-token"}, "(401). The CLI used the token from GOFER_TOKEN; set one with --token, GOFER_TOKEN or token = \"…\" in ~/.gofer.toml\n"},
	} {
		out, err := runCLI(t, tc.env, "-a", c.Nodes[0].URL, "namespace", "list")
		if err == nil || !strings.HasPrefix(out, "error: ") || !strings.HasSuffix(out, tc.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("namespace list with env %v: %v %q; want one line ending %q", tc.env, err, out, tc.want)
		}
	}
}
