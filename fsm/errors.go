package fsm

import "errors"

// Business errors an applier returns through the raft future. Appliers
// check everything before they write, so a command that fails changed
// nothing.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
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
	}
	return &replayedError{msg: msg, kind: sentinel}
}
