package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/fsm"
)

// Audit entries a node queued but cannot record itself go to the leader
// (docs/auth.md, "Audit"): a follower's own answers (a refusal before
// forwarding, its own 429s, a 503 while no leader is known) and the
// entries still queued on a leader that stepped down. The auditor's batch
// goes, as it would have gone to raft, to the internal route below, over
// the API's own forwarding and with the cluster secret; the leader puts
// the entries in its own queue, so they are recorded in its next batch.
//
// Nothing on the request path waits for this: requests only queue entries
// (a full queue counts them as suppressed), and only the auditor goroutine
// sends. A batch the leader does not take (none known within the
// forwarding hold, no cluster.secret, an error) is dropped and counted in
// gofer_audit_entries_dropped_total.

// auditRelayPath is the internal route a node passes audit entries to the
// leader on.
const auditRelayPath = "/api/cluster/audit"

// auditRelayTimeout bounds one relay: the forwarding hold for a leader to
// be known, then the leader's answer (it only queues the entries).
const auditRelayTimeout = defaultForwardHold + 5*time.Second

// auditRelayChunk is how many entries one relay request carries, and
// maxAuditRelayBody the internal route's body limit: an entry holds at
// most four clipped fields of fsm.MaxAuditFieldBytes, which JSON may
// escape to six times as many bytes, and a few short ones.
const (
	auditRelayChunk   = 16
	maxAuditRelayBody = 512 << 10
)

// auditRelayBody is the internal route's body.
type auditRelayBody struct {
	Entries []fsm.AuditEntry `json:"entries"`
}

// Reasons an entry is dropped (gofer_audit_entries_dropped_total).
const (
	auditDropNoSecret  = "no_cluster_secret"
	auditDropNoLeader  = "leader_unreachable"
	auditDropRefused   = "leader_refused"
	auditDropApplyFail = "apply_failed"
)

// relay passes batch to the leader; entries it does not take are counted
// as dropped.
func (a *auditor) relay(batch []fsm.AuditEntry, timeout time.Duration) {
	if len(batch) == 0 {
		return
	}
	for len(batch) > 0 {
		chunk := batch[:min(len(batch), auditRelayChunk)]
		batch = batch[len(chunk):]
		if err := a.sendToLeader(chunk, min(timeout, auditRelayTimeout)); err != nil {
			reason := auditDropNoLeader
			if re := (*relayError)(nil); errors.As(err, &re) {
				reason = re.reason
			}
			a.dropped(reason, chunk)
			a.dropped(reason, batch) // a leader that failed one chunk is not asked again now
			a.s.logger.Warn("audit entries not passed to the leader", "entries", len(chunk)+len(batch), "reason", reason, "error", err)
			return
		}
	}
}

// relayError is a relay the leader answered but did not take.
type relayError struct {
	reason string
	err    error
}

func (e *relayError) Error() string { return e.err.Error() }

// sendToLeader runs the internal request through this node's own chain:
// its forwarding waits for a leader (the hold) and proxies there; should
// this node have become the leader meanwhile, the handler runs here.
func (a *auditor) sendToLeader(batch []fsm.AuditEntry, timeout time.Duration) error {
	secret := a.s.cluster.ClusterSecret()
	if secret == "" {
		return &relayError{reason: auditDropNoSecret, err: errors.New("this node has no cluster.secret to pass audit entries to the leader with")}
	}
	body, err := json.Marshal(auditRelayBody{Entries: batch})
	if err != nil {
		return &relayError{reason: auditDropRefused, err: err}
	}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKeyOwnRelay{}, true), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, auditRelayPath, bytes.NewReader(body))
	if err != nil {
		return &relayError{reason: auditDropRefused, err: err}
	}
	req.Header.Set(HeaderAPIVersion, APIVersion)
	req.Header.Set(HeaderClusterSecret, secret)
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	req.RemoteAddr = "127.0.0.1:0"
	w := &relayResponse{header: http.Header{}}
	a.s.echo.ServeHTTP(w, req)
	switch {
	case w.status == 0 || w.status == http.StatusNoContent:
		return nil
	case w.status >= 500:
		return fmt.Errorf("the leader answered %d: %s", w.status, w.body.String())
	default:
		return &relayError{reason: auditDropRefused, err: fmt.Errorf("the leader answered %d: %s", w.status, w.body.String())}
	}
}

// ctxKeyOwnRelay marks this node's own relay request (never audited where
// it starts).
type ctxKeyOwnRelay struct{}

// relayResponse takes the internal route's answer (a status, a short
// error body).
type relayResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *relayResponse) Header() http.Header { return w.header }
func (w *relayResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

// Flush does nothing (the answer is read when ServeHTTP returns), but it
// must exist: a relay the node forwards goes through the reverse proxy,
// whose flush timer calls Flush on the writer, and echo panics — in a
// timer goroutine, taking the node down — on one that cannot flush.
func (w *relayResponse) Flush() {}

func (w *relayResponse) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if room := 1024 - w.body.Len(); room > 0 {
		w.body.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// dropped counts entries not recorded (a "suppressed" entry counts the
// requests it stands for).
func (a *auditor) dropped(reason string, batch []fsm.AuditEntry) {
	var n int64
	for _, e := range batch {
		if e.Outcome == AuditSuppressed {
			n += e.Suppressed
		} else {
			n++
		}
	}
	a.droppedTotal.Add(n)
	a.s.opts.Metrics.ObserveAuditDropped(reason, n)
}

// receiveAudit is the internal route's handler, on the leader: entries a
// follower (or a leader that stepped down) could not record. They join
// this node's queue, checked and clipped as its own are; entries that do
// not fit are counted as suppressed, never waited for.
func (s *Server) receiveAudit(c echo.Context) error {
	// Only members write into another node's audit log: an admin token
	// may call cluster routes, but an entry it wrote would read as a
	// request someone else made.
	if id := callerOf(c); id == nil || !(id.ClusterSecret || id.Dev) {
		return forbidden("only cluster members pass audit entries on (with the cluster secret); a token cannot")
	}
	var body auditRelayBody
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if len(body.Entries) == 0 || len(body.Entries) > auditRelayChunk {
		return badRequest("entries: %d, want 1 to %d", len(body.Entries), auditRelayChunk)
	}
	for i, e := range body.Entries {
		switch e.Outcome {
		case AuditOK, AuditRefused, AuditFailed:
		case AuditSuppressed:
			if e.Suppressed < 0 {
				return badRequest("entries[%d].suppressed: %d, want at least 0", i, e.Suppressed)
			}
		default:
			return badRequest("entries[%d].outcome: %q, want ok, refused, failed or suppressed", i, e.Outcome)
		}
	}
	for _, e := range body.Entries {
		s.audit.enqueueRelayed(e)
	}
	return c.NoContent(http.StatusNoContent)
}

// enqueueRelayed queues an entry another node passed on: a suppressed
// count joins this node's, anything else its queue.
func (a *auditor) enqueueRelayed(e fsm.AuditEntry) {
	if e.Outcome == AuditSuppressed {
		a.suppressed.Add(e.Suppressed)
		return
	}
	for _, f := range []*string{&e.TokenID, &e.Actor, &e.Method, &e.Namespace, &e.Resource, &e.Route, &e.RequestID} {
		*f = clipAuditField(*f)
	}
	e.Suppressed = 0
	select {
	case a.queue <- e:
	default:
		a.suppressed.Add(1)
	}
}
