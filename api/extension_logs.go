package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/scheduler"
)

// headerContainerID names the container an extension log stream reads.
const headerContainerID = "X-Gofer-Container-Id"

// extensionLogs streams the extension container's output, as plain text
// or framed (logstream.go), like a task's logs; upstream served a
// WebSocket. The output comes from this node's container engine by the
// container's deterministic name, so any node sharing the engine answers,
// leader or not, and a client whose node died resumes on another with
// ?offset. With follow=true the stream lasts until the container exits or
// the client goes away.
func (s *Server) extensionLogs(c echo.Context) error {
	id, err := extensionParam(c)
	if err != nil {
		return err
	}
	req, err := parseLogRequest(c)
	if err != nil {
		return err
	}
	follow, framed, offset := req.follow, req.framed, req.offset
	if _, err := s.installedExtension(id); err != nil {
		return err
	}
	if s.opts.ExtensionLogs == nil {
		return newError(http.StatusNotImplemented, CodeUnavailable, "this node runs no extension containers")
	}
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	rc, err := s.opts.ExtensionLogs(ctx, id, follow)
	switch {
	case errors.Is(err, scheduler.ErrInvalid):
		return notFound("extension %q has no container on this node's container engine (not started yet, or removed)", id)
	case err != nil:
		return unavailable(2, "the container engine did not answer for extension %q: %v", id, err)
	}
	defer rc.Close()
	out := newLogWriter(c, framed, offset, s.opts.StreamKeepAlive)
	defer out.close()
	// The supervisor replaces a failed extension's container under the
	// same name, and an offset counts bytes of one container's output: a
	// client resuming names the container it was following, and learns
	// from this header if it is another now.
	if id, ok := rc.(interface{ ContainerID() string }); ok && id.ContainerID() != "" {
		c.Response().Header().Set(headerContainerID, id.ContainerID())
	}
	if err := out.start(s.cluster.NodeID(), s.opts.StreamKeepAlive); err != nil {
		return nil
	}
	// The engine's reader blocks while the container is quiet; reading it
	// in its own goroutine lets the stream send keep-alives meanwhile.
	type piece struct {
		data []byte
		err  error
	}
	pieces := make(chan piece)
	go func() {
		for {
			buf := make([]byte, 32<<10)
			n, rerr := rc.Read(buf)
			select {
			case pieces <- piece{buf[:n], rerr}:
			case <-ctx.Done():
				return
			}
			if rerr != nil {
				return
			}
		}
	}()
	keepAlive := time.NewTicker(s.opts.StreamKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.shutdown:
			return nil
		case <-keepAlive.C:
			if err := out.keepAlive(); err != nil {
				return nil
			}
		case p := <-pieces:
			if len(p.data) > 0 {
				if err := out.write(p.data); err != nil {
					return nil
				}
				c.Response().Flush()
			}
			switch {
			case errors.Is(p.err, io.EOF):
				// The engine ended the log: the container exited (follow)
				// or all its output so far was read. Only this is an end.
				out.end(follow)
				return nil
			case p.err != nil:
				if ctx.Err() == nil {
					s.logger.Debug("extension log stream ended", "extension", id, "error", p.err)
				}
				return nil
			}
		}
	}
}
