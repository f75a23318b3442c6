package schedulertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goferhq/gofer/scheduler"
)

// The cases, in the order they are listed (they run in parallel).
var cases = []testCase{
	{"ExitCodes", testExitCodes},
	{"InvalidRequest", testInvalidRequest},
	{"DuplicateStart", testDuplicateStart},
	{"ConcurrentStarts", testConcurrentStarts},
	{"ResumeCreated", testResumeCreated},
	{"LogsFollow", testLogsFollow},
	{"LogsClose", testLogsClose},
	{"ListByLabels", testListByLabels},
	{"Unreachable", testUnreachable},
	{"StopGraceful", testStopGraceful},
	{"StopKillsAfterGrace", testStopKillsAfterGrace},
	{"Missing", testMissing},
	{"WaitHonoursContext", testWaitHonoursContext},
	{"InspectAndRemoveRunning", testInspectAndRemoveRunning},
}

// running is a program that prints ready and runs until it is stopped.
var running = Program{Output: []Line{{Text: "ready"}}, UntilStopped: true}

// Exit codes reach Wait and Inspect, with start and finish times; Wait on
// an exited container returns at once; logs stay readable after the exit.
func testExitCodes(t *testing.T, e *env) {
	for _, code := range []int{0, 3} {
		t.Run(fmt.Sprintf("exit-%d", code), func(t *testing.T) {
			p := Program{Output: []Line{{Text: fmt.Sprintf("exiting with %d", code)}}, Exit: code}
			req := e.start(t, p, nil)
			st := e.waitExited(t, req.Name)
			if st.ExitCode != code {
				t.Fatalf("Wait: exit code %d, want %d (%+v)", st.ExitCode, code, st)
			}
			if st.Started.IsZero() || st.Finished.Before(st.Started) {
				t.Fatalf("Wait: started %v, finished %v", st.Started, st.Finished)
			}
			// Exited: Wait must answer from what it knows, not block. A
			// blocking Wait fails here with its context's deadline.
			c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			again, err := e.s.Wait(c, req.Name)
			if err != nil || again.State != scheduler.StateExited || again.ExitCode != code {
				t.Fatalf("Wait on an exited container: %+v, %v", again, err)
			}
			if in, err := e.s.Inspect(ctx(t), req.Name); err != nil || in.State != scheduler.StateExited || in.ExitCode != code {
				t.Fatalf("Inspect of an exited container: %+v, %v", in, err)
			}
			if got := e.logs(t, req.Name, false); got != p.Text(false) {
				t.Fatalf("logs %q, want %q", got, p.Text(false))
			}
		})
	}
}

// A request without a name is refused as invalid.
func testInvalidRequest(t *testing.T, e *env) {
	req := e.f.Request(Program{})
	req.Name = ""
	if err := e.s.Start(ctx(t), req); !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("Start without a name: %v, want ErrInvalid", err)
	}
}

// A second Start of a started name gives ErrAlreadyExists, whether the
// container still runs or has exited, and leaves the first one alone.
func testDuplicateStart(t *testing.T, e *env) {
	req := e.start(t, running, nil)
	e.waitOutput(t, req.Name, "ready\n")
	other := e.f.Request(Program{Output: []Line{{Text: "second"}}, Exit: 5})
	other.Name, other.Labels = req.Name, req.Labels
	if err := e.s.Start(ctx(t), other); !errors.Is(err, scheduler.ErrAlreadyExists) {
		t.Fatalf("second Start of a running container: %v, want ErrAlreadyExists", err)
	}
	if st, err := e.s.Inspect(ctx(t), req.Name); err != nil || st.State != scheduler.StateRunning {
		t.Fatalf("after the conflict: %+v, %v; want the first container still running", st, err)
	}
	if err := e.s.Stop(ctx(t), req.Name, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st := e.waitExited(t, req.Name); st.ExitCode != 0 {
		t.Fatalf("exit %d, want 0", st.ExitCode)
	}
	if err := e.s.Start(ctx(t), other); !errors.Is(err, scheduler.ErrAlreadyExists) {
		t.Fatalf("Start of an exited container's name: %v, want ErrAlreadyExists", err)
	}
	if got := e.logs(t, req.Name, false); got != "ready\n" {
		t.Fatalf("logs %q: the first container's output only, once", got)
	}
}

// Starts of one name racing each other run one container: each returns
// nil (it made or started the container) or ErrAlreadyExists.
func testConcurrentStarts(t *testing.T, e *env) {
	const n = 6
	req := e.request(t, running, map[string]string{"gofer.conformance.race": randHex(4)})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.s.Start(ctx(t), req)
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, scheduler.ErrAlreadyExists):
			t.Fatalf("Start %d: %v, want nil or ErrAlreadyExists", i, err)
		}
	}
	if ok == 0 {
		t.Fatalf("no Start succeeded: %v", errs)
	}
	list, err := e.s.List(ctx(t), map[string]string{"gofer.conformance.race": req.Labels["gofer.conformance.race"]})
	if err != nil || len(list) != 1 || list[0].Name != req.Name {
		t.Fatalf("List: %v (%v); want the one container %s", sortedNames(list), err, req.Name)
	}
	e.waitOutput(t, req.Name, "ready\n")
	if err := e.s.Stop(ctx(t), req.Name, time.Minute); err != nil {
		t.Fatal(err)
	}
	e.waitExited(t, req.Name)
	if got := e.logs(t, req.Name, false); got != "ready\n" {
		t.Fatalf("logs %q: the program ran more than once", got)
	}
}

// A container created but never started (a leader died between the two
// calls) is started by the next Start of its name: that very container,
// not the new request's; once started, a further Start conflicts.
func testResumeCreated(t *testing.T, e *env) {
	if e.f.CreateUnstarted == nil {
		t.Fatal("Factory.CreateUnstarted is nil and the case is not skipped")
	}
	first := e.request(t, Program{Output: []Line{{Text: "the first create"}}, Exit: 7}, nil)
	e.f.CreateUnstarted(t, e.s, first)
	if st, err := e.s.Inspect(ctx(t), first.Name); err != nil || st.State != scheduler.StateCreated {
		t.Fatalf("Inspect of a created container: %+v, %v; want created", st, err)
	}
	second := e.f.Request(Program{Output: []Line{{Text: "the second request"}}, Exit: 3})
	second.Name, second.Labels = first.Name, first.Labels
	if err := e.s.Start(ctx(t), second); err != nil {
		t.Fatalf("Start over a created container: %v", err)
	}
	if st := e.waitExited(t, first.Name); st.ExitCode != 7 {
		t.Fatalf("exit %d, want 7 from the container created first", st.ExitCode)
	}
	if got := e.logs(t, first.Name, false); got != "the first create\n" {
		t.Fatalf("logs %q, want the first container's", got)
	}
	if err := e.s.Start(ctx(t), second); !errors.Is(err, scheduler.ErrAlreadyExists) {
		t.Fatalf("Start over an exited container: %v, want ErrAlreadyExists", err)
	}
}

// One stream holds stdout and stderr; following it from the start sees
// the output as it is written and ends by itself when the container
// exits. Reading again after the exit gives the same bytes: the order is
// the one the backend recorded. (Across the two streams that order is the
// backend's: they are separate pipes, so only each stream's own order is
// asserted.)
func testLogsFollow(t *testing.T, e *env) {
	var out []Line
	for i := 1; i <= 6; i++ {
		out = append(out, Line{Text: fmt.Sprintf("out %d", i)}, Line{Stderr: true, Text: fmt.Sprintf("err %d", i)})
	}
	out = append(out, Line{Text: "ready"})
	p := Program{Output: out, Exit: 4, UntilStopped: true}
	if sl, ok := e.s.(scheduler.StreamLogger); ok {
		testStreamLogsFollow(t, e, sl, p)
		return
	}
	req := e.start(t, p, nil)
	rc, err := e.s.Logs(ctx(t), req.Name, true)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	defer rc.Close()
	r := bufio.NewReader(rc)
	var followed strings.Builder
	lines := 0
	for lines < len(out) {
		line, err := r.ReadString('\n')
		followed.WriteString(line)
		if err != nil {
			t.Fatalf("follow ended before the container exited: %v (read %q)", err, followed.String())
		}
		lines++
	}
	// All output is in and the container still runs: stop it, and the
	// stream must end without being closed.
	if st, err := e.s.Inspect(ctx(t), req.Name); err != nil || st.State != scheduler.StateRunning {
		t.Fatalf("Inspect while following: %+v, %v", st, err)
	}
	if err := e.s.Stop(ctx(t), req.Name, time.Minute); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("the followed stream ended with %v", err)
	}
	followed.Write(rest)
	if st := e.waitExited(t, req.Name); st.ExitCode != 4 {
		t.Fatalf("exit %d, want 4", st.ExitCode)
	}
	got := followed.String()
	if so, se := split(got); so != p.Text(false) || se != p.Text(true) {
		t.Fatalf("followed log %q:\nstdout %q, want %q\nstderr %q, want %q", got, so, p.Text(false), se, p.Text(true))
	}
	if again := e.logs(t, req.Name, false); again != got {
		t.Fatalf("log read after the exit %q differs from the followed one %q", again, got)
	}
	if again := e.logs(t, req.Name, true); again != got {
		t.Fatalf("follow of an exited container %q differs from the followed one %q", again, got)
	}
}

// split separates the conformance programs' lines by stream (stdout lines
// are "out …" and "ready", stderr lines "err …").
func split(log string) (stdout, stderr string) {
	for _, l := range strings.SplitAfter(log, "\n") {
		if strings.HasPrefix(l, "err ") {
			stderr += l
		} else {
			stdout += l
		}
	}
	return stdout, stderr
}

// Closing a follow stream of a running container returns (it does not
// wait for the container), and the stream reads no more.
func testLogsClose(t *testing.T, e *env) {
	req := e.start(t, running, nil)
	rc, err := e.s.Logs(ctx(t), req.Name, true)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(rc).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	bounded(t, time.Minute, "Close of a follow stream", func() { _ = rc.Close() })
	if _, err := rc.Read(make([]byte, 16)); err == nil {
		t.Fatal("a read after Close succeeded")
	}
	_ = rc.Close() // idempotent
	if st, err := e.s.Inspect(ctx(t), req.Name); err != nil || st.State != scheduler.StateRunning {
		t.Fatalf("closing the log stopped the container: %+v, %v", st, err)
	}
}

// List returns every container (running or exited) carrying all the
// labels; a label given without a value matches its presence.
func testListByLabels(t *testing.T, e *env) {
	set := randHex(4)
	want := map[string]int{}
	var running0, marked string
	for i, group := range []string{"a", "a", "b", "a"} {
		labels := map[string]string{"gofer.conformance.set": set, "group": group}
		p := Program{Exit: i}
		if i == 0 {
			p = running
		}
		if i == 3 {
			labels["marked"] = "any-value"
		}
		req := e.start(t, p, labels)
		if i == 0 {
			running0 = req.Name
			e.waitOutput(t, req.Name, "ready\n")
		} else {
			e.waitExited(t, req.Name)
		}
		if i == 3 {
			marked = req.Name
		}
		if group == "a" {
			want[req.Name] = i
		}
	}
	got, err := e.s.List(ctx(t), map[string]string{"gofer.conformance.set": set, "group": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("List found %v, want the 3 of group a", sortedNames(got))
	}
	for _, c := range got {
		code, ok := want[c.Name]
		if !ok || c.Labels["group"] != "a" || c.Labels["gofer.conformance.set"] != set {
			t.Fatalf("unexpected entry %+v", c)
		}
		wantState := scheduler.StateExited
		if c.Name == running0 {
			wantState = scheduler.StateRunning
		}
		if c.Status.State != wantState || (wantState == scheduler.StateExited && c.Status.ExitCode != code) {
			t.Fatalf("entry %s: %+v; want %s with exit %d", c.Name, c.Status, wantState, code)
		}
	}
	if all, err := e.s.List(ctx(t), map[string]string{"gofer.conformance.set": set}); err != nil || len(all) != 4 {
		t.Fatalf("List by one label: %v, %v; want 4", sortedNames(all), err)
	}
	if got, err := e.s.List(ctx(t), map[string]string{"gofer.conformance.set": set, "marked": ""}); err != nil || len(got) != 1 || got[0].Name != marked {
		t.Fatalf("List by label presence: %v, %v; want only %s", sortedNames(got), err, marked)
	}
	if none, err := e.s.List(ctx(t), map[string]string{"gofer.conformance.set": set + "-other"}); err != nil || len(none) != 0 {
		t.Fatalf("List of an unused label value: %v, %v", sortedNames(none), err)
	}
	if err := e.s.Stop(ctx(t), running0, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// An unreachable backend fails every call with ErrUnavailable, and no
// call outlives its context.
func testUnreachable(t *testing.T, e *env) {
	if e.f.Unreachable == nil {
		t.Fatal("Factory.Unreachable is nil and the case is not skipped")
	}
	s := e.f.Unreachable(t)
	req := e.f.Request(Program{})
	req.Name = e.name(t)
	calls := map[string]func(context.Context) error{
		"Start":   func(c context.Context) error { return s.Start(c, req) },
		"Inspect": func(c context.Context) error { _, err := s.Inspect(c, req.Name); return err },
		"Wait":    func(c context.Context) error { _, err := s.Wait(c, req.Name); return err },
		"Logs": func(c context.Context) error {
			rc, err := s.Logs(c, req.Name, true)
			if err == nil {
				rc.Close()
			}
			return err
		},
		"Stop":   func(c context.Context) error { return s.Stop(c, req.Name, time.Second) },
		"Remove": func(c context.Context) error { return s.Remove(c, req.Name) },
		"List": func(c context.Context) error {
			_, err := s.List(c, map[string]string{"gofer.conformance.set": "x"})
			return err
		},
	}
	for op, call := range calls {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			const limit = 10 * time.Second
			c, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			var err error
			bounded(t, limit+30*time.Second, op+" against an unreachable backend", func() { err = call(c) })
			if !errors.Is(err, scheduler.ErrUnavailable) {
				t.Fatalf("%s: %v, want ErrUnavailable", op, err)
			}
		})
	}
}

// Stop sends SIGTERM: a program that exits on it ends with its own code,
// and Stop does not wait out a long grace for it.
func testStopGraceful(t *testing.T, e *env) {
	req := e.start(t, Program{Output: []Line{{Text: "ready"}}, Exit: 0, UntilStopped: true}, nil)
	e.waitOutput(t, req.Name, "ready\n")
	// The grace is longer than the test's deadline: only a graceful exit
	// lets Stop return in time.
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.s.Stop(c, req.Name, time.Hour); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st := e.waitExited(t, req.Name); st.ExitCode != 0 {
		t.Fatalf("exit %d, want 0 from the program's own exit on SIGTERM (%+v)", st.ExitCode, st)
	}
}

// A program that ignores SIGTERM is killed once the grace has passed
// (exit 137, 128 + SIGKILL), not before; stopping it again once it has
// exited is not an error.
func testStopKillsAfterGrace(t *testing.T, e *env) {
	req := e.start(t, Program{Output: []Line{{Text: "ready"}}, IgnoreTERM: true}, nil)
	e.waitOutput(t, req.Name, "ready\n")
	const grace = time.Second
	began := time.Now()
	if err := e.s.Stop(ctx(t), req.Name, grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	st := e.waitExited(t, req.Name)
	if took := time.Since(began); took < grace {
		t.Fatalf("exited %s after the stop, before its %s grace", took, grace)
	}
	if st.ExitCode != 137 {
		t.Fatalf("exit %d, want 137 (killed)", st.ExitCode)
	}
	if err := e.s.Stop(ctx(t), req.Name, grace); err != nil {
		t.Fatalf("Stop of an exited container: %v", err)
	}
}

// A name nobody used: Inspect and Wait answer StateNotFound (the
// backend's positive answer, no error), Stop and Remove succeed, and Logs
// fails with ErrInvalid (nothing to read; retrying will not help).
func testMissing(t *testing.T, e *env) {
	name := e.name(t)
	if st, err := e.s.Inspect(ctx(t), name); err != nil || st.State != scheduler.StateNotFound {
		t.Fatalf("Inspect: %+v, %v; want not found", st, err)
	}
	if st, err := e.s.Wait(ctx(t), name); err != nil || st.State != scheduler.StateNotFound {
		t.Fatalf("Wait: %+v, %v; want not found", st, err)
	}
	if err := e.s.Stop(ctx(t), name, time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := e.s.Remove(ctx(t), name); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if rc, err := e.s.Logs(ctx(t), name, false); !errors.Is(err, scheduler.ErrInvalid) {
		if err == nil {
			rc.Close()
		}
		t.Fatalf("Logs: %v, want ErrInvalid", err)
	}
}

// Wait on a running container ends with its context: an error wrapping
// ErrUnavailable and the context's error.
func testWaitHonoursContext(t *testing.T, e *env) {
	req := e.start(t, running, nil)
	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var err error
	bounded(t, time.Minute, "Wait with a 300ms context", func() { _, err = e.s.Wait(c, req.Name) })
	if !errors.Is(err, scheduler.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
}

// Inspect of a running container reports it running since a start time,
// with its labels; Remove stops and deletes it.
func testInspectAndRemoveRunning(t *testing.T, e *env) {
	req := e.start(t, running, map[string]string{"gofer.conformance.mark": "m"})
	st, err := e.s.Inspect(ctx(t), req.Name)
	if err != nil || st.State != scheduler.StateRunning || st.Started.IsZero() || st.Labels["gofer.conformance.mark"] != "m" {
		t.Fatalf("Inspect of a running container: %+v, %v; want running, a start time and its labels", st, err)
	}
	if err := e.s.Remove(ctx(t), req.Name); err != nil {
		t.Fatalf("Remove of a running container: %v", err)
	}
	if st, err := e.s.Inspect(ctx(t), req.Name); err != nil || st.State != scheduler.StateNotFound {
		t.Fatalf("after Remove: %+v, %v; want not found", st, err)
	}
}

// waitExited waits for the container to exit and returns its status.
func (e *env) waitExited(t *testing.T, name string) scheduler.Status {
	t.Helper()
	st, err := e.s.Wait(ctx(t), name)
	if err != nil || st.State != scheduler.StateExited {
		t.Fatalf("Wait %s: %+v, %v; want exited", name, st, err)
	}
	return st
}

// logs reads a container's whole log.
func (e *env) logs(t *testing.T, name string, follow bool) string {
	t.Helper()
	rc, err := e.s.Logs(ctx(t), name, follow)
	if err != nil {
		t.Fatalf("Logs %s: %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading the logs of %s: %v (so far %q)", name, err, b)
	}
	return string(b)
}

// waitOutput waits until the container's log holds want: evidence that
// the program got that far (its signal handling is in place).
func (e *env) waitOutput(t *testing.T, name, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		rc, err := e.s.Logs(ctx(t), name, false)
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			if strings.Contains(string(b), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never wrote %q", name, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bounded fails the test if fn runs past limit: a hang fails instead of
// stalling the suite.
func bounded(t *testing.T, limit time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s still runs after %s", what, limit)
	}
}
