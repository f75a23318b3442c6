package supervisor

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/scheduler"
)

// fakeEngine is an in-memory container engine: containers run until the
// test crashes them; every start and removal is recorded with the fake
// clock's time.
type fakeEngine struct {
	clock clock.Clock

	mu         sync.Mutex
	seq        int
	containers map[string]*fakeContainer
	starts     []fakeEvent
	removes    []fakeEvent
	images     map[string]map[string]string // image → labels
	imports    []string
	// remote makes it answer as the Nomad backend does: no images
	// (ErrUnsupported, nothing checked at start), a new container is
	// created (waiting for placement, no id) for remote.pending
	// inspections, then runs at remote.ip.
	remote *fakeRemote
}

type fakeRemote struct {
	pending int
	ip      string
}

type fakeContainer struct {
	req    scheduler.StartRequest
	status scheduler.Status
	// pending counts the inspections left before a remote container
	// runs.
	pending int
}

type fakeEvent struct {
	name, id string
	at       time.Time
	req      scheduler.StartRequest
}

func newFakeEngine(c clock.Clock) *fakeEngine {
	return &fakeEngine{clock: c, containers: map[string]*fakeContainer{}, images: map[string]map[string]string{}}
}

func (f *fakeEngine) Start(_ context.Context, req scheduler.StartRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[req.Name]; ok {
		return fmt.Errorf("%w: %s", scheduler.ErrAlreadyExists, req.Name)
	}
	if _, ok := f.images[req.Image]; !ok && !req.AlwaysPull && f.remote == nil {
		return fmt.Errorf("image %s: %w", req.Image, scheduler.ErrImageNotFound)
	}
	f.seq++
	id := fmt.Sprintf("c%d", f.seq)
	c := &fakeContainer{req: req, status: scheduler.Status{State: scheduler.StateRunning, ID: id,
		Started: f.clock.Now(), Labels: maps.Clone(req.Labels)}}
	if f.remote != nil {
		c.pending = f.remote.pending
		c.status.IPAddress = f.remote.ip
		if c.pending > 0 {
			c.status.State, c.status.ID, c.status.Message = scheduler.StateCreated, "", "waiting for placement"
		}
	}
	f.containers[req.Name] = c
	f.starts = append(f.starts, fakeEvent{name: req.Name, id: id, at: f.clock.Now(), req: req})
	return nil
}

func (f *fakeEngine) Inspect(_ context.Context, name string) (scheduler.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[name]; ok {
		if c.pending > 0 {
			if c.pending--; c.pending == 0 && c.status.State == scheduler.StateCreated {
				c.status.State, c.status.Message = scheduler.StateRunning, ""
				c.status.ID = fmt.Sprintf("alloc-%s", name)
			}
			if c.status.State == scheduler.StateCreated {
				st := c.status
				st.IPAddress = ""
				return st, nil
			}
		}
		return c.status, nil
	}
	return scheduler.Status{State: scheduler.StateNotFound}, nil
}

func (f *fakeEngine) Wait(ctx context.Context, name string) (scheduler.Status, error) {
	return f.Inspect(ctx, name)
}

func (f *fakeEngine) Logs(context.Context, string, bool) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}

func (f *fakeEngine) Stop(_ context.Context, name string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[name]; ok && c.status.State == scheduler.StateRunning {
		c.status.State, c.status.ExitCode = scheduler.StateExited, 143
	}
	return nil
}

func (f *fakeEngine) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[name]; ok {
		f.removes = append(f.removes, fakeEvent{name: name, id: c.status.ID, at: f.clock.Now()})
		delete(f.containers, name)
	}
	return nil
}

func (f *fakeEngine) List(_ context.Context, labels map[string]string) ([]scheduler.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []scheduler.Container
	for name, c := range f.containers {
		match := true
		for k, v := range labels {
			if got, ok := c.status.Labels[k]; !ok || (v != "" && got != v) {
				match = false
			}
		}
		if match {
			out = append(out, scheduler.Container{Name: name, Labels: c.status.Labels, Status: c.status})
		}
	}
	return out, nil
}

func (f *fakeEngine) ImageLabel(_ context.Context, image, key string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.remote != nil {
		return "", false, fmt.Errorf("image label of %s: %w", image, scheduler.ErrUnsupported)
	}
	l, ok := f.images[image]
	return l[key], ok, nil
}

func (f *fakeEngine) ImportBinary(_ context.Context, image, _ string, _ []string, labels map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.remote != nil {
		return fmt.Errorf("import %s: %w", image, scheduler.ErrUnsupported)
	}
	f.images[image] = maps.Clone(labels)
	f.imports = append(f.imports, image)
	return nil
}

// crash makes a running container exit with code.
func (f *fakeEngine) crash(name string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[name]; ok {
		c.status.State, c.status.ExitCode, c.status.Finished = scheduler.StateExited, code, f.clock.Now()
	}
}

// add puts a running container in place (left by an earlier leader).
func (f *fakeEngine) add(req scheduler.StartRequest) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	id := fmt.Sprintf("c%d", f.seq)
	f.containers[req.Name] = &fakeContainer{req: req, status: scheduler.Status{State: scheduler.StateRunning, ID: id,
		Started: f.clock.Now(), Labels: maps.Clone(req.Labels)}}
	return id
}

func (f *fakeEngine) snapshot() (starts, removes []fakeEvent, running map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	running = map[string]string{}
	for n, c := range f.containers {
		if c.status.State == scheduler.StateRunning {
			running[n] = c.status.ID
		}
	}
	return append([]fakeEvent(nil), f.starts...), append([]fakeEvent(nil), f.removes...), running
}
