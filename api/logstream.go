package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// DefaultStreamKeepAlive is Options.StreamKeepAlive when unset: how long a
// follow stream may stay quiet before the node sends a keep-alive, well
// under the idle timeouts load balancers use (HAProxy's `timeout server`,
// 90 s in docs/examples/haproxy.cfg; many default to 60 s).
const DefaultStreamKeepAlive = 15 * time.Second

// A log stream (a task's output, an extension container's output) is
// served in one of two forms:
//
//   - plain: the log's bytes, nothing else, exactly as upstream served them.
//     Nothing can be added to keep a quiet stream alive without corrupting
//     the bytes, and a clean end cannot be told from a node that shut down,
//     so a client of the plain form cannot resume safely.
//   - framed (the request's Accept header names text/event-stream): server-
//     sent events. Each `log` event carries a piece of the log base64-encoded
//     (logs are bytes, SSE data is lines of text) and, as its id, the byte
//     offset just past it; a quiet stream gets `: keep-alive` comment lines;
//     the last event is `end`, sent only when the server is done (the task
//     is complete and its log drained, or the follow was not asked for). A
//     connection that closes without `end` was cut: the client reconnects to
//     any node with Last-Event-ID (or ?offset) set to the last id it got and
//     receives the rest, each byte once.
//
// Both forms take ?offset=N: the stream starts at byte N of the log.
const (
	sseContentType = "text/event-stream"
	logEventData   = "log"
	logEventEnd    = "end"
)

// A follow stream writes for as long as what it follows lasts; a client
// that stops reading (hung, or gone without a FIN) would block a write
// forever, pinning the handler, a connection slot and (extension logs)
// the container engine's log connection. Each write may block only so
// long: twice the keep-alive interval, at least minStreamWriteTimeout, so
// a slow but live reader is not mistaken for a dead one.
const minStreamWriteTimeout = 5 * time.Second

// streamDeadline arms the write deadline of a follow stream's connection.
type streamDeadline struct {
	rc      *http.ResponseController
	timeout time.Duration
}

func newStreamDeadline(w http.ResponseWriter, keepAlive time.Duration) *streamDeadline {
	return &streamDeadline{rc: http.NewResponseController(w), timeout: max(2*keepAlive, minStreamWriteTimeout)}
}

// arm gives the next writes (and their flush) the timeout from now.
func (d *streamDeadline) arm() { _ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout)) }

// clear lifts the deadline when the stream ends, so it does not outlive
// the request on a kept-alive connection.
func (d *streamDeadline) clear() { _ = d.rc.SetWriteDeadline(time.Time{}) }

// logRequest is what a log route was asked for: follow or not, the framed
// form or plain text, and the byte to start at.
type logRequest struct {
	follow, framed bool
	offset         int64
}

// parseLogRequest reads the parameters every log route (task and
// extension) takes, with errors that name the field.
func parseLogRequest(c echo.Context) (logRequest, error) {
	follow, err := boolQuery(c, "follow")
	if err != nil {
		return logRequest{}, err
	}
	framed := logStreamFramed(c)
	offset, err := logOffsetParam(c, framed)
	if err != nil {
		return logRequest{}, err
	}
	return logRequest{follow: follow, framed: framed, offset: offset}, nil
}

// logStreamFramed reports whether the caller asked for the framed form.
func logStreamFramed(c echo.Context) bool {
	return strings.Contains(c.Request().Header.Get(echo.HeaderAccept), sseContentType)
}

// logOffsetParam is where the stream starts: a framed stream's
// Last-Event-ID (the offset a cut stream had reached) when it has one,
// else ?offset. Last-Event-ID wins because a browser's EventSource
// reconnects with the URL it was opened with (its ?offset unchanged) plus
// Last-Event-ID: the header is the newer of the two.
func logOffsetParam(c echo.Context, framed bool) (int64, error) {
	if v := c.Request().Header.Get("Last-Event-ID"); framed && v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, badRequest("Last-Event-ID must be a byte offset (an integer, 0 or more), got %q", v)
		}
		return n, nil
	}
	if v := c.QueryParam("offset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, badRequest("offset must be a byte offset (an integer, 0 or more), got %q", v)
		}
		return n, nil
	}
	return 0, nil
}

// logWriter writes a log stream in the form the caller asked for, skipping
// the bytes before the requested offset.
type logWriter struct {
	w      *echo.Response
	framed bool
	// offset is where the caller asked to start; pos is how many bytes of
	// the log have gone by (written or skipped).
	offset, pos int64
	deadline    *streamDeadline
}

// newLogWriter starts a log answer; the caller defers close.
func newLogWriter(c echo.Context, framed bool, offset int64, keepAlive time.Duration) *logWriter {
	w := c.Response()
	if framed {
		w.Header().Set(echo.HeaderContentType, sseContentType)
		w.Header().Set("Cache-Control", "no-cache")
	} else {
		w.Header().Set(echo.HeaderContentType, "text/plain; charset=utf-8")
	}
	w.Header().Set("X-Accel-Buffering", "no")
	return &logWriter{w: c.Response(), framed: framed, offset: offset, pos: 0, deadline: newStreamDeadline(c.Response(), keepAlive)}
}

// close lifts the stream's write deadline.
func (l *logWriter) close() { l.deadline.clear() }

// start sends the headers (and, framed, a comment naming the node, the
// offset and the keep-alive interval, by which a client knows how long a
// healthy stream may be silent), so a forwarder or load balancer waiting
// for the answer sees it at once.
func (l *logWriter) start(nodeID string, keepAlive time.Duration) error {
	l.deadline.arm()
	l.w.WriteHeader(http.StatusOK)
	if l.framed {
		if _, err := fmt.Fprintf(l.w, ": connected to %s at byte %d; keep-alive %s\n\n", nodeID, l.offset, keepAlive); err != nil {
			return err
		}
	}
	l.w.Flush()
	return nil
}

// write sends the part of the next piece of the log at or past the offset.
// The caller flushes.
func (l *logWriter) write(p []byte) error {
	start := l.pos
	l.pos += int64(len(p))
	if l.pos <= l.offset {
		return nil
	}
	if start < l.offset {
		p = p[l.offset-start:]
	}
	l.deadline.arm()
	if !l.framed {
		_, err := l.w.Write(p)
		return err
	}
	_, err := fmt.Fprintf(l.w, "id: %d\nevent: %s\ndata: %s\n\n", l.pos, logEventData, base64.StdEncoding.EncodeToString(p))
	return err
}

// behind reports whether this node has not yet got to the offset the
// caller asked for (a follower that lags the node that served the stream
// before).
func (l *logWriter) behind() bool { return l.pos < l.offset }

// keepAlive sends a comment line on a framed stream; a plain stream has no
// room for one.
func (l *logWriter) keepAlive() error {
	if !l.framed {
		return nil
	}
	l.deadline.arm()
	if _, err := fmt.Fprint(l.w, ": keep-alive\n\n"); err != nil {
		return err
	}
	l.w.Flush()
	return nil
}

// end tells a framed stream's client the server is done: complete says
// whether the source is finished (the task complete, the container
// exited) or was only read up to now (no follow).
func (l *logWriter) end(complete bool) {
	if !l.framed {
		return
	}
	l.deadline.arm()
	fmt.Fprintf(l.w, "id: %d\nevent: %s\ndata: {\"offset\":%d,\"complete\":%t}\n\n", max(l.pos, l.offset), logEventEnd, max(l.pos, l.offset), complete)
	l.w.Flush()
}
