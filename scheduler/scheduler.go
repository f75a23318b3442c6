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
	// NeverPull never pulls: a missing image is ErrImageNotFound at once
	// (extensions pull only when their install asks for it). It loses to
	// AlwaysPull.
	NeverPull bool
	// Network, if set, overrides the backend's configured network for
	// this container ("host", or a network name). Task containers leave
	// it empty; the extension supervisor sets it.
	Network string
	// RegistryUser/RegistryPass authenticate the image pull, if set.
	RegistryUser string
	RegistryPass string
	// CPU (MHz) and MemoryMB are the task's resources (the pipeline's
	// per-task resources); zero means the backend's default. Memory is a
	// hard limit; what CPU means is the backend's (docs/pipelines.md).
	CPU      int
	MemoryMB int
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
	// ID is the backend's id of the container (Docker's container id),
	// which changes when a container of the same name is recreated.
	ID string
	// IPAddress is the container's address on its network ("" on the
	// host network or when it is not running); the extension supervisor
	// dials extensions there.
	IPAddress string
	// Labels are the container's labels.
	Labels map[string]string
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
	// List returns every container (running or not) carrying all labels;
	// a label given with an empty value matches any value (presence).
	List(ctx context.Context, labels map[string]string) ([]Container, error)
}

// ErrUnsupported: the backend cannot do this (the noop scheduler has no
// images to import).
var ErrUnsupported = errors.New("not supported by this scheduler")

// Images is what the extension supervisor needs besides Scheduler to make
// the built-in extensions' images from the gofer binary itself, without a
// registry. The Docker backend implements it; others answer
// ErrUnsupported.
type Images interface {
	// ImageLabel reads one label of a local image; present is false when
	// the image is not there.
	ImageLabel(ctx context.Context, image, key string) (value string, present bool, err error)
	// ImportBinary makes image from a single executable file, placed at
	// entrypoint[0], with the given entrypoint and labels (Docker's
	// import of a one-file tar: no registry, no builder).
	ImportBinary(ctx context.Context, image, path string, entrypoint []string, labels map[string]string) error
}

// LogStream names one of a container's two output streams.
type LogStream string

// The output streams.
const (
	Stdout LogStream = "stdout"
	Stderr LogStream = "stderr"
)

// StreamLogger is implemented by a backend that keeps stdout and stderr
// apart and records no order across them (Nomad). Its Logs cannot give one
// stream that is both live and the same on every read, so the executor
// reads each stream on its own, both live, and resumes each at its own
// byte offset after a failover. A backend with one ordered stream (Docker)
// does not implement it; the executor then uses Logs.
type StreamLogger interface {
	// StreamLogs streams one of the container's output streams, skipping
	// its first offset bytes; with follow it ends when the container
	// exits. Errors are those of Logs.
	StreamLogs(ctx context.Context, name string, stream LogStream, offset int64, follow bool) (io.ReadCloser, error)
}
