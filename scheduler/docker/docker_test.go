package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/goferhq/gofer/scheduler"
)

// The contract's cases (exit codes, logs, stop, list, conflicts…) run in
// TestConformance (conformance_test.go); the tests here are Docker's own.

// The gofer image's debug tool fails on purpose: its exit code and both
// streams come through.
func TestGoferImageExitAndOutput(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{})
	name := mustStart(t, s, scheduler.StartRequest{Image: goferImage, Command: []string{"debug", "fail"},
		Env: map[string]string{"FAIL_SLEEP": "10ms"}})
	if st := waitExited(t, s, name); st.ExitCode != 1 {
		t.Fatalf("exit code %d, want 1 (%+v)", st.ExitCode, st)
	}
	want := "debug fail: will exit with code 1 in 10ms\nerror: debug fail: exiting with code 1 on purpose\n"
	if got := logs(t, s, name, false); got != want {
		t.Fatalf("logs %q, want %q", got, want)
	}
}

func TestEnvEntrypointCommand(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{})
	t.Run("env via gofer debug envs", func(t *testing.T) {
		t.Parallel()
		name := mustStart(t, s, scheduler.StartRequest{Image: goferImage, Command: []string{"debug", "envs"},
			Env: map[string]string{"ZED": "last", "ALPHA": "1", "WITH_SPACE": "a b=c"}})
		waitExited(t, s, name)
		out := logs(t, s, name, false)
		for _, want := range []string{"ALPHA=1\n", "WITH_SPACE=a b=c\n", "ZED=last\n"} {
			if !strings.Contains(out, want) {
				t.Fatalf("env output lacks %q:\n%s", want, out)
			}
		}
		if strings.Index(out, "ALPHA=1") > strings.Index(out, "ZED=last") {
			t.Fatalf("envs output not sorted:\n%s", out)
		}
	})
	t.Run("entrypoint and command", func(t *testing.T) {
		t.Parallel()
		name := mustStart(t, s, scheduler.StartRequest{Image: busyboxImage,
			Entrypoint: []string{"/bin/echo"}, Command: []string{"hello", "world"}})
		waitExited(t, s, name)
		if got := logs(t, s, name, false); got != "hello world\n" {
			t.Fatalf("logs %q", got)
		}
	})
	t.Run("image entrypoint kept when nil", func(t *testing.T) {
		t.Parallel()
		// gofer/gofer's ENTRYPOINT is /gofer: the command is its arguments.
		name := mustStart(t, s, scheduler.StartRequest{Image: goferImage, Command: []string{"debug", "wait"},
			Env: map[string]string{"WAIT_DURATION": "1ms"}})
		if st := waitExited(t, s, name); st.ExitCode != 0 {
			t.Fatalf("exit %d", st.ExitCode)
		}
		if got := logs(t, s, name, false); !strings.Contains(got, "waited 1ms") {
			t.Fatalf("logs %q", got)
		}
	})
	t.Run("bad value exits 42", func(t *testing.T) {
		t.Parallel()
		name := mustStart(t, s, scheduler.StartRequest{Image: goferImage, Command: []string{"debug", "wait"},
			Env: map[string]string{"WAIT_DURATION": "soon"}})
		if st := waitExited(t, s, name); st.ExitCode != 42 {
			t.Fatalf("exit %d, want 42", st.ExitCode)
		}
	})
}

// Docker's own order across the two streams: lines written 60 ms apart
// on alternating streams come back in the order written (the suite
// asserts only each stream's order, which every backend keeps).
func TestLogsInterleavedAndFollow(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{})
	const n = 12
	name := mustStart(t, s, scheduler.StartRequest{Image: goferImage, Command: []string{"debug", "log"},
		Env: map[string]string{"LOG_LINES": fmt.Sprint(n), "LOG_INTERVAL": "60ms", "LOGS_HEADER": "the header"}})
	want := "the header\n"
	for i := 1; i <= n; i++ {
		stream := "stdout"
		if i%2 == 0 {
			stream = "stderr"
		}
		want += fmt.Sprintf("line %d of %d (%s)\n", i, n, stream)
	}
	// Follow from the start: the stream ends by itself when the task
	// exits, with every line in the order written across both streams.
	if got := logs(t, s, name, true); got != want {
		t.Fatalf("followed logs:\n%s\nwant:\n%s", got, want)
	}
	if st, err := s.Inspect(tctx(t), name); err != nil || st.State != scheduler.StateExited {
		t.Fatalf("after follow ended: %+v, %v", st, err)
	}
	// Read again after exit, without follow: same log, from the beginning.
	if got := logs(t, s, name, false); got != want {
		t.Fatalf("logs after exit:\n%s\nwant:\n%s", got, want)
	}
}

// TestStartAfterRefusedStart: a container the engine refused to start is
// evidence, not a created container to retry.
func TestStartAfterRefusedStart(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{})
	req := scheduler.StartRequest{Image: busyboxImage, Command: []string{"no-such-command"}}
	name, err := start(t, s, req)
	if !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("Start: %v, want ErrInvalid", err)
	}
	req.Name = name
	if _, err := start(t, s, req); !errors.Is(err, scheduler.ErrAlreadyExists) {
		t.Fatalf("second Start: %v, want ErrAlreadyExists", err)
	}
}

func TestMissingImage(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{PullTimeout: 10 * time.Second})
	image := "gofer-test-missing/" + runID + ":absent"
	var err error
	var name string
	within(t, 15*time.Second, "Start with a missing image", func() {
		name, err = start(t, s, scheduler.StartRequest{Image: image, Command: []string{"true"},
			RegistryUser: "user", RegistryPass: "pass"})
	})
	if !errors.Is(err, scheduler.ErrImageNotFound) || !strings.Contains(err.Error(), image) {
		t.Fatalf("Start: %v, want ErrImageNotFound naming %s", err, image)
	}
	t.Logf("error: %v", err)
	if st, err := s.Inspect(tctx(t), name); err != nil || st.State != scheduler.StateNotFound {
		t.Fatalf("a container was created anyway: %+v, %v", st, err)
	}
}

func TestPullTimeout(t *testing.T) {
	t.Parallel()
	// A "registry" on the engine host's loopback that accepts connections
	// and never answers: only PullTimeout can end the pull.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go holdConnections(l)
	s := newScheduler(t, Options{PullTimeout: time.Second})
	image := l.Addr().String() + "/gofer-test/" + runID + ":absent"
	within(t, 10*time.Second, "Start whose pull hangs", func() {
		_, err = start(t, s, scheduler.StartRequest{Image: image, Command: []string{"true"}})
	})
	if !errors.Is(err, scheduler.ErrImageNotFound) || !strings.Contains(err.Error(), image) {
		t.Fatalf("Start: %v, want ErrImageNotFound naming %s", err, image)
	}
	t.Logf("error: %v", err)
}

func TestAlwaysPullFallsBackToLocal(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{PullTimeout: 10 * time.Second})
	// No registry here: the pull fails, the local image is used.
	name := mustStart(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"true"}, AlwaysPull: true})
	if st := waitExited(t, s, name); st.ExitCode != 0 {
		t.Fatalf("exit %d", st.ExitCode)
	}
}

func TestStartRefused(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{})
	name, err := start(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"no-such-command"}})
	if !errors.Is(err, scheduler.ErrInvalid) || !strings.Contains(err.Error(), "executable file not found") {
		t.Fatalf("Start: %v, want ErrInvalid with the engine's words", err)
	}
	// The refused container remains as evidence, and reads as finished.
	st, err := s.Inspect(tctx(t), name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != 127 || !strings.Contains(st.Message, "executable file not found") {
		t.Fatalf("Inspect: %+v, %v; want exited 127 with the engine's message", st, err)
	}
	within(t, 5*time.Second, "Wait on a container that never started", func() { waitExited(t, s, name) })

	for _, req := range []scheduler.StartRequest{
		{Name: "", Image: busyboxImage},
		{Name: uniqueName(t, "x"), Image: ""},
		{Name: uniqueName(t, "x"), Image: busyboxImage, Env: map[string]string{"A=B": "c"}},
	} {
		if err := s.Start(tctx(t), req); !errors.Is(err, scheduler.ErrInvalid) {
			t.Fatalf("Start(%+v): %v, want ErrInvalid", req, err)
		}
	}
}

// Docker also resolves references by ID prefix; a name we did not use
// must not find (or remove) someone else's container that way.
func TestNamesAreExactNotIDPrefixes(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{})
	name := mustStart(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"sleep", "60"}})
	info, err := raw.ContainerInspect(tctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	prefix := info.ID[:12]
	if st, err := s.Inspect(tctx(t), prefix); err != nil || st.State != scheduler.StateNotFound {
		t.Fatalf("Inspect by ID prefix: %+v, %v; want not found", st, err)
	}
	if err := s.Remove(tctx(t), prefix); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Inspect(tctx(t), name); st.State != scheduler.StateRunning {
		t.Fatalf("Remove by ID prefix removed the container: %+v", st)
	}
}

// A daemon that accepts connections and never answers: every call must
// still end with ErrUnavailable, bounded by APITimeout and not only by the
// caller's ctx. (An address where nothing listens is the conformance
// suite's Unreachable case.)
func TestUnreachableDaemon(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "mute.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go holdConnections(l)
	mute := newScheduler(t, Options{Host: "unix://" + sock, APITimeout: 300 * time.Millisecond})

	for _, sc := range []struct {
		name string
		s    *Scheduler
	}{{"mute daemon", mute}} {
		calls := map[string]func(context.Context) error{
			"Start": func(c context.Context) error {
				return sc.s.Start(c, scheduler.StartRequest{Name: uniqueName(t, "u"), Image: busyboxImage})
			},
			"Inspect": func(c context.Context) error { _, err := sc.s.Inspect(c, "x"); return err },
			"Wait":    func(c context.Context) error { _, err := sc.s.Wait(c, "x"); return err },
			"Logs":    func(c context.Context) error { _, err := sc.s.Logs(c, "x", true); return err },
			"Stop":    func(c context.Context) error { return sc.s.Stop(c, "x", time.Second) },
			"Remove":  func(c context.Context) error { return sc.s.Remove(c, "x") },
			"List":    func(c context.Context) error { _, err := sc.s.List(c, map[string]string{"a": "b"}); return err },
			"Check":   sc.s.Check,
		}
		for op, call := range calls {
			t.Run(sc.name+"/"+op, func(t *testing.T) {
				t.Parallel()
				// The caller's ctx is generous: the bound must come from
				// the backend itself.
				c, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				var err error
				within(t, 5*time.Second, op, func() { err = call(c) })
				if !errors.Is(err, scheduler.ErrUnavailable) {
					t.Fatalf("%s: %v, want ErrUnavailable", op, err)
				}
				t.Logf("error: %v", err)
			})
		}
	}
}

func TestNetworkModes(t *testing.T) {
	t.Parallel()
	t.Run("host", func(t *testing.T) {
		t.Parallel()
		s := newScheduler(t, Options{Network: "host"})
		// The host's interfaces (the engine's docker0 bridge) are visible
		// only on the host network.
		name := mustStart(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"cat", "/proc/net/dev"}})
		waitExited(t, s, name)
		if out := logs(t, s, name, false); !strings.Contains(out, "docker0") {
			t.Fatalf("host network: no docker0 in\n%s", out)
		}
	})
	t.Run("default bridge", func(t *testing.T) {
		t.Parallel()
		s := newScheduler(t, Options{})
		name := mustStart(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"cat", "/proc/net/dev"}})
		waitExited(t, s, name)
		if out := logs(t, s, name, false); strings.Contains(out, "docker0") || !strings.Contains(out, "eth0") {
			t.Fatalf("bridge network: unexpected interfaces\n%s", out)
		}
	})
	t.Run("named", func(t *testing.T) {
		t.Parallel()
		netName := uniqueName(t, "net")
		if _, err := raw.NetworkCreate(tctx(t), netName, network.CreateOptions{Labels: testLabels(t)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := raw.NetworkRemove(c, netName); err != nil {
				t.Logf("removing network %s: %v", netName, err)
			}
		}) // registered first, so it runs after the containers' removal
		s := newScheduler(t, Options{Network: netName})
		if err := s.Check(tctx(t)); err != nil {
			t.Fatalf("Check: %v", err)
		}
		name := mustStart(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"sleep", "30"}})
		info, err := raw.ContainerInspect(tctx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		ep, ok := info.NetworkSettings.Networks[netName]
		if !ok || ep.IPAddress == "" || len(info.NetworkSettings.Networks) != 1 {
			t.Fatalf("container networks %+v, want only %s with an address", info.NetworkSettings.Networks, netName)
		}
	})
	t.Run("missing network", func(t *testing.T) {
		t.Parallel()
		absent := uniqueName(t, "nonet")
		s := newScheduler(t, Options{Network: absent})
		if err := s.Check(tctx(t)); !errors.Is(err, scheduler.ErrInvalid) {
			t.Fatalf("Check: %v, want ErrInvalid", err)
		}
		_, err := start(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"true"}})
		if !errors.Is(err, scheduler.ErrInvalid) || !strings.Contains(err.Error(), absent) {
			t.Fatalf("Start: %v, want ErrInvalid naming the network", err)
		}
	})
}

// A task's resources reach the container: memory as its hard limit, CPU
// (MHz) as its CPU shares; a request without them keeps Docker's defaults.
func TestResourcesBecomeLimits(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{})
	name := mustStart(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"sleep", "60"}, CPU: 500, MemoryMB: 64})
	info, err := raw.ContainerInspect(tctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	if info.HostConfig.Memory != 64<<20 || info.HostConfig.CPUShares != 500 {
		t.Fatalf("memory %d, CPU shares %d; want %d and 500", info.HostConfig.Memory, info.HostConfig.CPUShares, 64<<20)
	}
	plain := mustStart(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"sleep", "60"}})
	if info, err = raw.ContainerInspect(tctx(t), plain); err != nil {
		t.Fatal(err)
	}
	if info.HostConfig.Memory != 0 || info.HostConfig.CPUShares != 0 {
		t.Fatalf("without resources: memory %d, CPU shares %d; want Docker's defaults (0)", info.HostConfig.Memory, info.HostConfig.CPUShares)
	}
}
