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
	visible := s.eventVisibility(callerOf(c))
	keep := visible.keep()
	// ?kind=K lists only events of that kind (audit, created_token…).
	if kind := c.QueryParam("kind"); kind != "" {
		seen := keep
		keep = func(e *model.Event) bool { return e.Kind == kind && (seen == nil || seen(e)) }
	}
	return respondList(s, c, "events", func(tx *bbolt.Tx, page store.Page) ([]*model.Event, error) {
		return store.ListEvents(tx, page, keep)
	})
}

// eventVisibility decides which events a caller may read. A namespaced
// event needs what reading anything in its namespace needs: one role
// granting read on namespaces:<ns>, pipelines:<p> (when the event belongs
// to a pipeline) and events. A cluster-wide event (no namespace) needs
// read on all or on cluster_events. Admins and dev mode see everything.
type eventVisibility struct {
	all, clusterWide bool
	allowed          func(refs []resourceRef) bool
	// scopes memoizes the decision per namespace/pipeline: a page or a
	// stream meets few distinct scopes, and a decision walks every role.
	scopes map[[2]string]bool
}

// maxVisibilityScopes bounds the memo of a long-lived stream.
const maxVisibilityScopes = 4096

func (s *Server) eventVisibility(caller *identity) *eventVisibility {
	v := &eventVisibility{scopes: map[[2]string]bool{}}
	if caller.Dev || caller.ClusterSecret || s.authz.isAdmin(caller, model.ActionRead) {
		v.all = true
		return v
	}
	v.allowed = func(refs []resourceRef) bool { return s.authz.allowed(caller, refs, model.ActionRead) }
	v.clusterWide = v.allowed([]resourceRef{{kind: "cluster_events"}})
	return v
}

// keep is the filter a list applies, nil when the caller sees everything.
func (v *eventVisibility) keep() func(*model.Event) bool {
	if v.all {
		return nil
	}
	return v.visible
}

// visible reports whether the caller may read e.
func (v *eventVisibility) visible(e *model.Event) bool {
	switch {
	case v.all:
		return true
	case e.ClusterWide():
		return v.clusterWide
	}
	key := [2]string{e.NamespaceID, e.PipelineID}
	if ok, seen := v.scopes[key]; seen {
		return ok
	}
	refs := []resourceRef{{kind: "namespaces", target: e.NamespaceID}}
	if e.PipelineID != "" {
		refs = append(refs, resourceRef{kind: "pipelines", target: e.PipelineID})
	}
	refs = append(refs, resourceRef{kind: "events"})
	ok := v.allowed(refs)
	if len(v.scopes) >= maxVisibilityScopes {
		clear(v.scopes)
	}
	v.scopes[key] = ok
	return ok
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
	visible := s.eventVisibility(callerOf(c))
	// An event the caller may not read answers exactly like a missing one,
	// so ids do not reveal what happens in other namespaces.
	return respondOne(s, c, "event", func(tx *bbolt.Tx) (*model.Event, error) {
		e, err := store.GetEvent(tx, id)
		if e != nil && !visible.visible(e) {
			e = nil
		}
		return e, err
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

// streamEvents serves events as server-sent events from this node's state.
// ?history=true replays stored events first; otherwise the stream starts
// at the newest event. A reconnecting client's Last-Event-ID (or ?after=N)
// resumes after that event.
func (s *Server) streamEvents(c echo.Context) error {
	var cursor uint64
	history, err := boolQuery(c, "history")
	if err != nil {
		return err
	}
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
	deadline := newStreamDeadline(w, s.opts.StreamKeepAlive)
	defer deadline.clear()
	deadline.arm()
	w.WriteHeader(http.StatusOK)
	// An id-only event tells the client where this stream starts, so a
	// reconnect (to any node) resumes without gaps or repeats; the
	// greeting's keep-alive interval tells it how long a healthy stream
	// may be silent.
	fmt.Fprintf(w, ": connected to %s; keep-alive %s\nid: %d\n\n", s.cluster.NodeID(), s.opts.StreamKeepAlive, cursor)
	w.Flush()

	visible := s.eventVisibility(callerOf(c))
	ctx := c.Request().Context()
	keepAlive := time.NewTicker(s.opts.StreamKeepAlive)
	defer keepAlive.Stop()
	changes := s.cluster.FSM().Changes()
	for {
		changed := changes.Changed()
		var batch []*model.Event
		sent := false
		if err := s.view(func(tx *bbolt.Tx) (err error) {
			batch, err = store.EventsAfter(tx, cursor, 256)
			return err
		}); err != nil {
			return nil
		}
		for _, e := range batch {
			cursor = e.ID
			if !visible.visible(e) {
				continue
			}
			deadline.arm()
			data, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Kind, data); err != nil {
				return nil
			}
			sent = true
		}
		if sent {
			w.Flush()
		}
		if len(batch) == 256 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.shutdown:
			return nil
		case <-changed:
		case <-keepAlive.C:
			// The id moves the client's resume point past events it may
			// not see, so a reconnect does not scan them again.
			deadline.arm()
			if _, err := fmt.Fprintf(w, ": keep-alive\nid: %d\n\n", cursor); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}
