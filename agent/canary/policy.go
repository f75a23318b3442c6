// Package canary decides the fate of a canary deployment of a pipeline
// version: which new runs go to the canary (Assign), whether the evidence
// so far says wait, promote or roll back (Decide), and a Watcher that a
// leader service ticks to record each canary's decision exactly once
// through a small State interface (the shape of Nomad's
// deploymentwatcher). Everything here is pure or behind State and an
// injected clock, so it is unit-tested without raft, Docker or sleeps.
//
// The FSM (fsm/apply_canary.go) calls Assign and validates policies; the
// leader service agent/canarywatch.go ticks the Watcher. DESIGN.md states
// the contract that wiring keeps.
package canary

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidPolicy wraps every error Policy.Validate returns, so callers
// (the API, the FSM applier) can map it to a 400 without parsing text.
var ErrInvalidPolicy = errors.New("invalid canary policy")

// MaxRuns bounds Policy.Runs. Replicated state keeps one duration per
// completed canary run, for the first MaxRuns of them (the p95 bound; one
// small key per run, store/canary.go), so an unbounded count would be
// unbounded state.
const MaxRuns = 10000

// Policy is what a user chose for one canary deployment. It is stored
// with the deployment when the deployment starts and never changes after,
// so every leader decides with the same rules.
type Policy struct {
	// Percent is the share of new runs sent to the canary version, 1..99:
	// 0 would be no canary and 100 an immediate switch, both of which
	// have their own strategy.
	Percent int `json:"canary_percent"`
	// Runs is how many completed canary runs decide the canary,
	// 1..MaxRuns. The decision may come earlier when Duration ends or the
	// failure budget is already spent (see Decide).
	Runs int `json:"canary_runs"`
	// Duration is the longest observation: when it has passed the canary
	// is decided on what completed by then.
	Duration time.Duration `json:"canary_duration"`
	// MaxFailureIncrease is how many percentage points the canary's
	// failure rate may exceed the stable version's, 0..100.
	MaxFailureIncrease float64 `json:"max_failure_increase"`
	// MaxP95 bounds the 95th percentile duration of the canary's
	// completed runs; 0 turns the bound off.
	MaxP95 time.Duration `json:"max_p95_duration"`
}

// Validate reports every field that is out of range, each error naming
// the field as the CLI and API spell it and the value it got.
func (p Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidPolicy}, args...)...))
	}
	if p.Percent < 1 || p.Percent > 99 {
		bad("canary_percent: must be between 1 and 99, got %d", p.Percent)
	}
	if p.Runs < 1 || p.Runs > MaxRuns {
		bad("canary_runs: must be between 1 and %d, got %d", MaxRuns, p.Runs)
	}
	if p.Duration <= 0 {
		bad("canary_duration: must be positive, got %s", p.Duration)
	}
	if math.IsNaN(p.MaxFailureIncrease) || p.MaxFailureIncrease < 0 || p.MaxFailureIncrease > 100 {
		bad("max_failure_increase: must be between 0 and 100 percentage points, got %v", p.MaxFailureIncrease)
	}
	if p.MaxP95 < 0 {
		bad("max_p95_duration: must be 0 (off) or positive, got %s", p.MaxP95)
	}
	return errors.Join(errs...)
}
