package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Follow streams (task logs, extension logs, the event stream) outlive the
// node serving them: a connection that ends before the server said the
// stream is over is a cut, and the client reconnects — to the next node of
// its list, or the same load-balancer address again — and resumes where it
// left off, so the caller gets every byte (event) once and in order.
//
// Logs are asked for in the API's framed form (Accept: text/event-stream):
// each piece carries the byte offset past it as its event id, a quiet
// stream gets keep-alives, and an `end` event says the server is done. A
// cut stream is resumed with ?offset set to the bytes received. Reconnects
// are retried with backoff for the client's retry window (WithRetryFor,
// default 30 s) from the cut, and that window starts again whenever the
// stream makes progress; past it the error says how far the stream got.
// A connection silent for three keep-alive intervals (idle.go) is a cut
// too; a 204 is the end (nothing left); a plain answer to a resume (an
// older node) is one more cut; an extension stream resumed on a replaced
// container ends with an error (its offset means nothing there).

// Resume describes a follow stream picked up again after its connection
// was lost.
type Resume struct {
	// Stream names what was followed, e.g. `task "build" of run 3`.
	Stream string
	// Offset is the byte the resumed log stream starts at (log streams).
	Offset int64
	// EventID is the last event delivered before the cut (event stream).
	EventID uint64
	// Cause is why the previous connection ended.
	Cause error
	// Events is set for the event stream (EventID counts), unset for logs
	// (Offset counts).
	Events bool
}

// Position says where the stream resumed: "from byte N" or "after event N".
func (r Resume) Position() string {
	if r.Events {
		return fmt.Sprintf("after event %d", r.EventID)
	}
	return fmt.Sprintf("from byte %d", r.Offset)
}

// WithResumeNotice calls fn each time a follow stream resumes after a cut
// (the CLI prints a note on stderr).
func WithResumeNotice(fn func(Resume)) Option { return func(c *Client) { c.onResume = fn } }

// resumeClient is the client a resumed stream reconnects with: reads
// served by whichever node answers (not forwarded to the leader, which
// may be the node that died), once it has applied index.
func (c *Client) resumeClient(index uint64) *Client {
	cp := *c
	cp.consistent = false
	cp.minIndex = max(cp.minIndex, index)
	return &cp
}

func (c *Client) notifyResume(r Resume) {
	if c.onResume != nil {
		c.onResume(r)
	}
}

// ErrStreamCut is wrapped by the error of a follow stream that was cut and
// could not be resumed within the retry window.
var ErrStreamCut = errors.New("stream cut")

const sseContentType = "text/event-stream"

// sseEvent is one server-sent event; comment holds the text of a
// comment-only block (a keep-alive, the server's greeting).
type sseEvent struct {
	id, event string
	data      []byte
	hasID     bool
	comment   string
}

// sseReader reads server-sent events from a response body.
type sseReader struct{ r *bufio.Reader }

func newSSEReader(body io.Reader) *sseReader { return &sseReader{r: bufio.NewReaderSize(body, 64<<10)} }

// next returns the next event. A body that ends mid-event, or between
// events, returns the read error (io.EOF for a clean close).
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	started := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if err == io.EOF && line != "" {
				err = io.ErrUnexpectedEOF
			}
			return ev, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if started {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
			if !started {
				ev.comment = strings.TrimSpace(line[1:])
			}
			started = true
		default:
			started = true
			ev.comment = ""
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				ev.id, ev.hasID = value, true
			case "event":
				ev.event = value
			case "data":
				if ev.data != nil {
					ev.data = append(ev.data, '\n')
				}
				ev.data = append(ev.data, value...)
			}
		}
	}
}

// logFollower is the reader a resuming log stream hands its caller.
type logFollower struct {
	c *Client
	// ctx is the caller's context with cancel, which Close calls: it
	// aborts a Read blocked on the body (from Close's goroutine, without
	// touching the state Read owns) and any reconnect in progress.
	ctx    context.Context
	cancel context.CancelFunc
	// closed is set by Close; Read checks it before reconnecting, so a
	// closed stream never opens another connection.
	closed atomic.Bool
	name   string
	req    request
	// minIndex is the index the first node had applied when it answered:
	// a node resumed on waits until it has as much, so it knows the task.
	minIndex uint64
	offset   int64
	resp     *http.Response
	events   *sseReader
	// container is the id of the container an extension log stream
	// reads (X-Gofer-Container-Id), from the first answer that named one.
	container string
	// idle watches the current connection's body; cancelConn ends its
	// request.
	idle       *idleBody
	cancelConn context.CancelFunc
	// plain is set when the server answered without framing (an older
	// server): its body is passed through and cannot be resumed.
	plain   io.ReadCloser
	pending []byte
	done    bool
	err     error
	// cutAt is when the stream was cut and has made no progress since
	// (zero while healthy); cause is why.
	cutAt   time.Time
	cause   error
	backoff time.Duration
}

// followLogs opens a framed log stream that resumes after cuts.
func (c *Client) followLogs(ctx context.Context, name string, r request) (io.ReadCloser, error) {
	r.stream = true
	r.headers = map[string]string{"Accept": sseContentType}
	ctx, cancel := context.WithCancel(ctx)
	f := &logFollower{c: c, ctx: ctx, cancel: cancel, name: name, req: r}
	if err := f.connect(); err != nil {
		cancel()
		return nil, err
	}
	if f.plain != nil {
		return &cancelOnClose{ReadCloser: f.plain, cancel: cancel}, nil
	}
	return f, nil
}

// errUnframed: a node resumed on answered in the plain form. In a rolling
// upgrade an older node may answer a resume; a newer one may answer the
// next try, so it is one more cut, retried within the window.
var errUnframed = errors.New("the node resumed on does not serve framed logs")

// errContainerReplaced: an extension's container was recreated while its
// log stream was cut.
var errContainerReplaced = errors.New("the extension's container was replaced")

// headerContainerID names the container an extension log stream reads.
const headerContainerID = "X-Gofer-Container-Id"

// shortID is a container id as Docker prints it.
func shortID(id string) string { return id[:min(len(id), 12)] }

// errStreamClosed is what Read returns once the caller closed the stream.
var errStreamClosed = errors.New("stream closed")

// connect opens the stream at the current offset on any node.
func (f *logFollower) connect() error {
	r := f.req
	r.query = url.Values{}
	for k, v := range f.req.query {
		r.query[k] = v
	}
	if f.offset > 0 {
		r.query.Set("offset", strconv.FormatInt(f.offset, 10))
	}
	cl := f.c
	if f.minIndex > 0 {
		// Resuming: any node serves the rest from its own state once it
		// has applied what the first node had.
		cl = cl.resumeClient(f.minIndex)
	}
	// Each connection has its own context: the idle watch cancels it to
	// drop a silent node without ending the stream.
	ctx, cancel := context.WithCancel(f.ctx)
	resp, err := cl.do(ctx, r, nil)
	if err != nil {
		cancel()
		return err
	}
	if resp.StatusCode == http.StatusNoContent {
		// The framed form's answer when nothing is left: the log is
		// closed and ends at the offset asked for.
		resp.Body.Close()
		cancel()
		f.done = true
		return nil
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), sseContentType) {
		if f.resp == nil && f.cutAt.IsZero() {
			f.plain = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return nil
		}
		resp.Body.Close()
		cancel()
		return fmt.Errorf("%w (answered %s)", errUnframed, resp.Header.Get("Content-Type"))
	}
	if idx, err := strconv.ParseUint(resp.Header.Get(headerIndex), 10, 64); err == nil && idx > f.minIndex {
		f.minIndex = idx
	}
	// An extension's container may have been replaced (same name, new
	// output) while the stream was cut: the offset means nothing in the
	// new one's output, so resuming would silently skip its first bytes.
	if id := resp.Header.Get(headerContainerID); id != "" {
		if f.container != "" && id != f.container {
			resp.Body.Close()
			cancel()
			return fmt.Errorf("%w: container %s was replaced by %s while the stream was cut; follow again to read the new container's output from its start", errContainerReplaced, shortID(f.container), shortID(id))
		}
		f.container = id
	}
	f.idle = watchIdle(resp.Body, cancel, defaultStreamIdle)
	f.resp, f.events, f.cancelConn = resp, newSSEReader(f.idle), cancel
	return nil
}

func (f *logFollower) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		if f.closed.Load() {
			f.closeResp()
			return 0, errStreamClosed
		}
		if f.done {
			return 0, io.EOF
		}
		if f.err != nil {
			return 0, f.err
		}
		if f.resp == nil {
			f.reconnect()
			continue
		}
		ev, err := f.events.next()
		if err != nil {
			f.cut(f.idle.cause(err))
			continue
		}
		if d, ok := greetingKeepAlive(ev.comment); ok {
			f.idle.keepAlive(d)
		}
		switch {
		case ev.comment == "keep-alive":
			// A keep-alive shows a healthy stream; the greeting alone
			// does not (a node that greets and dies is no progress).
			f.progress()
		case ev.event == "log":
			data, err := base64.StdEncoding.DecodeString(string(ev.data))
			id, idErr := strconv.ParseInt(ev.id, 10, 64)
			if err != nil || idErr != nil || id != f.offset+int64(len(data)) {
				f.fail(fmt.Errorf("%s: malformed log event at byte %d (id %q)", f.name, f.offset, ev.id))
				continue
			}
			f.pending, f.offset = data, id
			f.progress()
		case ev.event == "end":
			f.done = true
			f.closeResp()
		}
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

// progress: the stream is healthy again, so a later cut gets a fresh
// retry window.
func (f *logFollower) progress() {
	f.cutAt, f.cause, f.backoff = time.Time{}, nil, 0
}

func (f *logFollower) cut(err error) {
	f.closeResp()
	if f.ctx.Err() != nil {
		f.err = f.ctxErr()
		return
	}
	if f.cutAt.IsZero() {
		f.cutAt = time.Now()
	}
	f.cause = err
}

func (f *logFollower) fail(err error) {
	f.closeResp()
	f.err = err
}

// reconnect resumes a cut stream, waiting between tries that make no
// progress, until the retry window since the cut is spent.
func (f *logFollower) reconnect() {
	if f.backoff > 0 {
		if time.Since(f.cutAt)+f.backoff > f.c.retryFor {
			f.fail(f.cutError(f.cause))
			return
		}
		select {
		case <-f.ctx.Done():
			f.err = f.ctxErr()
			return
		case <-time.After(f.backoff):
		}
	}
	f.backoff = min(max(2*f.backoff, 100*time.Millisecond), 2*time.Second)
	if f.closed.Load() {
		f.err = errStreamClosed
		return
	}
	if err := f.connect(); err != nil {
		if f.ctx.Err() != nil {
			f.err = f.ctxErr()
			return
		}
		if errors.Is(err, errUnframed) {
			f.cause = err // still cut: the next Read tries again after a backoff
			return
		}
		if errors.Is(err, errContainerReplaced) {
			f.fail(fmt.Errorf("%s: %w", f.name, err))
			return
		}
		f.fail(f.cutError(err))
		return
	}
	f.c.notifyResume(Resume{Stream: f.name, Offset: f.offset, Cause: f.cause})
}

// ctxErr is why the stream's context ended: the caller's Close, or the
// caller's own context.
func (f *logFollower) ctxErr() error {
	if f.closed.Load() {
		return errStreamClosed
	}
	return f.ctx.Err()
}

func (f *logFollower) cutError(cause error) error {
	return fmt.Errorf("%s: %w after %d bytes and could not be resumed within %s: %v", f.name, ErrStreamCut, f.offset, f.c.retryFor, cause)
}

func (f *logFollower) closeResp() {
	if f.resp != nil {
		f.idle.stop()
		f.resp.Body.Close()
		f.cancelConn()
		f.resp, f.events, f.idle, f.cancelConn = nil, nil, nil, nil
	}
}

// Close ends the stream. It may be called while a Read is blocked (from
// another goroutine): it only sets the flag and cancels the context, which
// makes that Read return; the Read (or the next one) releases the body.
func (f *logFollower) Close() error {
	f.closed.Store(true)
	f.cancel()
	return nil
}
