package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/docker/dockertest"
)

// The images e2e/scripts/build-images.sh makes (no registry is needed).
const (
	goferImage   = dockertest.GoferImage
	busyboxImage = dockertest.BusyboxImage
	// runLabel marks everything this test binary creates, so cleanup and
	// the leak check never touch another test's containers on a shared
	// engine.
	runLabel  = "gofer.test.run"
	testLabel = "gofer.test.name"
)

// runID is unique per test process.
var runID = randHex(4)

// raw is a plain client for what the Scheduler does not expose (network
// creation, inspecting network attachments, the leak check).
var raw *client.Client

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	skip, err := dockertest.Prepare()
	if skip {
		fmt.Println("skipping Docker tests (" + dockertest.SkipEnv + ")")
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if raw, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if leaked := removeLeftovers(); leaked != "" {
		fmt.Fprintln(os.Stderr, "containers left behind by tests (now removed):", leaked)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// removeLeftovers removes containers of this run that a test forgot, and
// names them.
func removeLeftovers() string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := raw.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", runLabel+"="+runID))})
	if err != nil {
		return "cannot list: " + err.Error()
	}
	var names []string
	for _, c := range list {
		names = append(names, strings.Join(c.Names, ","))
		_ = raw.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	return strings.Join(names, " ")
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// testName is t.Name() as a Docker-safe string.
func testName(t *testing.T) string {
	return strings.ToLower(strings.Trim(unsafeName.ReplaceAllString(t.Name(), "-"), "-"))
}

// uniqueName returns a container name that no other test (or run) uses.
func uniqueName(t *testing.T, suffix string) string {
	return fmt.Sprintf("gofer-test-%s-%s-%s-%s", runID, testName(t), suffix, randHex(3))
}

// testLabels returns the labels marking t's containers.
func testLabels(t *testing.T) map[string]string {
	return map[string]string{runLabel: runID, testLabel: testName(t)}
}

func newScheduler(t *testing.T, opts Options) *Scheduler {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// start fills in a unique name and t's labels when unset, registers the
// container's removal (before starting, so a half-made one goes too) and
// starts it. It returns the name and Start's error.
func start(t *testing.T, s *Scheduler, req scheduler.StartRequest) (string, error) {
	t.Helper()
	if req.Name == "" {
		req.Name = uniqueName(t, "c")
	}
	labels := testLabels(t)
	for k, v := range req.Labels {
		labels[k] = v
	}
	req.Labels = labels
	t.Cleanup(func() { cleanupContainer(t, req.Name) })
	return req.Name, s.Start(tctx(t), req)
}

// mustStart is start that fails the test on error.
func mustStart(t *testing.T, s *Scheduler, req scheduler.StartRequest) string {
	t.Helper()
	name, err := start(t, s, req)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return name
}

// cleanupContainer removes a container by exact name, through the raw
// client so a test's deliberately broken Scheduler cannot leak it.
func cleanupContainer(t *testing.T, name string) {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := raw.ContainerInspect(c, name)
	if err != nil || strings.TrimPrefix(info.Name, "/") != name {
		return
	}
	if err := raw.ContainerRemove(c, info.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		t.Logf("cleanup %s: %v", name, err)
	}
}

// tctx is a per-call context that cannot hang a test.
func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// waitExited waits for the container to exit and returns its status.
func waitExited(t *testing.T, s *Scheduler, name string) scheduler.Status {
	t.Helper()
	st, err := s.Wait(tctx(t), name)
	if err != nil {
		t.Fatalf("Wait %s: %v", name, err)
	}
	if st.State != scheduler.StateExited {
		t.Fatalf("Wait %s: state %s, want exited (%+v)", name, st.State, st)
	}
	return st
}

// logs reads a container's whole log.
func logs(t *testing.T, s *Scheduler, name string, follow bool) string {
	t.Helper()
	rc, err := s.Logs(tctx(t), name, follow)
	if err != nil {
		t.Fatalf("Logs %s: %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading logs of %s: %v (so far %q)", name, err, b)
	}
	return string(b)
}

// within fails the test if fn takes longer than limit, and returns how
// long it took.
func within(t *testing.T, limit time.Duration, what string, fn func()) time.Duration {
	t.Helper()
	began := time.Now()
	fn()
	took := time.Since(began)
	if took > limit {
		t.Fatalf("%s took %s, want under %s", what, took, limit)
	}
	return took
}

// holdConnections accepts connections and never answers: a daemon or
// registry that hangs. It returns (closing them) when l is closed.
func holdConnections(l net.Listener) {
	var held []net.Conn
	for {
		c, err := l.Accept()
		if err != nil {
			for _, c := range held {
				_ = c.Close()
			}
			return
		}
		held = append(held, c)
	}
}
