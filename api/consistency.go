package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// Read consistency (docs/architecture.md §5). Default reads are local and may be stale
// by at most X-Gofer-Last-Contact; ?consistent=true reads are served by a
// leader that has just confirmed its leadership with a quorum;
// ?min_index=N waits until this node has applied N (read-your-writes on
// any node after a write that returned X-Gofer-Index: N).

const (
	maxMinIndexWait     = 60 * time.Second
	defaultMinIndexWait = 10 * time.Second
)

// wantsConsistent decides forwarding, before consistencyMiddleware has
// validated the parameter: a malformed value is not forwarded and is then
// refused with 400 wherever it arrived.
func wantsConsistent(c echo.Context) bool {
	b, err := boolQuery(c, "consistent")
	return err == nil && b
}

// consistencyMiddleware applies ?consistent and ?min_index and sets the
// index and leader headers before the handler reads.
func (s *Server) consistencyMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		consistent, err := boolQuery(c, "consistent")
		if err != nil {
			return err
		}
		if consistent && c.Request().Method == http.MethodGet {
			ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
			err := s.cluster.VerifyLeader(ctx)
			cancel()
			if err != nil {
				return unavailable(1, "could not confirm leadership for a consistent read: %v", err)
			}
		}
		if raw := c.QueryParam("min_index"); raw != "" {
			idx, err := strconv.ParseUint(raw, 10, 64)
			if err != nil {
				return badRequest("min_index must be a non-negative integer, got %q", raw)
			}
			wait, err := waitParam(c)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Request().Context(), wait)
			err = s.cluster.FSM().WaitForIndex(ctx, idx)
			cancel()
			if err != nil {
				return unavailable(1, "this node has applied index %d, not yet %d; retry or read from another node", s.cluster.FSM().AppliedIndex(), idx)
			}
		}
		s.setReadHeaders(c)
		return next(c)
	}
}

// waitParam is ?wait: how long a ?min_index read may wait (default 10 s,
// at most 60 s).
func waitParam(c echo.Context) (time.Duration, error) {
	w := c.QueryParam("wait")
	if w == "" {
		return defaultMinIndexWait, nil
	}
	d, err := time.ParseDuration(w)
	if err != nil || d < 0 {
		return 0, badRequest("wait must be a duration like 5s, got %q", w)
	}
	return min(d, maxMinIndexWait), nil
}

// minIndexWait says whether the request asks to read at an index
// (?min_index) and how long it may wait for it; malformed parameters are
// refused later by consistencyMiddleware and count as no wait here.
func minIndexWait(c echo.Context) (time.Duration, bool) {
	if _, err := strconv.ParseUint(c.QueryParam("min_index"), 10, 64); err != nil {
		return 0, false
	}
	wait, err := waitParam(c)
	if err != nil {
		return 0, false
	}
	return wait, true
}

// reauthorizeAfterWait runs the route's authorization again once a
// ?min_index or ?consistent wait is over: authentication ran before the
// wait (so an unknown token is refused without one), but a read at index
// N must be allowed or refused by the tokens and roles as of N — a role
// deleted at N is gone for it on every node.
func (s *Server) reauthorizeAfterWait(a access) echo.MiddlewareFunc {
	again := s.authMiddleware(a)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		checked := again(next)
		return func(c echo.Context) error {
			if _, waited := minIndexWait(c); waited || wantsConsistent(c) {
				return checked(c)
			}
			return next(c)
		}
	}
}

// readHeadersMiddleware sets the index and leader headers on a public
// route, which waits for nothing.
func (s *Server) readHeadersMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s.setReadHeaders(c)
		return next(c)
	}
}

func (s *Server) setReadHeaders(c echo.Context) {
	h := c.Response().Header()
	h.Set(HeaderIndex, strconv.FormatUint(s.cluster.FSM().AppliedIndex(), 10))
	leaderID, _ := s.cluster.Leader()
	h.Set(HeaderKnownLeader, strconv.FormatBool(leaderID != "" || s.cluster.IsLeader()))
	h.Set(HeaderLastContact, strconv.FormatInt(s.cluster.LastContact().Milliseconds(), 10))
}
