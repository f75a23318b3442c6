package nomad

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/docker/dockertest"
)

// The real-agent tests run the contract scenarios against the Nomad agent
// of NOMAD_ADDR (docs/nomad.md shows how to start a dev agent). The
// agent's docker driver must reach the local Docker engine: the test image
// is the busybox image the Docker tests build, tagged :nomad-test because
// Nomad v1.6's docker driver always pulls a :latest tag, and there is no
// registry here. A lost allocation cannot be caused on a one-node agent;
// the contract test covers it.

const realImage = "gofer/busybox:nomad-test"

var (
	realOnce sync.Once
	realErr  error
)

func realScheduler(t *testing.T) *Scheduler {
	t.Helper()
	addr := os.Getenv("NOMAD_ADDR")
	if addr == "" {
		t.Skip("NOMAD_ADDR not set: no Nomad agent to run the real-agent tests against (docs/nomad.md)")
	}
	realOnce.Do(func() { realErr = prepareRealImage() })
	if realErr != nil {
		t.Fatalf("preparing %s: %v", realImage, realErr)
	}
	s, err := New(Options{Address: addr, Token: os.Getenv("NOMAD_TOKEN"), StopGrace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Check(testCtx(t)); err != nil {
		t.Fatalf("the agent at %s does not answer: %v", addr, err)
	}
	return s
}

// prepareRealImage builds the test images and tags busybox for Nomad.
func prepareRealImage() error {
	if err := dockertest.BuildImages(); err != nil {
		return err
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return cli.ImageTag(ctx, dockertest.BusyboxImage, realImage)
}

// realJob starts a shell script as a job named after the test and purges
// it when the test ends.
func realJob(t *testing.T, s *Scheduler, suffix, script string) string {
	t.Helper()
	name := "gofer-test-" + randHex(4) + "-" + suffix
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Remove(ctx, name); err != nil {
			t.Errorf("cleanup: Remove %s: %v", name, err)
		}
	})
	req := scheduler.StartRequest{Name: name, Image: realImage, Command: []string{"sh", "-c", script},
		Labels: map[string]string{"gofer.test.name": t.Name(), "gofer.test.job": name}}
	if err := s.Start(testCtx(t), req); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return name
}

func TestRealSuccessAndLogs(t *testing.T) {
	s := realScheduler(t)
	ctx := testCtx(t)
	name := realJob(t, s, "ok", "echo out 1; echo err 1 >&2; echo out 2")
	st, err := s.Wait(ctx, name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != 0 || st.ID == "" {
		t.Fatalf("Wait: %+v %v, want exited 0 with an allocation id", st, err)
	}
	got := readAll(t, s, name, false)
	if !sameLines(got, "out 1\nout 2\nerr 1\n") || strings.Index(got, "out 1") > strings.Index(got, "out 2") {
		t.Fatalf("logs %q, want each line once and stdout in order", got)
	}
}

func TestRealFailureExitCode(t *testing.T) {
	s := realScheduler(t)
	name := realJob(t, s, "fail", "exit 3")
	st, err := s.Wait(testCtx(t), name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != 3 {
		t.Fatalf("Wait: %+v %v, want exited 3", st, err)
	}
}

func TestRealMissingImage(t *testing.T) {
	s := realScheduler(t)
	name := "gofer-test-" + randHex(4) + "-noimage"
	t.Cleanup(func() { _ = s.Remove(context.Background(), name) })
	if err := s.Start(testCtx(t), scheduler.StartRequest{Name: name, Image: "gofer/absent:nomad-test"}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Wait(testCtx(t), name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != exitNotStarted || st.Message == "" {
		t.Fatalf("Wait: %+v %v, want exited %d with Nomad's words", st, err, exitNotStarted)
	}
	t.Logf("message: %s", st.Message)
}

func TestRealAdoptOnDuplicateAndStop(t *testing.T) {
	s := realScheduler(t)
	ctx := testCtx(t)
	name := realJob(t, s, "dup", "trap 'exit 7' TERM; while true; do sleep 0.1; done")
	req := scheduler.StartRequest{Name: name, Image: realImage, Command: []string{"sh", "-c", "exit 0"}}
	if err := s.Start(ctx, req); err != nil && !errors.Is(err, scheduler.ErrAlreadyExists) {
		t.Fatalf("second Start: %v, want nil (not started yet) or ErrAlreadyExists", err)
	}
	eventually(t, "the task to run", func() bool {
		st, err := s.Inspect(ctx, name)
		return err == nil && st.State == scheduler.StateRunning
	})
	if err := s.Start(ctx, req); !errors.Is(err, scheduler.ErrAlreadyExists) {
		t.Fatalf("Start of a running attempt: %v, want ErrAlreadyExists", err)
	}
	list, err := s.List(ctx, map[string]string{"gofer.test.job": name})
	if err != nil || len(list) != 1 || list[0].Status.State != scheduler.StateRunning {
		t.Fatalf("List: %+v %v, want the one running job", list, err)
	}
	if err := s.Stop(ctx, name, 2*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	st, err := s.Inspect(ctx, name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != 7 {
		t.Fatalf("after Stop: %+v %v, want exited 7 (the TERM trap)", st, err)
	}
}

func TestRealLogsFollow(t *testing.T) {
	s := realScheduler(t)
	ctx := testCtx(t)
	// The last lines end with a newline: Nomad's docker driver may keep
	// an unterminated final fragment seconds past the end (logs.go,
	// Options.LogSettle); the contract test covers reading one.
	name := realJob(t, s, "follow", "for i in 1 2 3; do echo line $i; sleep 1; done; echo last >&2; echo tail")
	rc, err := s.Logs(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	if !sameLines(string(b), "line 1\nline 2\nline 3\nlast\ntail\n") {
		t.Fatalf("followed %q", b)
	}
	st, err := s.Inspect(ctx, name)
	if err != nil || st.State != scheduler.StateExited {
		t.Fatalf("follow ended before the task: %+v %v", st, err)
	}
}

// An extension-style job on the host network gets its address label's
// port reserved and is reached at the allocation's address: the process
// listening there answers.
func TestRealExtensionReachedAtAllocationAddress(t *testing.T) {
	s := realScheduler(t)
	ctx := testCtx(t)
	port := 19700 + int(randByte())%100
	name := "gofer-test-" + randHex(4) + "-ext"
	t.Cleanup(func() { _ = s.Remove(context.Background(), name) })
	req := scheduler.StartRequest{Name: name, Image: realImage, Network: "host",
		Command: []string{"sh", "-c", fmt.Sprintf("while true; do echo hello | nc -l -p %d; done", port)},
		Labels:  map[string]string{"gofer.test.name": t.Name(), scheduler.LabelExtensionAddr: fmt.Sprintf("0.0.0.0:%d", port)}}
	if err := s.Start(ctx, req); err != nil {
		t.Fatal(err)
	}
	var st scheduler.Status
	eventually(t, "the job to run", func() bool {
		var err error
		st, err = s.Inspect(ctx, name)
		return err == nil && st.State == scheduler.StateRunning
	})
	if st.IPAddress == "" {
		t.Fatalf("running without an address: %+v", st)
	}
	addr := net.JoinHostPort(st.IPAddress, strconv.Itoa(port))
	var got string
	eventually(t, "an answer at "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		got = string(b)
		return got != ""
	})
	if got != "hello\n" {
		t.Fatalf("read %q at %s, want hello", got, addr)
	}
}

func randByte() byte {
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	return b[0]
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Stop honours a grace longer than the kill_timeout the job was registered
// with (2 s here): the task is signalled directly, so a program ignoring
// SIGTERM lives until the grace has passed, then is killed (137).
func TestRealStopHonoursALongerGrace(t *testing.T) {
	s := realScheduler(t)
	ctx := testCtx(t)
	name := realJob(t, s, "grace", `trap "" TERM; echo ready; while :; do sleep 3600 & wait $!; done`)
	eventually(t, "the program to be ready", func() bool {
		st, err := s.Inspect(ctx, name)
		return err == nil && st.State == scheduler.StateRunning && strings.Contains(readAll(t, s, name, false), "ready")
	})
	const grace = 5 * time.Second
	began := time.Now()
	if err := s.Stop(ctx, name, grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	st, err := s.Wait(ctx, name)
	if took := time.Since(began); took < grace {
		t.Fatalf("the task ended %s after the stop, before its %s grace (the kill_timeout is %s)", took, grace, s.opts.StopGrace)
	}
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != 137 {
		t.Fatalf("Wait: %+v %v, want exited 137", st, err)
	}
}

// The one log stream is stdout, then stderr, whatever the arrival order:
// a follow, a read after the end and a follow of the ended task give the
// same bytes (the executor resumes a log at a byte offset).
func TestRealLogOrderIsStable(t *testing.T) {
	s := realScheduler(t)
	ctx := testCtx(t)
	name := realJob(t, s, "order", "for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.3; done")
	rc, err := s.Logs(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	followed, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	const want = "out 1\nout 2\nout 3\nerr 1\nerr 2\nerr 3\n"
	if string(followed) != want {
		t.Fatalf("followed %q, want %q", followed, want)
	}
	for _, follow := range []bool{false, true} {
		if got := readAll(t, s, name, follow); got != want {
			t.Fatalf("read again (follow %v): %q, want %q", follow, got, want)
		}
	}
}

// A job no node can run (a datacenter that does not exist) ends after the
// placement timeout with Nomad's reason, and is stopped.
func TestRealUnplaceableJobEnds(t *testing.T) {
	real := realScheduler(t)
	s, err := New(Options{Address: real.opts.Address, Token: real.opts.Token, Datacenters: []string{"gofer-no-such-dc"},
		PlacementTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := testCtx(t)
	name := "gofer-test-" + randHex(4) + "-nodc"
	t.Cleanup(func() { _ = s.Remove(context.Background(), name) })
	// Start waits for the task, at most the placement timeout.
	if err := s.Start(ctx, scheduler.StartRequest{Name: name, Image: realImage, Command: []string{"true"}}); err != nil {
		t.Fatalf("Start of an unplaceable job: %v, want nil once the placement timeout ended it", err)
	}
	st, err := s.Wait(ctx, name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != exitNotStarted || !strings.Contains(st.Message, "no Nomad node can run it") {
		t.Fatalf("Wait: %+v %v, want exited %d with Nomad's reason", st, err, exitNotStarted)
	}
	t.Logf("message: %s", st.Message)
	if st, err := s.Inspect(ctx, name); err != nil || st.State != scheduler.StateExited {
		t.Fatalf("Inspect after: %+v %v", st, err)
	}
	list, err := s.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.Name == name && c.Status.State != scheduler.StateExited {
			t.Fatalf("listed as %+v, want exited", c)
		}
	}
}

// The agent takes the task's resources as given (and the task runs).
func TestRealResources(t *testing.T) {
	s := realScheduler(t)
	ctx := testCtx(t)
	name := "gofer-test-" + randHex(4) + "-resources"
	t.Cleanup(func() { _ = s.Remove(context.Background(), name) })
	req := scheduler.StartRequest{Name: name, Image: realImage, Command: []string{"sh", "-c", "exit 0"}, CPU: 150, MemoryMB: 96}
	if err := s.Start(ctx, req); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if st, err := s.Wait(ctx, name); err != nil || st.State != scheduler.StateExited || st.ExitCode != 0 {
		t.Fatalf("Wait: %+v %v", st, err)
	}
	job, _, err := s.cli.Jobs().Info(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := job.TaskGroups[0].Tasks[0].Resources
	if r == nil || *r.CPU != 150 || *r.MemoryMB != 96 {
		t.Fatalf("the registered task's resources %+v, want cpu 150 memory 96", r)
	}
}

// Stop of a job Nomad has not placed returns at once, and so does a Wait
// beside it.
func TestRealStopOfUnplacedJob(t *testing.T) {
	real := realScheduler(t)
	s, err := New(Options{Address: real.opts.Address, Token: real.opts.Token, Datacenters: []string{"gofer-no-such-dc"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := testCtx(t)
	name := "gofer-test-" + randHex(4) + "-unplaced"
	t.Cleanup(func() { _ = s.Remove(context.Background(), name) })
	// Start waits for the task (placement_timeout is 5m here): it runs in
	// the background and returns once Stop has ended the job.
	started := make(chan error, 1)
	go func() {
		started <- s.Start(ctx, scheduler.StartRequest{Name: name, Image: realImage, Command: []string{"true"}})
	}()
	eventually(t, "the job to be registered", func() bool {
		st, err := s.Inspect(ctx, name)
		return err == nil && st.State != scheduler.StateNotFound
	})
	waited := make(chan scheduler.Status, 1)
	go func() {
		st, err := s.Wait(ctx, name)
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		waited <- st
	}()
	if st, err := s.Inspect(ctx, name); err != nil || st.State != scheduler.StateCreated {
		t.Fatalf("Inspect: %+v %v, want created", st, err)
	}
	if err := s.Stop(ctx, name, time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st := <-waited; st.State != scheduler.StateExited || st.ExitCode != exitNotStarted {
		t.Fatalf("Wait: %+v, want exited %d", st, exitNotStarted)
	}
	if err := <-started; err != nil {
		t.Fatalf("Start of a job stopped before it was placed: %v", err)
	}
}
