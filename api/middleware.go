package api

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"
)

// Header names shared with the client.
const (
	HeaderAPIVersion    = "gofer-api-version"
	APIVersion          = "v0"
	HeaderRequestID     = "X-Request-Id"
	HeaderIndex         = "X-Gofer-Index"
	HeaderKnownLeader   = "X-Gofer-Known-Leader"
	HeaderLastContact   = "X-Gofer-Last-Contact"
	HeaderForwardedFrom = "X-Gofer-Forwarded-From"
	HeaderIdempotency   = "Idempotency-Key"
	HeaderClusterSecret = "X-Gofer-Cluster-Secret"
	HeaderServedBy      = "X-Gofer-Node"
)

const ctxRequestID = "gofer.request_id"

func requestID(c echo.Context) string {
	if id, ok := c.Get(ctxRequestID).(string); ok {
		return id
	}
	return ""
}

// newRequestID makes a 96-bit id for correlating logs. It needs to be
// unique, not secret, so it comes from the fast per-thread generator
// rather than crypto/rand (a syscall per request).
func newRequestID() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	return hex.EncodeToString(b[:])
}

// requestIDMiddleware keeps a caller's request id (so a forwarded request
// keeps its id across nodes) or makes one, and echoes it back.
func (s *Server) requestIDMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(HeaderRequestID)
		if id == "" || len(id) > 128 {
			id = newRequestID()
			c.Request().Header.Set(HeaderRequestID, id)
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(HeaderRequestID, id)
		c.Response().Header().Set(HeaderServedBy, s.cluster.NodeID())
		return next(c)
	}
}

// recoverMiddleware turns a handler panic into a 500 so one bad request
// never takes a node down.
func (s *Server) recoverMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.logger.Error("handler panicked", "path", c.Path(), "panic", r, "stack", string(debug.Stack()))
				err = fmt.Errorf("handler panicked: %v", r)
			}
		}()
		return next(c)
	}
}

// logMiddleware logs each request (at debug) and records it in the
// request metrics: the one place requests are measured.
func (s *Server) logMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		s.observeRequest(c, start)
		if s.logger.IsDebug() {
			s.logger.Debug("request", "method", c.Request().Method, "uri", c.Request().RequestURI,
				"status", c.Response().Status, "latency", time.Since(start), "remote", c.RealIP(),
				"request_id", requestID(c))
		}
		return nil
	}
}

// versionMiddleware requires gofer-api-version: v0, as upstream does.
func versionMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := c.Request().Header.Get(HeaderAPIVersion)
		if v == "" {
			return badRequest("missing header %s: set it to %q", HeaderAPIVersion, APIVersion)
		}
		if v != APIVersion {
			return badRequest("unsupported %s %q: this server speaks %q", HeaderAPIVersion, v, APIVersion)
		}
		return next(c)
	}
}

// bodyLimitMiddleware refuses bodies over limit with 413 before anything
// reads them; limit < 0 means no limit.
func bodyLimitMiddleware(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if limit < 0 {
				return next(c)
			}
			req := c.Request()
			if req.ContentLength > limit {
				return tooLarge("request body is %d bytes, the limit is %d", req.ContentLength, limit)
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			return next(c)
		}
	}
}
