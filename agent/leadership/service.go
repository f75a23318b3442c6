// Package leadership runs the leader-only services: after raft's barrier
// and the agent's establish step it starts every service of a list, and
// when leadership ends it cancels them and waits for all of them, so a
// deposed leader causes no side effects (G8). It also declares what a
// service is built from. See DESIGN.md.
package leadership

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/fsm"
)

// StateReader is what a leader service reads replicated state through
// (implemented by *fsm.FSM).
type StateReader interface {
	// View reads state in a transaction that sees every applied entry.
	View(fn func(tx *bbolt.Tx) error) error
	// ViewCommitted reads the last committed state file, without forcing
	// a commit of pending entries (cheap checks).
	ViewCommitted(fn func(tx *bbolt.Tx) error) error
	// Changes wakes on every applied batch; RunChanges only on those a
	// run's progress can depend on.
	Changes() *fsm.Notifier
	RunChanges() *fsm.Notifier
	// KeyRotationChanges wakes only on encryption key rotation commands.
	KeyRotationChanges() *fsm.Notifier
}

// Applier replicates a command a service decided on and returns the state
// machine's result (whose Err is the state machine's refusal). An error
// means the command may not have been applied.
type Applier interface {
	Apply(ctx context.Context, t fsm.CommandType, body any) (*fsm.Result, error)
}

// ApplyFunc adapts a function to an Applier.
type ApplyFunc func(ctx context.Context, t fsm.CommandType, body any) (*fsm.Result, error)

// Apply calls f.
func (f ApplyFunc) Apply(ctx context.Context, t fsm.CommandType, body any) (*fsm.Result, error) {
	return f(ctx, t, body)
}

// Deps is what every leader service is built from, besides its own
// config: constructors take (config, Deps).
type Deps struct {
	State  StateReader
	Apply  Applier
	Clock  clock.Clock
	Logger hclog.Logger
}

// Service is a leader-only service. Run works until ctx ends (leadership
// lost) and must not return before every goroutine it started has
// returned. Returning early with an error, or panicking, makes the
// lifecycle build and start it again after a backoff; returning nil early
// means the service has nothing more to do this term.
type Service interface {
	Run(ctx context.Context) error
}

// Entry is one service in the lifecycle's list. New builds a fresh
// instance for each start (a restart never reuses a failed instance).
type Entry struct {
	Name string
	New  func(Deps) Service
}
