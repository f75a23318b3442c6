package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/scheduler"
)

// extensionLogs streams the extension container's output as plain text
// (chunked), like a task's logs; upstream served a WebSocket. The output
// comes from this node's container engine by the container's
// deterministic name, so any node sharing the engine answers, leader or
// not. With follow=true the stream lasts until the container exits or the
// client goes away.
func (s *Server) extensionLogs(c echo.Context) error {
	id, err := extensionParam(c)
	if err != nil {
		return err
	}
	follow, err := boolQuery(c, "follow")
	if err != nil {
		return err
	}
	if _, err := s.installedExtension(id); err != nil {
		return err
	}
	if s.opts.ExtensionLogs == nil {
		return newError(http.StatusNotImplemented, CodeUnavailable, "this node runs no extension containers")
	}
	ctx := c.Request().Context()
	rc, err := s.opts.ExtensionLogs(ctx, id, follow)
	switch {
	case errors.Is(err, scheduler.ErrInvalid):
		return notFound("extension %q has no container on this node's container engine (not started yet, or removed)", id)
	case err != nil:
		return unavailable(2, "the container engine did not answer for extension %q: %v", id, err)
	}
	defer rc.Close()
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/plain; charset=utf-8")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return nil
			}
			w.Flush()
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) && ctx.Err() == nil {
				s.logger.Debug("extension log stream ended", "extension", id, "error", rerr)
			}
			return nil
		}
	}
}
