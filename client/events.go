package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// ListEvents lists stored events (oldest first unless reversed).
func (c *Client) ListEvents(ctx context.Context, p Page) ([]*model.Event, error) {
	var out struct {
		Events []*model.Event `json:"events"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/events", query: p.query()}, &out)
	return out.Events, err
}

// ListEventsOfKind lists the events of one kind (model.EventAudit…).
func (c *Client) ListEventsOfKind(ctx context.Context, p Page, kind string) ([]*model.Event, error) {
	var out struct {
		Events []*model.Event `json:"events"`
	}
	q := p.query()
	q.Set("kind", kind)
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/events", query: q}, &out)
	return out.Events, err
}

// GetEvent reads one event.
func (c *Client) GetEvent(ctx context.Context, id uint64) (*model.Event, error) {
	var out struct {
		Event *model.Event `json:"event"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/events/" + strconv.FormatUint(id, 10)}, &out)
	return out.Event, err
}

// DeleteEvent deletes one event (admin).
func (c *Client) DeleteEvent(ctx context.Context, id uint64) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/events/" + strconv.FormatUint(id, 10)}, nil)
	return err
}

// StreamEvents follows the event stream until ctx ends, calling fn for
// each event. With history it first replays stored events. If the
// connection drops it reconnects (to any node, or the same load-balancer
// address) and resumes after the last event it delivered, so no event is
// skipped or repeated; WithResumeNotice hears of each resume. Reconnects
// are retried for the client's retry window (default 30 s) from a cut
// that no progress followed; past it the error wraps ErrStreamCut and
// names the last event delivered.
func (c *Client) StreamEvents(ctx context.Context, history bool, fn func(*model.Event) error) error {
	var after uint64
	resumed := false
	var cutAt time.Time
	var cause error
	for {
		q := url.Values{}
		switch {
		case resumed:
			q.Set("after", strconv.FormatUint(after, 10))
		case history:
			q.Set("history", "true")
		}
		if cause != nil && time.Since(cutAt) > c.retryFor {
			return c.eventsCut(after, cause)
		}
		cl := c
		if resumed {
			cl = c.resumeClient(0)
		}
		// Each connection has its own context: the idle watch cancels it
		// to drop a silent node without ending the stream.
		connCtx, cancelConn := context.WithCancel(ctx)
		resp, err := cl.do(connCtx, request{method: http.MethodGet, path: "/api/events/stream", query: q, stream: true}, nil)
		if err != nil {
			cancelConn()
			if ctx.Err() != nil {
				return nil
			}
			if cause != nil {
				return c.eventsCut(after, err)
			}
			return err
		}
		if cause != nil {
			c.notifyResume(Resume{Stream: "the event stream", EventID: after, Cause: cause, Events: true})
		}
		idle := watchIdle(resp.Body, cancelConn, defaultStreamIdle)
		connectedAt := after
		err = readSSE(idle, idle.keepAlive, func(ev sseBlock) error {
			// Progress (an event, a keep-alive, a cursor past where this
			// connection started) shows the stream is healthy again, so a
			// later cut gets a fresh retry window. The greeting alone does
			// not: a node that greets and closes would renew it forever.
			if ev.data != nil || ev.comment == "keep-alive" || ev.id > connectedAt {
				cutAt, cause = time.Time{}, nil
			}
			if ev.data == nil {
				// The server announces its cursor as an id-only event
				// (at the start and with keep-alives); reconnects resume
				// from there.
				after, resumed = ev.id, true
				return nil
			}
			var e model.Event
			if err := json.Unmarshal(ev.data, &e); err != nil {
				return fmt.Errorf("decode event %d: %w", ev.id, err)
			}
			after, resumed = e.ID, true
			return fn(&e)
		})
		idle.stop()
		resp.Body.Close()
		cancelConn()
		if ctx.Err() != nil {
			return nil
		}
		err = idle.cause(err)
		if cbErr, ok := err.(callbackError); ok {
			return cbErr.err
		}
		// The event stream never ends by itself: any end is a cut.
		if err == nil {
			err = errors.New("the node closed the stream")
		}
		if cause == nil {
			cutAt = time.Now()
		}
		cause = err
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Client) eventsCut(after uint64, cause error) error {
	return fmt.Errorf("the event stream: %w after event %d and could not be resumed within %s: %v", ErrStreamCut, after, c.retryFor, cause)
}

type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// sseBlock is one event of the event stream: data is nil for an id-only
// event; comment is the block's first comment (the greeting, a
// keep-alive).
type sseBlock struct {
	id      uint64
	data    []byte
	comment string
}

// readSSE parses server-sent events, calling fn with each event that has
// an id or data (an id-only event too, id 0 included), and keepAlive with
// the interval the server's greeting announces.
func readSSE(body io.Reader, keepAlive func(time.Duration), fn func(sseBlock) error) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var ev sseBlock
	hasID, hasComment := false, false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.data != nil || hasID {
				if err := fn(ev); err != nil {
					return callbackError{err}
				}
			}
			ev, hasID, hasComment = sseBlock{}, false, false
		case strings.HasPrefix(line, ":"):
			comment := strings.TrimSpace(line[1:])
			if d, ok := greetingKeepAlive(comment); ok {
				keepAlive(d)
			}
			if !hasComment {
				ev.comment, hasComment = comment, true
			}
		case strings.HasPrefix(line, "id:"):
			ev.id, _ = strconv.ParseUint(strings.TrimSpace(line[3:]), 10, 64)
			hasID = true
		case strings.HasPrefix(line, "data:"):
			ev.data = append(ev.data, strings.TrimPrefix(line[5:], " ")...)
		}
	}
	return sc.Err()
}
