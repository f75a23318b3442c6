// Package fake is a scriptable in-memory Scheduler for tests of what uses
// a scheduler (the executor) where a real engine adds nothing but time.
// Containers are simulated: a Script says what each one writes, how it
// exits, whether it runs until the test ends it and whether it ignores
// SIGTERM. The scheduler can be made unreachable (every call, or the next
// N calls) and counts calls. It passes the conformance suite
// (scheduler/schedulertest), so code tested on it sees the contract the
// real backends keep.
package fake

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/goferhq/gofer/scheduler"
)

// Script is how one container behaves.
type Script struct {
	// Output is written when the container starts, in order.
	Output []Line
	// Exit is the exit code once the output is written (unless Hold).
	Exit int
	// Hold keeps the container running after its output until the test
	// calls Exit, or Stop or Remove ends it.
	Hold bool
	// TermExit is the exit code when SIGTERM (Stop) ends a held container.
	TermExit int
	// IgnoreTERM makes Stop wait out its grace, then kill (exit 137).
	IgnoreTERM bool
	// StartErr, if set, is what Start returns; no container is made.
	StartErr error
	// Logs, if set, replaces the container's log stream: canned output,
	// or a pipe the test writes to. Each Logs call calls it.
	Logs func(follow bool) (io.ReadCloser, error)
}

// Line is a line of output on stdout or stderr (a newline is added,
// unless Partial: then it is a write that ends mid-line).
type Line struct {
	Stderr  bool
	Text    string
	Partial bool
}

// Scheduler is the fake. The zero value is not usable; call New.
type Scheduler struct {
	// Scripts chooses a container's script from its request (nil: exit 0
	// with no output). Set it before the first Start.
	Scripts func(req scheduler.StartRequest) Script
	// Now is the clock for start and finish times (time.Now if nil).
	Now func() time.Time

	mu         sync.Mutex
	containers map[string]*container
	seq        int
	down       bool
	failNext   int
	failOps    []string
	calls      map[string]int
	runs       map[string]int
}

var _ scheduler.Scheduler = (*Scheduler)(nil)

type container struct {
	name    string
	labels  map[string]string
	script  Script
	id      string
	state   scheduler.ContainerState
	exit    int
	started time.Time
	ended   time.Time
	out     []byte
	// streams is out split by stream (stdout, stderr), for StreamLogs.
	streams [2][]byte
	// changed is closed (and replaced) whenever out or state changes.
	changed chan struct{}
}

// New returns a fake with no containers.
func New() *Scheduler {
	return &Scheduler{containers: map[string]*container{}, calls: map[string]int{}, runs: map[string]int{}}
}

// SetDown makes every call fail with ErrUnavailable (true) or not.
func (s *Scheduler) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// FailNext makes the next n calls of the named operations ("Start",
// "Inspect", "Wait", "Logs", "Stop", "Remove", "List"; all when none are
// named) fail with ErrUnavailable, without touching any container.
func (s *Scheduler) FailNext(n int, ops ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failOps = n, ops
}

// Calls is how many times op was called (failed calls included).
func (s *Scheduler) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Runs is how many times a container named name began to run (0 or 1
// unless it was removed and made again).
func (s *Scheduler) Runs(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[name]
}

// gate counts the call and fails it when the backend is made unreachable.
// Called with s.mu held.
func (s *Scheduler) gate(op, name string) error {
	s.calls[op]++
	if s.down {
		return fmt.Errorf("fake: %s %s: %w (down)", op, name, scheduler.ErrUnavailable)
	}
	if s.failNext > 0 && (len(s.failOps) == 0 || slices.Contains(s.failOps, op)) {
		s.failNext--
		return fmt.Errorf("fake: %s %s: %w (injected)", op, name, scheduler.ErrUnavailable)
	}
	return nil
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Create makes a container that exists but has not started, as a leader
// that died between create and start leaves it; the next Start of its
// name starts it with this request's script.
func (s *Scheduler) Create(req scheduler.StartRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.create(req); err != nil {
		return err
	}
	return nil
}

func (s *Scheduler) create(req scheduler.StartRequest) (*container, error) {
	if req.Name == "" || req.Image == "" {
		return nil, fmt.Errorf("fake: create %q: a name and an image are required: %w", req.Name, scheduler.ErrInvalid)
	}
	if _, ok := s.containers[req.Name]; ok {
		return nil, fmt.Errorf("fake: create %s: %w", req.Name, scheduler.ErrAlreadyExists)
	}
	var script Script
	if s.Scripts != nil {
		script = s.Scripts(req)
	}
	if script.StartErr != nil {
		return nil, script.StartErr
	}
	s.seq++
	c := &container{name: req.Name, labels: maps.Clone(req.Labels), script: script, id: fmt.Sprintf("fake-%08d", s.seq),
		state: scheduler.StateCreated, changed: make(chan struct{})}
	if c.labels == nil {
		c.labels = map[string]string{}
	}
	s.containers[req.Name] = c
	return c, nil
}

// Start creates and runs the container, or runs one that was created and
// never started; one that has started gives ErrAlreadyExists.
func (s *Scheduler) Start(_ context.Context, req scheduler.StartRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.gate("Start", req.Name); err != nil {
		return err
	}
	c, ok := s.containers[req.Name]
	if ok && c.state != scheduler.StateCreated {
		return fmt.Errorf("fake: start %s: %w (state %s)", req.Name, scheduler.ErrAlreadyExists, c.state)
	}
	if !ok {
		var err error
		if c, err = s.create(req); err != nil {
			return err
		}
	}
	s.runs[c.name]++
	c.state, c.started = scheduler.StateRunning, s.now()
	for _, l := range c.script.Output {
		c.write(l)
	}
	if !c.script.Hold && !c.script.IgnoreTERM {
		s.exit(c, c.script.Exit)
		return nil
	}
	s.notify(c)
	return nil
}

// notify wakes whoever waits on c. Called with s.mu held.
func (s *Scheduler) notify(c *container) {
	close(c.changed)
	c.changed = make(chan struct{})
}

// exit ends a running container. Called with s.mu held.
func (s *Scheduler) exit(c *container, code int) {
	if c.state == scheduler.StateExited {
		return
	}
	c.state, c.exit, c.ended = scheduler.StateExited, code, s.now()
	if c.started.IsZero() {
		c.started = c.ended
	}
	s.notify(c)
}

// Exit ends a running (held) container with code, as if its process had
// exited; it reports whether there was such a container.
func (s *Scheduler) Exit(name string, code int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[name]
	if !ok || c.state != scheduler.StateRunning {
		return false
	}
	s.exit(c, code)
	return true
}

// Print appends a line to a running container's output.
func (s *Scheduler) Print(name string, l Line) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[name]
	if !ok || c.state != scheduler.StateRunning {
		return false
	}
	c.write(l)
	s.notify(c)
	return true
}

// write appends a line to the container's output. Called with s.mu held.
func (c *container) write(l Line) {
	text := l.Text
	if !l.Partial {
		text += "\n"
	}
	c.out = append(c.out, text...)
	i := 0
	if l.Stderr {
		i = 1
	}
	c.streams[i] = append(c.streams[i], text...)
}

func (c *container) status() scheduler.Status {
	st := scheduler.Status{State: c.state, Started: c.started, ID: c.id, Labels: maps.Clone(c.labels)}
	if c.state == scheduler.StateExited {
		st.ExitCode, st.Finished = c.exit, c.ended
	}
	return st
}

// Inspect reports the container, or StateNotFound.
func (s *Scheduler) Inspect(_ context.Context, name string) (scheduler.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.gate("Inspect", name); err != nil {
		return scheduler.Status{State: scheduler.StateUnknown}, err
	}
	if c, ok := s.containers[name]; ok {
		return c.status(), nil
	}
	return scheduler.Status{State: scheduler.StateNotFound}, nil
}

// Wait blocks until the container has exited (or is gone) or ctx ends.
func (s *Scheduler) Wait(ctx context.Context, name string) (scheduler.Status, error) {
	s.mu.Lock()
	if err := s.gate("Wait", name); err != nil {
		s.mu.Unlock()
		return scheduler.Status{State: scheduler.StateUnknown}, err
	}
	for {
		c, ok := s.containers[name]
		if !ok {
			s.mu.Unlock()
			return scheduler.Status{State: scheduler.StateNotFound}, nil
		}
		if c.state == scheduler.StateExited {
			st := c.status()
			s.mu.Unlock()
			return st, nil
		}
		changed := c.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return scheduler.Status{State: scheduler.StateUnknown}, fmt.Errorf("fake: wait %s: %w: %w", name, scheduler.ErrUnavailable, ctx.Err())
		}
		s.mu.Lock()
	}
}

// Logs streams the container's output from the beginning (the script's
// Logs, if it has one); with follow it ends when the container exits.
func (s *Scheduler) Logs(ctx context.Context, name string, follow bool) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.gate("Logs", name); err != nil {
		return nil, err
	}
	c, ok := s.containers[name]
	if !ok {
		return nil, fmt.Errorf("fake: logs %s: no such container: %w", name, scheduler.ErrInvalid)
	}
	if c.script.Logs != nil {
		return c.script.Logs(follow)
	}
	return &logReader{s: s, c: c, ctx: ctx, follow: follow, closed: make(chan struct{})}, nil
}

type logReader struct {
	s      *Scheduler
	c      *container
	ctx    context.Context
	follow bool
	// stream is what is read: "" both (Logs), or one stream (StreamLogs).
	stream scheduler.LogStream
	off    int
	once   sync.Once
	closed chan struct{}
}

func (r *logReader) Read(p []byte) (int, error) {
	for {
		select {
		case <-r.closed:
			return 0, io.ErrClosedPipe
		default:
		}
		r.s.mu.Lock()
		if out := r.c.output(r.stream); r.off < len(out) {
			n := copy(p, out[r.off:])
			r.off += n
			r.s.mu.Unlock()
			return n, nil
		}
		if !r.follow || r.c.state == scheduler.StateExited {
			r.s.mu.Unlock()
			return 0, io.EOF
		}
		changed := r.c.changed
		r.s.mu.Unlock()
		select {
		case <-changed:
		case <-r.closed:
			return 0, io.ErrClosedPipe
		case <-r.ctx.Done():
			return 0, fmt.Errorf("fake: logs %s: %w: %w", r.c.name, scheduler.ErrUnavailable, r.ctx.Err())
		}
	}
}

func (r *logReader) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}

// Stop sends SIGTERM: a held container exits with its TermExit; one that
// ignores it is killed (137) after grace. Missing or exited: nothing to do.
func (s *Scheduler) Stop(ctx context.Context, name string, grace time.Duration) error {
	s.mu.Lock()
	if err := s.gate("Stop", name); err != nil {
		s.mu.Unlock()
		return err
	}
	c, ok := s.containers[name]
	if !ok || c.state == scheduler.StateExited {
		s.mu.Unlock()
		return nil
	}
	if c.state == scheduler.StateCreated || !c.script.IgnoreTERM {
		code := c.script.TermExit
		if c.state == scheduler.StateCreated {
			code = 0
		}
		s.exit(c, code)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if c.state == scheduler.StateExited {
			s.mu.Unlock()
			return nil
		}
		changed := c.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			s.mu.Lock()
			s.exit(c, 137)
			s.mu.Unlock()
			return nil
		case <-ctx.Done():
			return fmt.Errorf("fake: stop %s: %w: %w", name, scheduler.ErrUnavailable, ctx.Err())
		}
	}
}

// Remove kills and forgets the container; a missing one is no error.
func (s *Scheduler) Remove(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.gate("Remove", name); err != nil {
		return err
	}
	if c, ok := s.containers[name]; ok {
		s.exit(c, 137)
		delete(s.containers, name)
	}
	return nil
}

// List returns the containers carrying all labels (an empty value
// matches any), in name order.
func (s *Scheduler) List(_ context.Context, labels map[string]string) ([]scheduler.Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.gate("List", ""); err != nil {
		return nil, err
	}
	var out []scheduler.Container
	for _, name := range slices.Sorted(maps.Keys(s.containers)) {
		c := s.containers[name]
		match := true
		for k, v := range labels {
			if got, ok := c.labels[k]; !ok || (v != "" && got != v) {
				match = false
				break
			}
		}
		if match {
			out = append(out, scheduler.Container{Name: c.name, Labels: maps.Clone(c.labels), Status: c.status()})
		}
	}
	return out, nil
}
