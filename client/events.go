package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
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
// connection drops it reconnects (to any node) and resumes after the last
// event it delivered, so no event is skipped or repeated.
func (c *Client) StreamEvents(ctx context.Context, history bool, fn func(*model.Event) error) error {
	var after uint64
	resumed := false
	for {
		q := url.Values{}
		switch {
		case resumed:
			q.Set("after", strconv.FormatUint(after, 10))
		case history:
			q.Set("history", "true")
		}
		resp, err := c.do(ctx, request{method: http.MethodGet, path: "/api/events/stream", query: q, stream: true}, nil)
		if err != nil {
			return err
		}
		err = readSSE(resp, func(id uint64, data []byte) error {
			if data == nil {
				// The server announces its starting cursor as an
				// id-only event; reconnects resume from there.
				after, resumed = id, true
				return nil
			}
			var e model.Event
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("decode event %d: %w", id, err)
			}
			after, resumed = e.ID, true
			return fn(&e)
		})
		resp.Body.Close()
		if ctx.Err() != nil {
			return nil
		}
		if cbErr, ok := err.(callbackError); ok {
			return cbErr.err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// readSSE parses server-sent events, calling fn with each event's id and
// data (nil for an id-only event). Comment lines (keep-alives) are
// skipped.
func readSSE(resp *http.Response, fn func(id uint64, data []byte) error) error {
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var id uint64
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil || id != 0 {
				if err := fn(id, data); err != nil {
					return callbackError{err}
				}
			}
			id, data = 0, nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id:"):
			id, _ = strconv.ParseUint(strings.TrimSpace(line[3:]), 10, 64)
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(line[5:], " ")...)
		}
	}
	return sc.Err()
}
