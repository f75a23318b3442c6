package nomad

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// The contract tests run the backend against fakeNomad (fake_test.go):
// what is asserted is what the backend sends and how it reads Nomad's
// answers. real_test.go runs the same scenarios against a real agent.

func newFakeScheduler(t *testing.T, f *fakeNomad) *Scheduler {
	t.Helper()
	s, err := New(Options{Address: f.srv.URL, APITimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startWith starts req in the background (Start waits until the task has
// started or ended), lets then move the fake's job once it is registered,
// and returns what Start returned.
func startWith(t *testing.T, f *fakeNomad, s *Scheduler, req scheduler.StartRequest, then func(name string)) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- s.Start(testCtx(t), req) }()
	eventually(t, "the register of "+req.Name, func() bool { return f.registered(req.Name) })
	then(req.Name)
	return <-errc
}

// eventually polls cond (a goroutine's progress, not a timing claim).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func TestContractStartRegistersOneBatchJob(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	req := scheduler.StartRequest{
		Name: "gofer.c1.uid.default.p.1.build.0", Image: "registry.local/app:1.2",
		Entrypoint: []string{"/bin/sh", "-c"}, Command: []string{"echo hi", "x"},
		Env:          map[string]string{"A": "1"},
		Labels:       map[string]string{scheduler.LabelCluster: "c1", scheduler.LabelTask: "build"},
		RegistryUser: "u", RegistryPass: "p", Network: "host",
	}
	if err := startWith(t, f, s, req, func(name string) {
		// Registered, not placed: created, and Start still waits.
		st, err := s.Inspect(ctx, name)
		if err != nil || st.State != scheduler.StateCreated {
			t.Errorf("Inspect before placement: %+v %v, want created", st, err)
		}
		f.run(name)
	}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	reg := f.lastRegister()
	if !reg.EnforceIndex || reg.JobModifyIndex != 0 {
		t.Errorf("register EnforceIndex=%v JobModifyIndex=%d, want true and 0", reg.EnforceIndex, reg.JobModifyIndex)
	}
	j := reg.Job
	if *j.ID != req.Name || *j.Type != "batch" || !reflect.DeepEqual(j.Meta, req.Labels) || !reflect.DeepEqual(j.Datacenters, []string{"*"}) {
		t.Errorf("job id %q type %q meta %v datacenters %v", *j.ID, *j.Type, j.Meta, j.Datacenters)
	}
	if len(j.TaskGroups) != 1 || len(j.TaskGroups[0].Tasks) != 1 || *j.TaskGroups[0].Count != 1 {
		t.Fatalf("want one group of count 1 with one task, got %+v", j.TaskGroups)
	}
	g := j.TaskGroups[0]
	if rp := g.RestartPolicy; rp == nil || *rp.Attempts != 0 || *rp.Mode != "fail" {
		t.Errorf("restart policy %+v, want no attempts, mode fail", rp)
	}
	if rs := g.ReschedulePolicy; rs == nil || *rs.Attempts != 0 || *rs.Unlimited {
		t.Errorf("reschedule policy %+v, want none", rs)
	}
	if len(g.Networks) != 0 {
		t.Errorf("a task container reserved a network: %+v", g.Networks)
	}
	task := g.Tasks[0]
	want := map[string]any{"image": req.Image, "entrypoint": []any{"/bin/sh", "-c"}, "command": "echo hi", "args": []any{"x"},
		"network_mode": "host", "auth": map[string]any{"username": "u", "password": "p"}}
	if task.Driver != "docker" || !reflect.DeepEqual(task.Config, want) {
		t.Errorf("task driver %q config %#v, want docker %#v", task.Driver, task.Config, want)
	}
	if !reflect.DeepEqual(task.Env, req.Env) || *task.Resources.CPU != DefaultCPU || *task.Resources.MemoryMB != DefaultMemoryMB ||
		*task.KillTimeout != DefaultStopGrace {
		t.Errorf("env %v resources %d/%d kill timeout %v", task.Env, *task.Resources.CPU, *task.Resources.MemoryMB, *task.KillTimeout)
	}
	if st, err := s.Inspect(ctx, req.Name); err != nil || st.State != scheduler.StateRunning {
		t.Fatalf("Inspect after Start: %+v %v, want running", st, err)
	}
}

// An extension on the host network (the supervisor's Nomad placement)
// reserves the port of its address label as a static port of the group,
// so Nomad places it only where that port is free, and is reported at the
// address of the node it was placed on.
func TestContractExtensionReservesPortAndReportsNodeAddress(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "gofer.c1.extension.interval"
	req := scheduler.StartRequest{Name: name, Image: "gofer/extension-interval:1.0.0", Network: "host",
		Labels: map[string]string{scheduler.LabelCluster: "c1", scheduler.LabelExtension: "interval",
			scheduler.LabelExtensionAddr: "0.0.0.0:19501"}}
	// Start waits for the task: the allocation is placed and started
	// in the background, after a look at the job before its placement.
	if err := startWith(t, f, s, req, func(name string) {
		if st, err := s.Inspect(ctx, name); err != nil || st.State != scheduler.StateCreated || st.IPAddress != "" {
			t.Fatalf("before placement: %+v %v, want created without an address", st, err)
		}
		f.run(name)
	}); err != nil {
		t.Fatal(err)
	}
	g := f.lastRegister().Job.TaskGroups[0]
	want := []*nomadapi.NetworkResource{{Mode: "host", ReservedPorts: []nomadapi.Port{{Label: "extension", Value: 19501}}}}
	if !reflect.DeepEqual(g.Networks, want) {
		t.Errorf("group networks %s, want %s", jsonOf(g.Networks), jsonOf(want))
	}
	if *f.lastRegister().Job.Type != nomadapi.JobTypeBatch {
		t.Errorf("job type %s, want batch (the supervisor restarts extensions)", *f.lastRegister().Job.Type)
	}
	st, err := s.Inspect(ctx, name)
	if err != nil || st.State != scheduler.StateRunning || st.IPAddress != "10.1.2.3" || st.ID != "alloc-"+name ||
		st.Labels[scheduler.LabelExtensionAddr] != "0.0.0.0:19501" {
		t.Fatalf("running: %+v %v, want running at the node's address 10.1.2.3 with its labels", st, err)
	}
	// Only the host network reserves: on a container network the port is
	// the container's own.
	for _, r := range []scheduler.StartRequest{
		{Name: "ext-bridge", Image: "x:1", Network: "bridge", Labels: map[string]string{scheduler.LabelExtensionAddr: "0.0.0.0:8082"}},
		{Name: "ext-noport", Image: "x:1", Network: "host", Labels: map[string]string{scheduler.LabelExtensionAddr: "bad"}},
	} {
		if err := startWith(t, f, s, r, f.run); err != nil {
			t.Fatal(err)
		}
		if n := f.lastRegister().Job.TaskGroups[0].Networks; len(n) != 0 {
			t.Errorf("%s reserved %s", r.Name, jsonOf(n))
		}
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestContractStartRefusesBadRequests(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	for _, req := range []scheduler.StartRequest{
		{Name: "has space", Image: "x:1"},
		{Name: "a/b", Image: "x:1"},
		{Name: "ok", Image: ""},
		{Name: "ok", Image: "x:1", Env: map[string]string{"A=B": "1"}},
	} {
		if err := s.Start(testCtx(t), req); !errors.Is(err, scheduler.ErrInvalid) {
			t.Errorf("Start(%+v): %v, want ErrInvalid", req, err)
		}
	}
}

func TestContractSuccess(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "job-success"
	labels := map[string]string{"k": "v"}
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1", Labels: labels}, f.run); err != nil {
		t.Fatal(err)
	}
	st, err := s.Inspect(ctx, name)
	if err != nil || st.State != scheduler.StateRunning || st.ID != "alloc-"+name || st.IPAddress != "" || !reflect.DeepEqual(st.Labels, labels) {
		t.Fatalf("Inspect running: %+v %v, want running, no address (a task reserves no port)", st, err)
	}
	if f.allocReads != 0 {
		t.Errorf("a task's status read its allocation in full %d times; only jobs that reserve a port need to", f.allocReads)
	}
	f.write(name, "stdout", "out 1\n")
	f.write(name, "stderr", "err 1\n")
	f.exit(name, 0, 0)
	st, err = s.Wait(ctx, name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != 0 || st.Finished.IsZero() || st.Started.IsZero() {
		t.Fatalf("Wait: %+v %v, want exited 0 with times", st, err)
	}
	got := readAll(t, s, name, false)
	if !sameLines(got, "out 1\nerr 1\n") {
		t.Fatalf("logs %q, want both lines once", got)
	}
}

func TestContractFailureExitCodeAndSignal(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	for _, tc := range []struct {
		name         string
		code, signal int
		msg          string
	}{{"exit-3", 3, 0, ""}, {"killed", 137, 9, "killed by signal 9"}} {
		if err := startWith(t, f, s, scheduler.StartRequest{Name: tc.name, Image: "x:1"}, f.run); err != nil {
			t.Fatal(err)
		}
		f.exit(tc.name, tc.code, tc.signal)
		st, err := s.Wait(ctx, tc.name)
		if err != nil || st.State != scheduler.StateExited || st.ExitCode != tc.code || !strings.Contains(st.Message, tc.msg) {
			t.Errorf("%s: Wait %+v %v, want exit %d and %q", tc.name, st, err, tc.code, tc.msg)
		}
	}
}

func TestContractDriverFailureEndsTheTask(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "bad-image"
	// Start returns once the task has ended without running.
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "nope:1"}, func(name string) {
		f.place(name)
		f.failDriver(name, `Failed to pull "nope:1": no such host`)
	}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Wait(ctx, name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != exitNotStarted || !strings.Contains(st.Message, "Failed to pull") {
		t.Fatalf("Wait: %+v %v, want exited %d with the driver's words", st, err, exitNotStarted)
	}
	if got := readAll(t, s, name, true); got != "" {
		t.Fatalf("logs of a task that never ran: %q", got)
	}
}

func TestContractLostAllocationEndsWait(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "lost"
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, f.run); err != nil {
		t.Fatal(err)
	}
	before := len(f.blockingQueries()) // Start's own
	type result struct {
		st  scheduler.Status
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := s.Wait(ctx, name)
		done <- result{st, err}
	}()
	eventually(t, "Wait to block", func() bool { return len(f.blockingQueries()) > before })
	f.lose(name)
	r := <-done
	if r.err != nil || r.st.State != scheduler.StateExited || r.st.ExitCode != exitLost || !strings.Contains(r.st.Message, "lost") {
		t.Fatalf("Wait on a lost allocation: %+v %v, want exited with a message", r.st, r.err)
	}
}

func TestContractAdoptOnDuplicate(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	req := scheduler.StartRequest{Name: "dup", Image: "x:1"}
	// Two Starts before the task started: the second finds the same
	// attempt on its way, and both wait for Nomad to start it.
	first := make(chan error, 1)
	go func() { first <- s.Start(ctx, req) }()
	eventually(t, "the register", func() bool { return f.registered(req.Name) })
	// Wait for the first Start to park: after its register it reads the
	// allocations and the job, then blocks on the job (a second read of
	// it). Counting from before that would count its reads as the
	// second Start's.
	job := "GET /v1/job/" + req.Name
	eventually(t, "the first Start to block on its job", func() bool {
		n := 0
		for _, r := range f.requestsSince(0) {
			if r == job {
				n++
			}
		}
		return n >= 2
	})
	second := make(chan error, 1)
	before := f.requestCount()
	go func() { second <- s.Start(ctx, req) }()
	// The first Start is held in a blocking query, so every request from
	// here on is the second Start's: its refused register, its read of
	// the job (one query of the allocations), and then, having seen the
	// job not started, its wait's first read (a second query of them)
	// before it blocks on the job. Only then is the task started.
	allocs := "GET /v1/job/" + req.Name + "/allocations"
	eventually(t, "the second Start to read the job and wait", func() bool {
		n := 0
		for _, r := range f.requestsSince(before) {
			if r == allocs {
				n++
			}
		}
		return len(f.registerCount()) == 2 && n >= 2
	})
	f.run(req.Name)
	if err := <-first; err != nil {
		t.Fatalf("first Start: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second Start before the task started: %v, want nil; requests %q", err, f.requestsSince(0))
	}
	if err := s.Start(ctx, req); !errors.Is(err, scheduler.ErrAlreadyExists) {
		t.Fatalf("Start of a running attempt: %v, want ErrAlreadyExists", err)
	}
	f.exit(req.Name, 0, 0)
	if err := s.Start(ctx, req); !errors.Is(err, scheduler.ErrAlreadyExists) {
		t.Fatalf("Start of an exited attempt: %v, want ErrAlreadyExists", err)
	}
	list, err := s.List(ctx, nil)
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %v %v, want the one job", list, err)
	}
}

func TestContractLogsFollowUntilDead(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "follow"
	// Opened before the task starts: it waits for the start.
	var rc io.ReadCloser
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, func(name string) {
		var err error
		if rc, err = s.Logs(ctx, name, true); err != nil {
			t.Error(err)
		}
		f.run(name)
	}); err != nil || rc == nil {
		t.Fatal(err)
	}
	defer rc.Close()
	lines := bufio.NewReader(rc)
	f.write(name, "stdout", "one\n")
	if l, err := lines.ReadString('\n'); err != nil || l != "one\n" {
		t.Fatalf("first followed line %q %v", l, err)
	}
	// stderr comes after stdout is complete: the next line is stdout's.
	f.write(name, "stderr", "two\n")
	f.write(name, "stdout", "three\n")
	if l, err := lines.ReadString('\n'); err != nil || l != "three\n" {
		t.Fatalf("second followed line %q %v, want stdout's three", l, err)
	}
	// Written just before the end, and a line without a newline: both
	// must arrive, and the stream must end with the task.
	f.write(name, "stdout", "four")
	f.exit(name, 0, 0)
	rest, err := io.ReadAll(lines)
	if err != nil {
		t.Fatalf("follow ended with %v", err)
	}
	if string(rest) != "fourtwo\n" {
		t.Fatalf("tail %q, want stdout's four, then stderr's two", rest)
	}
	// The order does not depend on arrival: every read gives these bytes.
	for _, follow := range []bool{false, true} {
		if got := readAll(t, s, name, follow); got != "one\nthree\nfourtwo\n" {
			t.Fatalf("read again (follow %v): %q", follow, got)
		}
	}
}

func TestContractWaitUsesBlockingQueries(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "blocking"
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, f.run); err != nil {
		t.Fatal(err)
	}
	at, before := f.currentIndex(), len(f.blockingQueries()) // Start's own
	done := make(chan scheduler.Status, 1)
	go func() {
		st, _ := s.Wait(ctx, name)
		done <- st
	}()
	eventually(t, "Wait to block", func() bool { return len(f.blockingQueries()) > before })
	if got := f.blockingQueries()[before]; got != at {
		t.Fatalf("Wait blocked on index %d, want the index of its first read, %d", got, at)
	}
	f.exit(name, 5, 0)
	if st := <-done; st.State != scheduler.StateExited || st.ExitCode != 5 {
		t.Fatalf("Wait: %+v", st)
	}
	// One plain read, one blocking query woken by the exit: no polling.
	if q := f.blockingQueries()[before:]; len(q) != 1 {
		t.Fatalf("blocking queries %v, want exactly one", q)
	}
}

func TestContractWaitHonoursCtx(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	if err := startWith(t, f, s, scheduler.StartRequest{Name: "forever", Image: "x:1"}, f.run); err != nil {
		t.Fatal(err)
	}
	before := len(f.blockingQueries()) // Start's own
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Wait(ctx, "forever")
		done <- err
	}()
	eventually(t, "Wait to block", func() bool { return len(f.blockingQueries()) > before })
	cancel()
	if err := <-done; !errors.Is(err, scheduler.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v, want ErrUnavailable wrapping context.Canceled", err)
	}
}

func TestContractStopAndRemove(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "stopme"
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, f.run); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx, name, time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	st, err := s.Inspect(ctx, name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != 143 || !strings.Contains(st.Message, "signal 15") {
		t.Fatalf("after Stop: %+v %v, want exited 143 by signal 15", st, err)
	}
	if err := s.Stop(ctx, name, time.Second); err != nil {
		t.Fatalf("Stop of an exited job: %v", err)
	}
	if err := s.Remove(ctx, name); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if st, err := s.Inspect(ctx, name); err != nil || st.State != scheduler.StateNotFound {
		t.Fatalf("after Remove: %+v %v, want not found", st, err)
	}
	if err := s.Remove(ctx, name); err != nil {
		t.Fatalf("Remove of a missing job: %v", err)
	}
	if err := s.Stop(ctx, name, time.Second); err != nil {
		t.Fatalf("Stop of a missing job: %v", err)
	}
	if st, err := s.Wait(ctx, name); err != nil || st.State != scheduler.StateNotFound {
		t.Fatalf("Wait on a missing job: %+v %v", st, err)
	}
	if _, err := s.Logs(ctx, name, false); !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("Logs of a missing job: %v, want ErrInvalid", err)
	}
}

func TestContractListByMeta(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	for name, labels := range map[string]map[string]string{
		"a": {scheduler.LabelCluster: "c1", scheduler.LabelTask: "x"},
		"b": {scheduler.LabelCluster: "c1", scheduler.LabelExtension: "cron"},
		"c": {scheduler.LabelCluster: "c2"},
	} {
		if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1", Labels: labels}, f.run); err != nil {
			t.Fatal(err)
		}
	}
	f.exit("b", 0, 0)
	f.exit("c", 0, 0)
	for _, tc := range []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{scheduler.LabelCluster: "c1"}, []string{"a", "b"}},
		{map[string]string{scheduler.LabelCluster: "c1", scheduler.LabelExtension: ""}, []string{"b"}},
		{map[string]string{scheduler.LabelCluster: ""}, []string{"a", "b", "c"}},
		{map[string]string{scheduler.LabelCluster: "c3"}, nil},
	} {
		list, err := s.List(ctx, tc.labels)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range list {
			names = append(names, c.Name)
			if c.Name == "a" && (c.Status.State != scheduler.StateRunning || c.Labels[scheduler.LabelTask] != "x") {
				t.Errorf("a listed as %+v", c)
			}
		}
		if !reflect.DeepEqual(names, tc.want) {
			t.Errorf("List(%v) = %v, want %v", tc.labels, names, tc.want)
		}
	}
}

func TestContractUnreachableIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	// A server that takes the request and never answers.
	// (The body is read first: the server notices a client that went away
	// only once it has.)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer hang.Close()
	// A server without a leader answers 500.
	noLeader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "No cluster leader", http.StatusInternalServerError)
	}))
	defer noLeader.Close()
	for _, addr := range []string{closed, hang.URL, noLeader.URL} {
		s, err := New(Options{Address: addr, APITimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		errs := map[string]error{"Start": s.Start(ctx, scheduler.StartRequest{Name: "n", Image: "x:1"}), "Remove": s.Remove(ctx, "n"),
			"Stop": s.Stop(ctx, "n", time.Second), "Check": s.Check(ctx)}
		_, errs["Inspect"] = s.Inspect(ctx, "n")
		_, errs["List"] = s.List(ctx, nil)
		_, errs["Logs"] = s.Logs(ctx, "n", true)
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, errs["Wait"] = s.Wait(wctx, "n")
		cancel()
		for op, err := range errs {
			if !errors.Is(err, scheduler.ErrUnavailable) {
				t.Errorf("%s against %s: %v, want ErrUnavailable", op, addr, err)
			}
		}
		_ = s.Close()
	}
}

// readAll reads a task's whole log.
func readAll(t *testing.T, s *Scheduler, name string, follow bool) string {
	t.Helper()
	rc, err := s.Logs(testCtx(t), name, follow)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading logs: %v", err)
	}
	return string(b)
}

// sameLines reports whether got holds want's lines, each once, in any
// order across streams.
func sameLines(got, want string) bool {
	count := map[string]int{}
	for _, l := range strings.SplitAfter(want, "\n") {
		count[l]++
	}
	for _, l := range strings.SplitAfter(got, "\n") {
		count[l]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// Stop honours its grace, not the kill_timeout fixed at registration: it
// signals the task itself, SIGTERM then SIGKILL once grace has passed, and
// deregisters the job afterwards.
func TestContractStopSignalsWithinGrace(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "stubborn"
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, f.run); err != nil {
		t.Fatal(err)
	}
	f.ignoreTERM(name)
	if err := s.Stop(ctx, name, 50*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got := f.sentSignals(); !reflect.DeepEqual(got, []string{"SIGTERM", "SIGKILL"}) {
		t.Fatalf("signals %v, want SIGTERM then SIGKILL", got)
	}
	st, err := s.Inspect(ctx, name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != 137 {
		t.Fatalf("after Stop: %+v %v, want exited 137", st, err)
	}
	if job := f.job(name).job; job.Stop == nil || !*job.Stop {
		t.Fatal("the job was not deregistered after the kill")
	}
	// Not started yet: nothing to signal, the job is deregistered.
	pending := "pending"
	if err := startWith(t, f, s, scheduler.StartRequest{Name: pending, Image: "x:1"}, func(name string) {
		if err := s.Stop(ctx, name, time.Second); err != nil {
			t.Errorf("Stop of a job not placed yet: %v", err)
		}
	}); err != nil {
		t.Fatalf("Start of a job stopped before it ran: %v", err)
	}
	if st, err := s.Inspect(ctx, pending); err != nil || st.State != scheduler.StateExited || st.ExitCode != exitNotStarted {
		t.Fatalf("a job stopped before it ran: %+v %v, want exited %d", st, err, exitNotStarted)
	}
	if got := f.sentSignals(); len(got) != 2 {
		t.Fatalf("signals %v: a job not started was signalled", got)
	}
}

// A request's CPU and memory are the task's resources; a zero one takes
// the Options' default.
func TestContractStartCarriesResources(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	for _, tc := range []struct {
		name       string
		cpu, mem   int
		wantCPU    int
		wantMemory int
	}{
		{"both", 300, 128, 300, 128},
		{"memory-only", 0, 2048, DefaultCPU, 2048},
		{"none", 0, 0, DefaultCPU, DefaultMemoryMB},
	} {
		if err := startWith(t, f, s, scheduler.StartRequest{Name: tc.name, Image: "x:1", CPU: tc.cpu, MemoryMB: tc.mem}, f.run); err != nil {
			t.Fatal(err)
		}
		r := f.lastRegister().Job.TaskGroups[0].Tasks[0].Resources
		if r == nil || *r.CPU != tc.wantCPU || *r.MemoryMB != tc.wantMemory {
			t.Errorf("%s: resources %+v, want cpu %d memory %d", tc.name, r, tc.wantCPU, tc.wantMemory)
		}
	}
}

// Nomad replaces a lost allocation whatever the reschedule policy says:
// the attempt must end as lost (its first allocation), and the job must
// be stopped so the replacement does not run the task a second time.
func TestContractLostAllocationIsNotRunTwice(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "lost-replaced"
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, f.run); err != nil {
		t.Fatal(err)
	}
	done := make(chan scheduler.Status, 1)
	go func() {
		st, err := s.Wait(ctx, name)
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		done <- st
	}()
	eventually(t, "Wait to block", func() bool { return len(f.blockingQueries()) > 0 })
	f.loseAndReplace(name)
	st := <-done
	if st.State != scheduler.StateExited || st.ExitCode != exitLost || !strings.Contains(st.Message, "lost") || st.ID != "alloc-"+name {
		t.Fatalf("Wait: %+v, want exited %d, lost, from the first allocation", st, exitLost)
	}
	if !f.stopped(name) || f.replacementStatus(name) == "running" {
		t.Fatalf("job stopped %v, replacement %s: the replacement must be stopped", f.stopped(name), f.replacementStatus(name))
	}
	if st, err := s.Inspect(ctx, name); err != nil || st.State != scheduler.StateExited || st.ExitCode != exitLost {
		t.Fatalf("Inspect after: %+v %v", st, err)
	}
}

// Inspect (the executor's first look after a failover) stops the
// replacement too.
func TestContractInspectOfLostAllocationStopsTheReplacement(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "lost-inspect"
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, f.run); err != nil {
		t.Fatal(err)
	}
	f.loseAndReplace(name)
	st, err := s.Inspect(ctx, name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != exitLost {
		t.Fatalf("Inspect: %+v %v, want exited lost", st, err)
	}
	if !f.stopped(name) {
		t.Fatal("the job was not stopped: its replacement keeps running")
	}
}

// One failed blocking query (a server without a leader) says nothing
// about the task: a follow stream must go on to the task's real end.
func TestContractLogsFollowSurvivesAFailedWait(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "follow-blip"
	for _, n := range []string{name, "other"} {
		if err := startWith(t, f, s, scheduler.StartRequest{Name: n, Image: "x:1"}, f.run); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := s.Logs(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	lines := bufio.NewReader(rc)
	f.write(name, "stdout", "one\n")
	if l, err := lines.ReadString('\n'); err != nil || l != "one\n" {
		t.Fatalf("first line %q %v", l, err)
	}
	eventually(t, "the stream's Wait to block", func() bool { return len(f.blockingQueries()) > 0 })
	n := len(f.blockingQueries())
	f.failNextBlocking(1)
	f.exit("other", 0, 0) // any allocation change wakes the blocking query
	eventually(t, "the waiter to retry", func() bool { return len(f.blockingQueries()) > n })
	f.write(name, "stdout", "two\n")
	f.exit(name, 0, 0)
	rest, err := io.ReadAll(lines)
	if err != nil || string(rest) != "two\n" {
		t.Fatalf("after a failed Wait: %q %v, want the rest of the output and a clean end", rest, err)
	}
}

// A job Nomad cannot place (here: more memory than any node has) ends
// after the placement timeout with Nomad's reason, and is stopped.
func TestContractUnplaceableJobEnds(t *testing.T) {
	f := newFakeNomad(t)
	s, err := New(Options{Address: f.srv.URL, APITimeout: 5 * time.Second, PlacementTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := testCtx(t)
	name := "too-big"
	f.blockOnRegister(name, &nomadapi.AllocationMetric{NodesEvaluated: 1, NodesExhausted: 1, DimensionExhausted: map[string]int{"memory": 1},
		NodesAvailable: map[string]int{"dc1": 1}})
	// Start waits for the task, but no longer than the placement timeout.
	if err := s.Start(ctx, scheduler.StartRequest{Name: name, Image: "x:1"}); err != nil {
		t.Fatalf("Start of an unplaceable job: %v, want nil once the placement timeout ended it", err)
	}
	st, err := s.Wait(ctx, name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != exitNotStarted ||
		!strings.Contains(st.Message, "no Nomad node can run it") || !strings.Contains(st.Message, "memory exhausted on 1 nodes") {
		t.Fatalf("Wait: %+v %v, want exited %d naming the reason", st, err, exitNotStarted)
	}
	if !f.stopped(name) {
		t.Fatal("the unplaceable job was not stopped")
	}
	if st, err := s.Inspect(ctx, name); err != nil || st.State != scheduler.StateExited || !strings.Contains(st.Message, "memory exhausted") {
		t.Fatalf("Inspect after: %+v %v, want exited with the reason", st, err)
	}
}

// While its job is not placed, Start blocks on the job at the job's own
// index, not at the allocations' lower one (which answers at once, and
// Start would poll Nomad in a loop until the placement).
func TestContractUnplacedStartBlocksOnTheJob(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	req := scheduler.StartRequest{Name: "unplaced", Image: "x:1"}
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx, req) }()
	eventually(t, "Start to block on the job", func() bool { return len(f.blockingJobQueries()) > 0 })
	f.mu.Lock()
	modify := *f.job(req.Name).job.ModifyIndex
	f.mu.Unlock()
	if q := f.blockingJobQueries(); q[0] != modify {
		t.Fatalf("blocking job read at index %d, want the job's modify index %d (reads %q)", q[0], modify, f.requestsSince(0))
	}
	f.run(req.Name)
	if err := <-done; err != nil {
		t.Fatalf("Start: %v", err)
	}
	if q := f.blockingJobQueries(); len(q) != 1 {
		t.Fatalf("%d blocking job reads, want 1: the placement ends the wait (reads %q)", len(q), f.requestsSince(0))
	}
}

// A job placed and finished between the read of its allocations and the
// read of the job is reported as it ended, not as stopped unplaced.
func TestContractPlacedBetweenReads(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "quick"
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, f.run); err != nil {
		t.Fatal(err)
	}
	// Back to registered and unplaced; Nomad places and ends it right
	// after the next read of its allocations.
	f.mu.Lock()
	f.job(name).alloc, f.job(name).job.Status = nil, new("pending")
	f.afterAllocations = func() { f.run(name); f.exit(name, 3, 0) }
	f.mu.Unlock()
	st, err := s.Inspect(ctx, name)
	if err != nil || st.State != scheduler.StateExited || st.ExitCode != 3 {
		t.Fatalf("Inspect: %+v %v, want exited 3 (reads %q)", st, err, f.requestsSince(0))
	}
}

// Within the placement timeout an unplaced job is still created.
func TestContractUnplacedJobWaitsWithinTimeout(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "queued"
	done := make(chan scheduler.Status, 1)
	// Start waits (the job is queued) until it is placed late.
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, func(name string) {
		f.block(name, &nomadapi.AllocationMetric{NodesEvaluated: 0})
		if st, err := s.Inspect(ctx, name); err != nil || st.State != scheduler.StateCreated || f.stopped(name) {
			t.Fatalf("Inspect: %+v %v, want created and not stopped", st, err)
		}
		go func() {
			st, _ := s.Wait(ctx, name)
			done <- st
		}()
		eventually(t, "Wait to block", func() bool { return f.requestCount() > 0 && len(f.blockingQueries()) == 0 })
		f.run(name) // placed late: capacity freed up
	}); err != nil {
		t.Fatalf("Start of a job placed late: %v", err)
	}
	f.exit(name, 0, 0)
	if st := <-done; st.State != scheduler.StateExited || st.ExitCode != 0 {
		t.Fatalf("Wait: %+v, want exited 0", st)
	}
}

// Stopping a job Nomad never placed changes no allocation: Stop and a
// Wait beside it must still return (not sleep a blocking query out).
func TestContractStopOfUnplacedJob(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "unplaced"
	done := make(chan scheduler.Status, 1)
	// Start waits for the task: it returns once Stop has ended the job.
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, func(name string) {
		go func() {
			st, err := s.Wait(ctx, name)
			if err != nil {
				t.Errorf("Wait: %v", err)
			}
			done <- st
		}()
		eventually(t, "Wait to read", func() bool { return f.requestCount() >= 3 })
		if err := s.Stop(ctx, name, time.Second); err != nil {
			t.Fatalf("Stop of an unplaced job: %v", err)
		}
	}); err != nil {
		t.Fatalf("Start of a job stopped before placement: %v", err)
	}
	if st := <-done; st.State != scheduler.StateExited || st.ExitCode != exitNotStarted {
		t.Fatalf("Wait on a job stopped unplaced: %+v", st)
	}
	if st, err := s.Inspect(ctx, name); err != nil || st.State != scheduler.StateExited {
		t.Fatalf("Inspect: %+v %v", st, err)
	}
}

// List is one call for the jobs, however many match, and one for the
// allocations of those that ended (their exit codes): no job is read one
// by one.
func TestContractListIsOneCall(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	for _, name := range []string{"l1", "l2", "l4"} {
		if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1", Labels: map[string]string{"k": "v"}}, f.run); err != nil {
			t.Fatal(err)
		}
	}
	f.exit("l2", 0, 0)
	f.exit("l4", 3, 0)
	// l3 stays unplaced (Start would wait for it): registered as Start
	// registers it.
	if _, _, err := s.cli.Jobs().Register(s.jobFor(scheduler.StartRequest{Name: "l3", Image: "x:1", Labels: map[string]string{"k": "v"}}), nil); err != nil {
		t.Fatal(err)
	}
	before := f.requestCount()
	list, err := s.List(ctx, map[string]string{"k": "v"})
	if err != nil || len(list) != 4 {
		t.Fatalf("List: %+v %v", list, err)
	}
	if n := f.requestCount() - before; n != 2 {
		t.Fatalf("List made %d requests, want 2 (the jobs, the ended ones' allocations)", n)
	}
	want := map[string]scheduler.ContainerState{"l1": scheduler.StateRunning, "l2": scheduler.StateExited, "l3": scheduler.StateCreated,
		"l4": scheduler.StateExited}
	codes := map[string]int{"l4": 3}
	for _, c := range list {
		if c.Status.State != want[c.Name] || c.Labels["k"] != "v" || c.Status.ExitCode != codes[c.Name] ||
			(c.Status.State == scheduler.StateExited && c.Status.ID != "alloc-"+c.Name) {
			t.Errorf("%s listed as %+v, want %s", c.Name, c, want[c.Name])
		}
	}
}

// Only a refusal of the request is permanent: throttling, a refused
// token and a server error are not.
func TestContractErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		code  int
		want  error
		token bool
	}{
		{http.StatusBadRequest, scheduler.ErrInvalid, false},
		{http.StatusTooManyRequests, scheduler.ErrUnavailable, false},
		{http.StatusUnauthorized, scheduler.ErrUnavailable, true},
		{http.StatusForbidden, scheduler.ErrUnavailable, true},
		{http.StatusBadGateway, scheduler.ErrUnavailable, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "ACL token expired", tc.code)
		}))
		s, err := New(Options{Address: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Inspect(testCtx(t), "n")
		if !errors.Is(err, tc.want) || (tc.want == scheduler.ErrUnavailable && errors.Is(err, scheduler.ErrInvalid)) {
			t.Errorf("HTTP %d: %v, want %v", tc.code, err, tc.want)
		}
		if tc.token && (err == nil || !strings.Contains(err.Error(), "refused the ACL token")) {
			t.Errorf("HTTP %d: %v, want it to say the token is refused", tc.code, err)
		}
		_ = s.Close()
		srv.Close()
	}
}
