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
			wait := defaultMinIndexWait
			if w := c.QueryParam("wait"); w != "" {
				d, err := time.ParseDuration(w)
				if err != nil || d < 0 {
					return badRequest("wait must be a duration like 5s, got %q", w)
				}
				wait = min(d, maxMinIndexWait)
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

func (s *Server) setReadHeaders(c echo.Context) {
	h := c.Response().Header()
	h.Set(HeaderIndex, strconv.FormatUint(s.cluster.FSM().AppliedIndex(), 10))
	leaderID, _ := s.cluster.Leader()
	h.Set(HeaderKnownLeader, strconv.FormatBool(leaderID != "" || s.cluster.IsLeader()))
	h.Set(HeaderLastContact, strconv.FormatInt(s.cluster.LastContact().Milliseconds(), 10))
}
