package nomad

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// statusOf is the HTTP status Nomad answered err with, or 0 when it did
// not answer (a refused connection, a timeout, a cut stream, ctx).
func statusOf(err error) int {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0
	}
	var ure nomadapi.UnexpectedResponseError
	if errors.As(err, &ure) && ure.HasStatusCode() {
		return ure.StatusCode()
	}
	var pure *nomadapi.UnexpectedResponseError
	if errors.As(err, &pure) && pure.HasStatusCode() {
		return pure.StatusCode()
	}
	return 0
}

// refused reports whether Nomad answered err with a definite 4xx: the
// request was read and refused. A 5xx (no leader, an RPC that timed out
// between server and client) and silence are not answers: nothing can be
// concluded, so the caller must retry rather than guess.
func refused(err error) bool {
	code := statusOf(err)
	return code >= 400 && code < 500
}

// notFound reports whether Nomad positively said "no such object" (404).
func notFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// duplicate reports whether a register with EnforceIndex and index 0 was
// refused because the job exists. Nomad answers that with a 500 whose
// text is "Enforcing job modify index 0: job already exists".
func duplicate(err error) bool {
	return statusOf(err) == http.StatusInternalServerError &&
		strings.Contains(err.Error(), "job already exists")
}

// classify wraps err with the sentinel it implies: a refusal is
// ErrInvalid, anything else ErrUnavailable.
func classify(op, subject string, err error) error {
	if err == nil {
		return nil
	}
	sentinel := scheduler.ErrUnavailable
	if refused(err) {
		sentinel = scheduler.ErrInvalid
	}
	return fmt.Errorf("nomad: %s %s: %w: %w", op, subject, sentinel, err)
}
