package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

func (s *Server) listEvents(c echo.Context) error {
	return respondList(s, c, "events", store.ListEvents)
}

func parseEventID(c echo.Context) (uint64, error) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, badRequest("event id must be a positive integer, got %q", c.Param("id"))
	}
	return id, nil
}

func (s *Server) getEvent(c echo.Context) error {
	id, err := parseEventID(c)
	if err != nil {
		return err
	}
	return respondOne(s, c, "event", func(tx *bbolt.Tx) (*model.Event, error) {
		return store.GetEvent(tx, id)
	}, notFound("event %d does not exist (it may have been pruned)", id))
}

func (s *Server) deleteEvent(c echo.Context) error {
	id, err := parseEventID(c)
	if err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdEventDelete, fsm.EventDelete{ID: id}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// sseKeepAlive is how often an idle stream sends a comment line, so
// proxies and load balancers keep the connection open.
const sseKeepAlive = 15 * time.Second

// streamEvents serves events as server-sent events from this node's state.
// ?history=true replays stored events first; otherwise the stream starts
// at the newest event. A reconnecting client's Last-Event-ID (or ?after=N)
// resumes after that event.
func (s *Server) streamEvents(c echo.Context) error {
	var cursor uint64
	history := c.QueryParam("history") == "true"
	resume := c.Request().Header.Get("Last-Event-ID")
	if resume == "" {
		resume = c.QueryParam("after")
	}
	if resume != "" {
		n, err := strconv.ParseUint(resume, 10, 64)
		if err != nil {
			return badRequest("Last-Event-ID/after must be an event id, got %q", resume)
		}
		cursor = n
	} else if !history {
		if err := s.view(func(tx *bbolt.Tx) error {
			cursor = store.LastEventID(tx)
			return nil
		}); err != nil {
			return err
		}
	}

	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// An id-only event tells the client where this stream starts, so a
	// reconnect (to any node) resumes without gaps or repeats.
	fmt.Fprintf(w, ": connected to %s\nid: %d\n\n", s.cluster.NodeID(), cursor)
	w.Flush()

	ctx := c.Request().Context()
	keepAlive := time.NewTicker(sseKeepAlive)
	defer keepAlive.Stop()
	changes := s.cluster.FSM().Changes()
	for {
		changed := changes.Changed()
		var batch []*model.Event
		if err := s.view(func(tx *bbolt.Tx) (err error) {
			batch, err = store.EventsAfter(tx, cursor, 256)
			return err
		}); err != nil {
			return nil
		}
		for _, e := range batch {
			data, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Kind, data); err != nil {
				return nil
			}
			cursor = e.ID
		}
		if len(batch) > 0 {
			w.Flush()
			if len(batch) == 256 {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.shutdown:
			return nil
		case <-changed:
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}
