// Package scheduler is the small interface the leader's DAG executor uses
// to run task containers, with one implementation per backend (Docker,
// Nomad) in sub-packages. It knows nothing about raft or state: the
// executor commits intent to the FSM before calling it (docs/architecture.md §7).
package scheduler

import (
	"context"
	"errors"
	"io"
	"time"
)

// ContainerState is what a backend reports about a container.
type ContainerState string

// Container states.
const (
	StateCreated  ContainerState = "created"
	StateRunning  ContainerState = "running"
	StateExited   ContainerState = "exited"
	StateNotFound ContainerState = "not_found"
	StateUnknown  ContainerState = "unknown"
)

// Errors every backend returns (wrapped, with details) so the executor can
// decide what a failure means.
var (
	// ErrAlreadyExists: Start found a container with that name that has
	// already started. The caller inspects it and adopts it (running) or
	// takes its result (exited): the name is the attempt's identity.
	ErrAlreadyExists = errors.New("container already exists")
	// ErrImageNotFound: the image is not present and could not be pulled.
	ErrImageNotFound = errors.New("image not found")
	// ErrUnavailable: the backend could not be reached or did not answer.
	// Nothing can be concluded about the container; retry later.
	ErrUnavailable = errors.New("scheduler unavailable")
	// ErrInvalid: the request itself was refused (bad command, bad
	// network name…); retrying will not help.
	ErrInvalid = errors.New("invalid container request")
)

// StartRequest describes one task attempt's container. Name is
// deterministic (gofer.<cluster>.<run uid>.<ns>.<pipeline>.<run>.<task>.<attempt>),
// so a duplicate start collides instead of running twice.
type StartRequest struct {
	Name       string
	Image      string
	Entrypoint []string
	Command    []string
	Env        map[string]string
	Labels     map[string]string
	// AlwaysPull pulls the image even when it is present.
	AlwaysPull bool
	// RegistryUser/RegistryPass authenticate the image pull, if set.
	RegistryUser string
	RegistryPass string
}

// Status is a container's observed state. For StateNotFound the backend
// was reachable and positively has no such container.
type Status struct {
	State    ContainerState
	ExitCode int
	Started  time.Time
	Finished time.Time
	// Message is the backend's own words when something went wrong (an
	// OOM kill, a start error).
	Message string
}

// Container is one entry of List.
type Container struct {
	Name   string
	Labels map[string]string
	Status Status
}

// Scheduler runs containers. Implementations must be safe for concurrent
// use and must return an error wrapping ErrUnavailable (never hang past
// ctx) when the backend is unreachable.
type Scheduler interface {
	// Start pulls the image if needed, then creates and starts the
	// container. A second Start of the same name never runs a second
	// container: one that was created but never started is started now,
	// one whose create is still in flight is waited for, and one that has
	// started gives ErrAlreadyExists.
	Start(ctx context.Context, req StartRequest) error
	// Inspect reports the container's state (StateNotFound if it does not
	// exist).
	Inspect(ctx context.Context, name string) (Status, error)
	// Wait blocks until the container has exited and returns its final
	// status; it returns at once for an exited container.
	Wait(ctx context.Context, name string) (Status, error)
	// Logs streams the container's stdout and stderr, interleaved in the
	// order the backend recorded them, from the beginning; with follow it
	// ends when the container exits.
	Logs(ctx context.Context, name string, follow bool) (io.ReadCloser, error)
	// Stop asks the container to stop (SIGTERM), then kills it after
	// grace. Stopping an exited or missing container is not an error.
	Stop(ctx context.Context, name string, grace time.Duration) error
	// Remove deletes the container, stopping it first if needed. Removing
	// a missing container is not an error.
	Remove(ctx context.Context, name string) error
	// List returns every container (running or not) carrying all labels.
	List(ctx context.Context, labels map[string]string) ([]Container, error)
}
