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

// refused reports whether Nomad answered err with a definite refusal of
// the request itself: a 4xx other than 401, 403 (the token, see
// tokenRefused) and 429 (too many requests, try later). A 5xx (no
// leader, an RPC that timed out between server and client) and silence
// are not answers: nothing can be concluded, so the caller must retry
// rather than guess.
func refused(err error) bool {
	code := statusOf(err)
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests && !tokenRefused(err)
}

// tokenRefused reports whether Nomad refused the ACL token (401, or 403:
// a missing policy, an expired or revoked token). That is no verdict on
// the request: a corrected or renewed token makes the same call succeed.
func tokenRefused(err error) bool {
	code := statusOf(err)
	return code == http.StatusUnauthorized || code == http.StatusForbidden
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
// ErrInvalid, anything else (a refused token, 429, 5xx, silence)
// ErrUnavailable.
func classify(op, subject string, err error) error {
	if err == nil {
		return nil
	}
	sentinel := scheduler.ErrUnavailable
	switch {
	case refused(err):
		sentinel = scheduler.ErrInvalid
	case tokenRefused(err):
		// Retryable: the operator fixes the token, the calls resume.
		return fmt.Errorf("nomad: %s %s: Nomad refused the ACL token (scheduler.nomad.token: missing, expired, revoked or without the policy): %w: %w",
			op, subject, sentinel, err)
	}
	return fmt.Errorf("nomad: %s %s: %w: %w", op, subject, sentinel, err)
}
