package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store/model"
)

// Errors a Cluster implementation returns from Apply and the leader
// operations; the API maps them to statuses.
var (
	// ErrNoLeader: the cluster has no leader right now; retry later.
	ErrNoLeader = errors.New("no cluster leader")
	// ErrNotLeader: this node lost leadership before the write was
	// accepted; nothing was written and a retry is safe.
	ErrNotLeader = errors.New("node is not the leader")
	// ErrOutcomeUnknown: the write may or may not have been applied
	// (leadership lost or timed out after it was submitted). Retry with
	// the same idempotency key.
	ErrOutcomeUnknown = errors.New("write outcome unknown")
	// ErrEntryTooLarge: the command exceeds the raft entry size limit.
	ErrEntryTooLarge = errors.New("request too large to replicate")
	// ErrInvalidInput: the caller sent something unusable (a corrupt
	// snapshot, an address that does not answer); a 400.
	ErrInvalidInput = errors.New("invalid input")
)

// RemoteError is an error answer from another node (a join target),
// passed on with its status so the caller sees what that node said.
type RemoteError struct {
	URL    string
	Status int
	Body   ErrorBody
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%s answered %d: %s", e.URL, e.Status, e.Body.Message)
}

// Error codes in the JSON error body.
const (
	CodeBadRequest      = "bad_request"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodePayloadTooLarge = "payload_too_large"
	CodeUnavailable     = "unavailable"
	// CodeBadGateway: an extension the request was passed to failed (502).
	CodeBadGateway      = "bad_gateway"
	CodeInternal        = "internal"
	CodeMethodNotAllowd = "method_not_allowed"
	// CodeIdempotencyMismatch: the Idempotency-Key was used for a
	// different request (422).
	CodeIdempotencyMismatch = "idempotency_key_mismatch"
)

// ErrorBody is every error response: {request_id, code, message}, plus
// missing when secrets or objects that markers name are not there (a run
// start, a subscription's settings): every one, with its fix.
type ErrorBody struct {
	RequestID string               `json:"request_id"`
	Code      string               `json:"code"`
	Message   string               `json:"message"`
	Missing   []model.MissingValue `json:"missing,omitempty"`
}

// apiError is an error that knows its HTTP status and code.
type apiError struct {
	status     int
	code       string
	message    string
	retryAfter int
	missing    []model.MissingValue
}

func (e *apiError) Error() string { return e.message }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, CodeBadRequest, format, args...)
}

func notFound(format string, args ...any) *apiError {
	return newError(http.StatusNotFound, CodeNotFound, format, args...)
}

func forbidden(format string, args ...any) *apiError {
	return newError(http.StatusForbidden, CodeForbidden, format, args...)
}

func unauthorized(format string, args ...any) *apiError {
	return newError(http.StatusUnauthorized, CodeUnauthorized, format, args...)
}

func conflict(format string, args ...any) *apiError {
	return newError(http.StatusConflict, CodeConflict, format, args...)
}

func unavailable(retryAfter int, format string, args ...any) *apiError {
	e := newError(http.StatusServiceUnavailable, CodeUnavailable, format, args...)
	e.retryAfter = retryAfter
	return e
}

func tooLarge(format string, args ...any) *apiError {
	return newError(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, format, args...)
}

// classify turns any handler error into an apiError.
func classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := fmt.Sprint(he.Message)
		switch he.Code {
		case http.StatusNotFound:
			return notFound("no such route")
		case http.StatusMethodNotAllowed:
			return newError(he.Code, CodeMethodNotAllowd, "method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			return tooLarge("request body is too large")
		case http.StatusUnauthorized:
			return unauthorized("%s", msg)
		}
		return newError(he.Code, CodeBadRequest, "%s", msg)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge("request body is larger than the %d byte limit", mbe.Limit)
	}
	switch {
	case errors.Is(err, fsm.ErrNotFound):
		return newError(http.StatusNotFound, CodeNotFound, "%s", withoutSentinel(err, fsm.ErrNotFound))
	case errors.Is(err, fsm.ErrConflict):
		return newError(http.StatusConflict, CodeConflict, "%s", withoutSentinel(err, fsm.ErrConflict))
	case errors.Is(err, fsm.ErrIdempotencyMismatch):
		return newError(http.StatusUnprocessableEntity, CodeIdempotencyMismatch,
			"%s was already used for a different request: %s; send a new key for a new request", HeaderIdempotency, err)
	case errors.Is(err, fsm.ErrInvalid):
		return newError(http.StatusBadRequest, CodeBadRequest, "%s", withoutSentinel(err, fsm.ErrInvalid))
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader):
		return unavailable(1, "%s; retry shortly", err)
	case errors.Is(err, ErrOutcomeUnknown):
		return unavailable(1, "%s; retry with the same Idempotency-Key to learn the outcome", err)
	case errors.Is(err, ErrEntryTooLarge):
		return tooLarge("%s", err)
	case errors.Is(err, ErrInvalidInput):
		return badRequest("%s", withoutSentinel(err, ErrInvalidInput))
	}
	var re *RemoteError
	if errors.As(err, &re) {
		code := re.Body.Code
		if code == "" {
			code = CodeUnavailable
		}
		return newError(re.Status, code, "%s", re.Error())
	}
	return newError(http.StatusInternalServerError, CodeInternal, "internal error: %s", err)
}

// errorHandler writes every error as {request_id, code, message}.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := classify(err)
	if ae.status >= 500 && ae.status != http.StatusServiceUnavailable {
		s.logger.Error("request failed", "method", c.Request().Method, "path", c.Path(), "error", err, "request_id", requestID(c))
	}
	if ae.retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	body := ErrorBody{RequestID: requestID(c), Code: ae.code, Message: ae.message, Missing: ae.missing}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.status)
		return
	}
	_ = c.JSON(ae.status, body)
}

// withoutSentinel drops a leading "conflict: " (the sentinel's text) from
// a business error: the status code already says it.
func withoutSentinel(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}
