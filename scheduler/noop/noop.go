// Package noop is a scheduler whose containers do nothing and exit 0 at
// once. It exists for benchmarks of the control plane alone (placements
// per second without Docker's cost) and is selected with
// [scheduler] engine = "noop". It keeps its containers in memory, so it
// cannot survive a leader change: never use it for real work.
//
// A container's output is the value of its NOOP_OUTPUT variable (none
// when unset), so a benchmark or a test can put log bytes through the
// control plane without Docker.
package noop

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/goferhq/gofer/scheduler"
)

// Scheduler is the no-op backend.
type Scheduler struct {
	mu         sync.Mutex
	containers map[string]*scheduler.Container
	output     map[string]string // container name → its NOOP_OUTPUT
}

var _ scheduler.Scheduler = (*Scheduler)(nil)

// New returns an empty no-op scheduler.
func New() *Scheduler {
	return &Scheduler{containers: map[string]*scheduler.Container{}, output: map[string]string{}}
}

// OutputVariable names the variable whose value a container prints.
const OutputVariable = "NOOP_OUTPUT"

// Start records a container that has already exited successfully.
func (s *Scheduler) Start(_ context.Context, req scheduler.StartRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.containers[req.Name]; ok {
		return fmt.Errorf("%w: %s", scheduler.ErrAlreadyExists, req.Name)
	}
	now := time.Now()
	s.containers[req.Name] = &scheduler.Container{Name: req.Name, Labels: maps.Clone(req.Labels),
		Status: scheduler.Status{State: scheduler.StateExited, Started: now, Finished: now}}
	if out, ok := req.Env[OutputVariable]; ok {
		s.output[req.Name] = out
	}
	return nil
}

// Inspect reports a recorded container, or StateNotFound.
func (s *Scheduler) Inspect(_ context.Context, name string) (scheduler.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.containers[name]; ok {
		return c.Status, nil
	}
	return scheduler.Status{State: scheduler.StateNotFound}, nil
}

// Wait returns at once: every container has exited.
func (s *Scheduler) Wait(ctx context.Context, name string) (scheduler.Status, error) {
	return s.Inspect(ctx, name)
}

// Logs is the container's NOOP_OUTPUT, whole: it has already exited.
func (s *Scheduler) Logs(_ context.Context, name string, _ bool) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return io.NopCloser(strings.NewReader(s.output[name])), nil
}

// Stop does nothing: the container has exited.
func (s *Scheduler) Stop(context.Context, string, time.Duration) error { return nil }

// Remove forgets a container.
func (s *Scheduler) Remove(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.containers, name)
	delete(s.output, name)
	return nil
}

// List returns recorded containers carrying all labels.
func (s *Scheduler) List(_ context.Context, labels map[string]string) ([]scheduler.Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []scheduler.Container
	for _, c := range s.containers {
		match := true
		for k, v := range labels {
			if got, ok := c.Labels[k]; !ok || (v != "" && got != v) {
				match = false
				break
			}
		}
		if match {
			out = append(out, *c)
		}
	}
	return out, nil
}

var _ scheduler.Images = (*Scheduler)(nil)

// ImageLabel reports every image missing: the noop backend has none.
func (s *Scheduler) ImageLabel(context.Context, string, string) (string, bool, error) {
	return "", false, nil
}

// ImportBinary is not supported: there is no engine to import into.
func (s *Scheduler) ImportBinary(_ context.Context, ref, _ string, _ []string, _ map[string]string) error {
	return fmt.Errorf("noop scheduler: import %s: %w", ref, scheduler.ErrUnsupported)
}
