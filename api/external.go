package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/agent/extcall"
)

// External events (docs/extensions.md, "External events"): webhooks for
// extensions arrive on a listener of their own, without authentication
// (the extension verifies them, as GitHub's extension checks the
// signature), and go to the extension's POST /api/external-event on the
// leader, where the extensions run. A follower passes them to the leader
// through the cluster-internal route below, over the API's own forwarding
// (cluster-secret authenticated).

// MaxExternalEventBody caps an external event's body: GitHub's webhook
// limit, and what the extension SDK takes.
const MaxExternalEventBody = 25 << 20

// headerEventHeaders carries the original request's headers (JSON, base64)
// on the internal route, so the leader passes on exactly what the sender
// sent, not what this hop added.
const headerEventHeaders = "X-Gofer-Event-Headers"

// internalEventPath is the route a follower passes events to the leader on.
const internalEventPath = "/api/cluster/external-events/"

// ExternalEventsHandler serves the external-events listener:
// POST /api/external/{extension} (upstream's path) and
// POST /external/{extension} (upstream's Go version's). 204 once the
// extension took the event; 404 for an extension not installed (before
// the body is read); 413 over MaxExternalEventBody; 503 when the
// extension or the leader is not there, or this node holds too many
// events (Retry-After); the extension's own 4xx when it refused the event
// (a bad signature); 502 when it failed.
func (s *Server) ExternalEventsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/external/{extension}", s.externalEvent)
	mux.HandleFunc("POST /external/{extension}", s.externalEvent)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, notFound("no such route: external events are POST /api/external/{extension}"))
	})
	// The API's body deadline: a slow sender cannot hold a connection.
	return s.guard(mux)
}

// Bounds of the external-events listener's connections: it faces
// whoever may send webhooks, without a token.
const (
	// DefaultExternalEventsMaxConnections is its connection cap when the
	// configuration sets none: webhooks come a few at a time.
	DefaultExternalEventsMaxConnections = 64
	// externalEventsMaxHeader caps an event's request headers (a
	// webhook's are a few KiB; the API allows api.max_header_bytes, 1 MiB
	// by default, for its own).
	externalEventsMaxHeader = 64 << 10
	// externalEventsIdle caps how long a connection may stay idle between
	// requests, below the API's api.idle_timeout: senders seldom reuse
	// them.
	externalEventsIdle = 30 * time.Second
)

// ExternalEventsServer makes the external-events listener's server over
// ln: ExternalEventsHandler behind the API's connection cap (connlimit.go)
// at maxConns (0: DefaultExternalEventsMaxConnections) — idle connections
// shed first, then a short overflow lane answered 503 — with header and
// idle timeouts. Serve the returned listener with the returned server.
func (s *Server) ExternalEventsServer(ln net.Listener, maxConns int) (*http.Server, net.Listener) {
	if maxConns <= 0 {
		maxConns = DefaultExternalEventsMaxConnections
	}
	l := newConnLimiter(ln, maxConns, s.logger.Named("external-events"))
	srv := s.httpServer(s.ExternalEventsHandler(), true)
	srv.ConnState, srv.ConnContext = l.connState, l.connContext
	return srv, l
}

// maxEventsInFlight caps the events a node holds at once; more get 503.
// On the leader, where each is read whole (up to 25 MiB) to go to the
// extension, it bounds the memory events take, whether they came to its
// own listener or from a follower's; a follower streams them on.
const maxEventsInFlight = 32

// ctxKeyEventSlot marks a request that already holds an event slot: a
// follower's event passed to the internal route that became the leader's
// own while it waited for one.
type ctxKeyEventSlot struct{}

// takeEventSlot takes one of the node's event slots unless the request
// holds one; release gives it back.
func (s *Server) takeEventSlot(r *http.Request) (release func(), err error) {
	if held, _ := r.Context().Value(ctxKeyEventSlot{}).(bool); held {
		return func() {}, nil
	}
	select {
	case s.eventSlots <- struct{}{}:
		return func() { <-s.eventSlots }, nil
	default:
		return nil, unavailable(1, "this node is already taking %d external events; retry", maxEventsInFlight)
	}
}

func (s *Server) externalEvent(w http.ResponseWriter, r *http.Request) {
	release, err := s.takeEventSlot(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer release()
	id := r.PathValue("extension")
	if validID("extension", id) != nil {
		writeError(w, r, notFound("extension %q is not installed", id))
		return
	}
	if r.ContentLength > MaxExternalEventBody {
		writeError(w, r, eventTooLarge())
		return
	}
	headers := eventHeaders(r)
	if !s.cluster.IsLeader() {
		// The leader decides whether the extension is installed: this
		// node's state may not have the install yet.
		s.passEventToLeader(w, r, id, headers)
		return
	}
	if !s.cluster.Ready() {
		writeError(w, r, unavailable(1, "the leader is still starting; retry shortly"))
		return
	}
	if err := s.eventExtensionInstalled(id); err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.eventCallable(id); err != nil {
		writeError(w, r, err)
		return
	}
	body, err := readEventBody(http.MaxBytesReader(w, r.Body, MaxExternalEventBody), r.ContentLength)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.deliverEvent(r, id, extcall.Event{Headers: headers, Body: body}); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readEventBody reads an event's body, sized up front when its length is
// known (io.ReadAll would grow its buffer to up to twice the body). A body
// over the limit (r is a MaxBytesReader) is the 413 of eventTooLarge.
func readEventBody(r io.Reader, length int64) ([]byte, error) {
	var buf bytes.Buffer
	if length > 0 && length <= MaxExternalEventBody {
		buf.Grow(int(length) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(r); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, eventTooLarge()
		}
		return nil, badRequest("reading the event body failed: %v", err)
	}
	return buf.Bytes(), nil
}

func eventTooLarge() error {
	return tooLarge("the event body is over the limit of %d bytes (25 MiB)", MaxExternalEventBody)
}

// eventHeaders is the request's headers as upstream's server passes them:
// lower-case names (host included), a repeated header's values joined
// with ", ".
func eventHeaders(r *http.Request) map[string]string {
	out := make(map[string]string, len(r.Header)+1)
	for k, v := range r.Header {
		out[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	if r.Host != "" {
		out["host"] = r.Host
	}
	return out
}

// eventExtensionInstalled answers 404 for an extension this node's state
// does not have: checked before an event's body is read or passed on.
func (s *Server) eventExtensionInstalled(id string) error {
	_, err := s.installedExtension(id)
	return err
}

// eventCallable answers 503 on a leader that runs no extensions: checked
// before the body is read.
func (s *Server) eventCallable(id string) error {
	if s.opts.ExtensionCalls == nil {
		return unavailable(5, "extension %q is not running: this cluster runs no extensions", id)
	}
	return nil
}

// deliverEvent passes an event to extension id; it runs on the leader,
// after eventExtensionInstalled and eventCallable.
func (s *Server) deliverEvent(r *http.Request, id string, ev extcall.Event) error {
	if err := s.opts.ExtensionCalls.ExternalEvent(r.Context(), id, ev); err != nil {
		return s.extensionCallError(id, err, callEvent)
	}
	return nil
}

// passEventToLeader streams the event through this node's own API chain
// to the internal route: its forwarding waits for a leader (the hold) and
// proxies there, the body read as it is sent (the route's body limit
// applies on both nodes), and the leader checks the cluster secret.
func (s *Server) passEventToLeader(w http.ResponseWriter, r *http.Request, id string, headers map[string]string) {
	secret := s.cluster.ClusterSecret()
	if secret == "" {
		writeError(w, r, unavailable(5, "node %s is not the leader and has no cluster.secret to pass the event to the leader with; "+
			"send external events to the leader, or set cluster.secret on every node", s.cluster.NodeID()))
		return
	}
	h, _ := json.Marshal(headers) // a string map: cannot fail
	// The slot this request holds covers the internal route too, should
	// this node become the leader and serve it itself.
	ctx := context.WithValue(r.Context(), ctxKeyEventSlot{}, true)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, internalEventPath+id, r.Body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	req.ContentLength = r.ContentLength
	req.Header.Set(HeaderAPIVersion, APIVersion)
	req.Header.Set(HeaderClusterSecret, secret)
	req.Header.Set(headerEventHeaders, base64.StdEncoding.EncodeToString(h))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.RemoteAddr = r.RemoteAddr
	s.echo.ServeHTTP(w, req)
}

// receiveEvent is the internal route's handler, on the leader: an event
// a follower's external-events listener took. The extension is checked
// before the body is read, and the body is read only within one of the
// node's event slots, so followers cannot make the leader hold more
// events than its own listener would.
func (s *Server) receiveEvent(c echo.Context) error {
	id, err := extensionParam(c)
	if err != nil {
		return err
	}
	if err := s.eventExtensionInstalled(id); err != nil {
		return err
	}
	if err := s.eventCallable(id); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(c.Request().Header.Get(headerEventHeaders))
	if err != nil {
		return badRequest("%s: %v", headerEventHeaders, err)
	}
	headers := map[string]string{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &headers); err != nil {
			return badRequest("%s: %v", headerEventHeaders, err)
		}
	}
	release, err := s.takeEventSlot(c.Request())
	if err != nil {
		return err
	}
	defer release()
	body, err := readEventBody(c.Request().Body, c.Request().ContentLength) // bounded by the route's body limit
	if err != nil {
		return err
	}
	if err := s.deliverEvent(c.Request(), id, extcall.Event{Headers: headers, Body: body}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// writeError answers err as the API does ({request_id, code, message})
// outside echo.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	if ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.status)
	b, _ := json.Marshal(ErrorBody{RequestID: r.Header.Get(HeaderRequestID), Code: ae.code, Message: ae.message})
	_, _ = fmt.Fprintf(w, "%s\n", b)
}
