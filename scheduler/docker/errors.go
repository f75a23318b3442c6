package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/goferhq/gofer/scheduler"
)

// refused reports whether the daemon answered err with a definite 4xx
// refusal. The client turns every HTTP status into a typed error, so a
// 4xx is positive evidence: the engine was reached and said no. Anything
// else (a 5xx, a refused or timed-out connection, a cut stream, a context
// deadline) is silence from the executor's point of view: nothing can be
// concluded, so it must retry rather than guess.
func refused(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) || cerrdefs.IsInvalidArgument(err) ||
		cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err) ||
		cerrdefs.IsFailedPrecondition(err) || cerrdefs.IsNotImplemented(err)
}

// notFound reports whether the daemon positively said "no such object".
// A 404 is never inferred from a failed connection: only refused errors
// qualify, so StateNotFound always means the engine answered.
func notFound(err error) bool { return err != nil && refused(err) && cerrdefs.IsNotFound(err) }

// classify wraps err with the sentinel it implies for a call the caller
// has no more specific reading of: a refusal is ErrInvalid (the request
// named something absent or malformed; retrying will not help), anything
// else ErrUnavailable.
func classify(op, subject string, err error) error {
	if err == nil {
		return nil
	}
	sentinel := scheduler.ErrUnavailable
	if refused(err) {
		sentinel = scheduler.ErrInvalid
	}
	return fmt.Errorf("docker: %s %s: %w: %w", op, subject, sentinel, err)
}

// isMissingImage reports whether a daemon refusal is about the image
// (removed between our inspect and create), not the container or network.
func isMissingImage(err error) bool {
	return notFound(err) && strings.Contains(strings.ToLower(err.Error()), "no such image")
}

// isConnectionFailure reports whether err means the engine itself could
// not be reached or went away mid-answer, as opposed to a registry or
// request failure the engine reported.
func isConnectionFailure(err error) bool {
	return client.IsErrConnectionFailed(err) || errors.Is(err, io.ErrUnexpectedEOF)
}
