// Package scheduler is the small interface the leader's DAG executor uses
// to run task containers, with one implementation per backend (Docker,
// Nomad) in sub-packages. It knows nothing about raft or state: the
// executor commits intent to the FSM before calling it (DESIGN §7).
//
// The executor and the backends arrive with the runs issue; this file fixes
// the contract they will share.
package scheduler

import (
	"context"
	"io"
	"time"
)

// ContainerState is what a backend reports about a container.
type ContainerState string

// Container states.
const (
	StateUnknown  ContainerState = "unknown"
	StateRunning  ContainerState = "running"
	StateExited   ContainerState = "exited"
	StateNotFound ContainerState = "not_found"
)

// StartRequest describes one task attempt's container. Name is
// deterministic (gofer-<ns>-<pipeline>-<run>-<task>-<attempt>), so a
// duplicate start collides instead of running twice.
type StartRequest struct {
	Name       string
	Image      string
	Entrypoint []string
	Command    []string
	Env        map[string]string
	Labels     map[string]string
	AlwaysPull bool
	// RegistryUser/RegistryPass authenticate the image pull, if set.
	RegistryUser string
	RegistryPass string
}

// Status is a container's observed state.
type Status struct {
	State    ContainerState
	ExitCode int
	Started  time.Time
	Finished time.Time
	Message  string
}

// Scheduler runs containers. Implementations must be safe for concurrent
// use and must return an error (never hang) when the backend is
// unreachable.
type Scheduler interface {
	Start(ctx context.Context, req StartRequest) error
	Inspect(ctx context.Context, name string) (Status, error)
	Wait(ctx context.Context, name string) (Status, error)
	Logs(ctx context.Context, name string, follow bool) (io.ReadCloser, error)
	Stop(ctx context.Context, name string, grace time.Duration) error
	Remove(ctx context.Context, name string) error
	List(ctx context.Context, labels map[string]string) ([]string, error)
}
