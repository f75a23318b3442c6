package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// followProc is a gofer CLI process whose stdout and stderr are kept
// apart (a resume note must never reach stdout).
type followProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func startFollow(t *testing.T, args ...string) *followProc {
	t.Helper()
	p := &followProc{done: make(chan struct{})}
	p.cmd = exec.Command(goferBin, args...)
	p.cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	p.cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start gofer %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *followProc) output() (stdout, stderr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String(), p.stderr.String()
}

// wait waits for the process to exit and returns its exit code.
func (p *followProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		out, errOut := p.output()
		t.Fatalf("gofer %s still running after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(p.cmd.Args[1:], " "), timeout, out, errOut)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("gofer: %v", p.err)
	return -1
}

// waitStdout waits until stdout contains s.
func (p *followProc) waitStdout(t *testing.T, timeout time.Duration, s string) {
	t.Helper()
	WaitFor(t, timeout, func() error {
		out, errOut := p.output()
		if strings.Contains(out, s) {
			return nil
		}
		select {
		case <-p.done:
			t.Fatalf("gofer exited before printing %q: %v\nstdout:\n%s\nstderr:\n%s", s, p.err, out, errOut)
		default:
		}
		return fmt.Errorf("stdout has no %q yet", s)
	})
}

// countingScript prints "line 1" … "line n", one every pause.
func countingScript(n int, pause string) string {
	return fmt.Sprintf(`i=1; while [ $i -le %d ]; do echo "line $i"; i=$((i+1)); sleep %s; done`, n, pause)
}

// checkCountedLines asserts out is exactly "line 1".."line n", each once,
// in order.
func checkCountedLines(t *testing.T, out string, n int) {
	t.Helper()
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if out != want.String() {
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		seen := map[string]int{}
		var dup []string
		for _, l := range lines {
			if seen[l]++; seen[l] == 2 {
				dup = append(dup, l)
			}
		}
		t.Fatalf("follow printed %d lines (duplicated: %v), want line 1..line %d once each, in order:\n%s", len(lines), dup, n, out)
	}
}

// lbActiveStreams reads, per backend server, the connections HAProxy holds
// open to it now (scur): a follow stream is the only long-lived one, so
// the server holding it is the node HAProxy chose for it.
func lbActiveStreams(p *lbProxy) (map[string]int, error) {
	rows, err := p.serverRows("scur")
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for name, row := range rows {
		n, _ := strconv.Atoi(row["scur"])
		out[name] = n
	}
	return out, nil
}

// lbStreamNode waits until exactly one backend server holds a connection
// and returns it.
func lbStreamNode(t *testing.T, p *lbProxy, c *Cluster) *Node {
	t.Helper()
	var name string
	WaitFor(t, 10*time.Second, func() error {
		cur, err := lbActiveStreams(p)
		if err != nil {
			return err
		}
		var busy []string
		for n, v := range cur {
			if v > 0 {
				busy = append(busy, n)
			}
		}
		if len(busy) != 1 || cur[busy[0]] != 1 {
			return fmt.Errorf("want one server with one open connection, haproxy has %v", cur)
		}
		name = busy[0]
		return nil
	})
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("haproxy server %s is no cluster node", name)
	return nil
}

func countNotes(stderr string) int {
	return strings.Count(stderr, "note: connection to node lost; resumed")
}

// TestLBFollowTaskLogsSurvivesServingNode follows a task's output with the
// gofer CLI through HAProxy (docs/examples/haproxy.cfg) and SIGKILLs the
// node serving the stream twice: first the leader (the CLI's first read
// is linearizable, so the leader serves it, through whichever node HAProxy
// chose), then — with the leader back — the node HAProxy chose for the
// resumed stream (a resume is served by the node it reaches, from its own
// state). The CLI must print every line exactly once, in order, say on
// stderr (never stdout) that it resumed, and exit 0.
func TestLBFollowTaskLogsSurvivesServingNode(t *testing.T) {
	haproxy := lbHAProxyPath(t)
	rc := runsNewCluster(t, 3)
	lb := lbStartHAProxy(t, haproxy, rc.Nodes)
	lb.waitStatus(t, map[string]string{"node1": "UP", "node2": "UP", "node3": "UP"})

	// 300 lines at 0.2 s: a minute of output, so the leader's restart,
	// WaitForMembers and HAProxy's rise (2 checks) cannot push the second
	// kill past the task's end on a loaded machine.
	const p, lines = "lb-follow", 300
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "lb follow", Tasks: []*sdk.TaskConfig{runsSh("count", countingScript(lines, "0.2"))}})
	run := rc.start(t, p, nil)
	rc.waitTask(t, p, run.RunID, "count", 60*time.Second, "running", func(te *model.TaskExecution) bool { return te.State == model.TaskStateRunning })

	f := startFollow(t, "-a", lb.URL, "--token", rc.Token, "task", "logs", "--follow", p, strconv.FormatInt(run.RunID, 10), "count")
	f.waitStdout(t, 30*time.Second, "line 10\n")

	// Kill 1: the leader serves the stream.
	leader := rc.Leader()
	via := lbStreamNode(t, lb, rc.Cluster)
	t.Logf("stream served by leader %s through %s (haproxy's choice); SIGKILL %s", leader.Name, via.Name, leader.Name)
	leader.Kill()
	WaitFor(t, 30*time.Second, func() error {
		if _, errOut := f.output(); countNotes(errOut) == 0 {
			return fmt.Errorf("no resume note yet")
		}
		return nil
	})
	out, _ := f.output()
	next := fmt.Sprintf("line %d\n", strings.Count(out, "\n")+3)
	f.waitStdout(t, 30*time.Second, next)
	leader.Start()
	rc.WaitForMembers(3)
	lb.waitStatus(t, map[string]string{"node1": "UP", "node2": "UP", "node3": "UP"})

	// Kill 2: the node HAProxy chose for the resumed stream serves it.
	serving := lbStreamNode(t, lb, rc.Cluster)
	out, _ = f.output()
	if strings.Contains(out, fmt.Sprintf("line %d\n", lines-10)) {
		t.Fatalf("the task is nearly done before the second kill; lengthen it:\n%s", out)
	}
	t.Logf("resumed stream served by %s (haproxy's choice); SIGKILL it after %d lines", serving.Name, strings.Count(out, "\n"))
	serving.Kill()

	code := f.wait(t, 2*time.Minute)
	out, errOut := f.output()
	if code != 0 {
		t.Fatalf("gofer task logs --follow exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	checkCountedLines(t, out, lines)
	if n := countNotes(errOut); n < 2 {
		t.Fatalf("stderr has %d resume notes, want one per kill at least:\n%s", n, errOut)
	}
	if strings.Contains(out, "note:") {
		t.Fatalf("a note reached stdout:\n%s", out)
	}
	t.Logf("stderr:\n%s", errOut)
}

// TestFollowLogsAndEventsAcrossLeaderKill gives the CLI several
// --api-base-url nodes, the leader first, so both follows (a task's
// output and the event stream) are served by the leader; SIGKILL the
// leader mid-task. The log must come out whole, once, in order (exit 0),
// and the event stream must deliver every event id once, in order: the
// same ids the cluster stored over that span.
func TestFollowLogsAndEventsAcrossLeaderKill(t *testing.T) {
	rc := runsNewCluster(t, 3)
	const p, lines = "follow-kill", 50
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "follow kill", Tasks: []*sdk.TaskConfig{runsSh("count", countingScript(lines, "0.2"))}})
	leader := rc.Leader()
	addrs := []string{leader.URL}
	for _, n := range rc.Nodes {
		if n != leader {
			addrs = append(addrs, n.URL)
		}
	}
	nodes := strings.Join(addrs, ",")
	events := startFollow(t, "-a", nodes, "--token", rc.Token, "-o", "json", "event", "list", "--follow")
	run := rc.start(t, p, nil)
	rc.waitTask(t, p, run.RunID, "count", 60*time.Second, "running", func(te *model.TaskExecution) bool { return te.State == model.TaskStateRunning })
	logs := startFollow(t, "-a", nodes, "--token", rc.Token, "task", "logs", "--follow", p, strconv.FormatInt(run.RunID, 10), "count")
	logs.waitStdout(t, 30*time.Second, "line 10\n")

	t.Logf("SIGKILL leader %s, first of the CLI's nodes, serving both follows", leader.Name)
	leader.Kill()
	newLeader := rc.Leader(leader)

	if code := logs.wait(t, 2*time.Minute); code != 0 {
		out, errOut := logs.output()
		t.Fatalf("gofer task logs --follow exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut := logs.output()
	checkCountedLines(t, out, lines)
	if countNotes(errOut) == 0 {
		t.Fatalf("task logs: no resume note on stderr:\n%s", errOut)
	}
	rc.wait(t, p, run.RunID, time.Minute)

	// One more event after the run, so the stream must have got past the
	// failover to see it.
	ctx := context.Background()
	cl := newLeader.Client(rc.Token).Consistent()
	if _, err := cl.CreateNamespace(ctx, "after-kill", "after kill", ""); err != nil {
		t.Fatal(err)
	}
	stored, err := cl.ListEvents(ctx, client.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	last := stored[len(stored)-1].ID
	WaitFor(t, 30*time.Second, func() error {
		got, _ := events.output()
		if !strings.Contains(got, fmt.Sprintf(`{"id":%d,`, last)) {
			return fmt.Errorf("event stream has not delivered event %d yet", last)
		}
		return nil
	})
	_ = events.cmd.Process.Signal(syscall.SIGINT)
	events.wait(t, 30*time.Second)
	got, errOut := events.output()
	var seen []uint64
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		var e model.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("event stream printed %q: %v", line, err)
		}
		seen = append(seen, e.ID)
	}
	// Compare with what the cluster holds now, up to the last id seen.
	stored, err = cl.ListEvents(ctx, client.Page{Limit: 1000})
	if err != nil || len(stored) == 1000 {
		t.Fatalf("list events: %d, %v (this test reads them in one page)", len(stored), err)
	}
	var want []uint64
	for _, e := range stored {
		if len(seen) > 0 && e.ID <= seen[len(seen)-1] {
			want = append(want, e.ID)
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("event stream delivered ids\n%v\nthe cluster stored\n%v", seen, want)
	}
	if countNotes(errOut) == 0 {
		t.Fatalf("event stream: no resume note on stderr:\n%s", errOut)
	}
	t.Logf("events: %d ids once each, in order; stderr:\n%s", len(seen), errOut)
}

// TestLBKeepAliveHoldsQuietStreams runs HAProxy with `timeout server` and
// `timeout client` cut to 3 s and nodes sending keep-alives every second:
// a task log follow and an event follow that stay quiet for longer than
// that must not be cut (no resume note, every line, exit 0), while an
// unframed log follow (no room for keep-alives) of the same quiet task is
// cut by HAProxy — the timeout is real.
func TestLBKeepAliveHoldsQuietStreams(t *testing.T) {
	haproxy := lbHAProxyPath(t)
	rc := runsNewCluster(t, 3, "GOFER_WEB_API__STREAM_KEEP_ALIVE=1s")
	lb := lbStartHAProxyEdited(t, haproxy, rc.Nodes, func(cfg string) string {
		for _, k := range []string{"timeout server 120s", "timeout client 120s"} {
			if !strings.Contains(cfg, k) {
				t.Fatalf("%s has no %q line to shorten", lbTemplate, k)
			}
			cfg = strings.Replace(cfg, k, strings.Replace(k, "120s", "3s", 1), 1)
		}
		return cfg
	})
	lb.waitStatus(t, map[string]string{"node1": "UP", "node2": "UP", "node3": "UP"})

	const p = "quiet"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "quiet", Tasks: []*sdk.TaskConfig{runsSh("hush", "echo start; sleep 10; echo end")}})
	events := startFollow(t, "-a", lb.URL, "--token", rc.Token, "-o", "json", "event", "list", "--follow")
	run := rc.start(t, p, nil)
	rc.waitTask(t, p, run.RunID, "hush", 60*time.Second, "running", func(te *model.TaskExecution) bool { return te.State == model.TaskStateRunning })
	runID := strconv.FormatInt(run.RunID, 10)
	logs := startFollow(t, "-a", lb.URL, "--token", rc.Token, "task", "logs", "--follow", p, runID, "hush")

	// The plain form of the same follow, as upstream's clients read it.
	plainCut := make(chan string, 1)
	go func() {
		start := time.Now()
		resp, err := rawRequest(http.MethodGet, lb.URL+"/api/namespaces/default/pipelines/"+p+"/runs/"+runID+"/tasks/hush/logs?follow=true", rc.Token, "")
		if err != nil {
			plainCut <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		plainCut <- fmt.Sprintf("after %s: %q, %v", time.Since(start).Round(100*time.Millisecond), body, err)
	}()

	if code := logs.wait(t, time.Minute); code != 0 {
		out, errOut := logs.output()
		t.Fatalf("gofer task logs --follow exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut := logs.output()
	if out != "start\nend\n" || errOut != "" {
		t.Fatalf("quiet follow through haproxy (timeout 3 s): stdout %q, stderr %q; want the whole log and no resume", out, errOut)
	}
	got := <-plainCut
	if strings.Contains(got, "end") {
		t.Fatalf("the unframed follow was not cut by haproxy's 3 s timeout (%s): the test proves nothing", got)
	}
	t.Logf("unframed follow through haproxy: %s", got)

	rc.wait(t, p, run.RunID, time.Minute)
	WaitFor(t, 30*time.Second, func() error {
		if evOut, _ := events.output(); !strings.Contains(evOut, `"kind":"`+model.EventCompletedRun+`"`) {
			return fmt.Errorf("the event follow has not delivered %s yet", model.EventCompletedRun)
		}
		return nil
	})
	_ = events.cmd.Process.Signal(syscall.SIGINT)
	events.wait(t, 30*time.Second)
	evOut, evErr := events.output()
	// The run's end came after the quiet spell, on the same connection.
	if countNotes(evErr) != 0 || !strings.Contains(evOut, `"kind":"`+model.EventCompletedRun+`"`) {
		t.Fatalf("quiet event follow through haproxy: stderr %q; want %s and no resume\nstdout:\n%s", evErr, model.EventCompletedRun, evOut)
	}
}
