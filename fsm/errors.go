package fsm

import "errors"

// Business errors an applier returns through the raft future. Appliers
// check everything before they write, so a command that fails changed
// nothing.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	// ErrIdempotencyMismatch: the idempotency key was already used for a
	// different request (another method, path, query or body).
	ErrIdempotencyMismatch = errors.New("idempotency key reused for a different request")
)

// Result is what ApplyBatch returns for a command entry.
type Result struct {
	Value any
	Err   error
	// Replayed is set when the command's idempotency key had already been
	// applied: Value/Err are the earlier outcome and nothing changed.
	Replayed bool
}

// errorKind names the sentinel err wraps, for idempotency records.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrIdempotencyMismatch):
		return "idempotency_mismatch"
	}
	return ""
}

// replayedError re-creates a recorded business error with its sentinel.
type replayedError struct {
	msg  string
	kind error
}

func (e *replayedError) Error() string { return e.msg }
func (e *replayedError) Unwrap() error { return e.kind }

func errorFromKind(kind, msg string) error {
	var sentinel error
	switch kind {
	case "not_found":
		sentinel = ErrNotFound
	case "conflict":
		sentinel = ErrConflict
	case "invalid":
		sentinel = ErrInvalid
	case "idempotency_mismatch":
		sentinel = ErrIdempotencyMismatch
	}
	return &replayedError{msg: msg, kind: sentinel}
}
