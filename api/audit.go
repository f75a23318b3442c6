package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"
	"golang.org/x/time/rate"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
)

// Audit (docs/auth.md, "Audit"). Every request to a route that changes
// something (any method but GET and HEAD) is recorded, once answered, as
// an event of kind audit: the caller's token id and user, the route's
// template, the namespace, the other path parameters, the status and its
// outcome (ok, refused: a 4xx, failed: a 5xx) and the request id. Never a
// header, a query or a body, so never a secret or a token value.
//
// The leader records them: a request a follower forwards is recorded by the
// leader, which answered it. Entries are batched (one CmdAuditRecord per
// auditFlushEvery or auditBatch entries), so auditing costs a write per
// batch rather than per request. A flood cannot fill the log: requests
// without a valid token that are refused are recorded at auditAnonRate per
// second per node (bursts of auditAnonBurst), the rest counted in a
// "suppressed" entry; so are entries that find the queue full. A follower
// writes nothing itself: the answers it gives itself (no valid token
// before forwarding, its own rate limit) are passed to the leader, as is
// the queue of a leader that stepped down (audit_relay.go).

const (
	auditQueue      = 4096
	auditBatch      = 256
	auditFlushEvery = 200 * time.Millisecond
	auditAnonRate   = 10
	auditAnonBurst  = 100
)

// Outcomes of an audit entry.
const (
	AuditOK         = "ok"
	AuditRefused    = "refused"
	AuditFailed     = "failed"
	AuditSuppressed = "suppressed"
)

// auditMode is how a route's answers are audited.
type auditMode int

const (
	// auditEvery records every answer (refusals from callers without a
	// valid token, and 429s, through the sampler).
	auditEvery auditMode = iota
	// auditSampled passes every answer through the sampler: a relayed
	// external event, anonymous in origin (a webhook), which a flood of
	// webhooks must not turn into a flood of entries.
	auditSampled
	// auditRelay is the audit relay's (audit_relay.go): a batch taken
	// (204) is recorded by the entries it carries, and a node's own relay
	// is never recorded where it starts (a relay failing for want of a
	// leader would otherwise queue an entry to relay, and so on); any
	// other answer (a wrong secret, a bad batch) is recorded.
	auditRelay
)

// ctxForwarded marks a request this node passed to the leader.
const ctxForwarded = "gofer.forwarded"

type auditor struct {
	s     *Server
	queue chan fsm.AuditEntry
	anon  *rate.Limiter
	// suppressed counts entries not queued (sampled out or queue full).
	suppressed atomic.Int64
	// droppedTotal counts entries neither recorded nor passed to the
	// leader (audit_relay.go).
	droppedTotal atomic.Int64
}

func newAuditor(s *Server) *auditor {
	return &auditor{s: s, queue: make(chan fsm.AuditEntry, auditQueue), anon: rate.NewLimiter(auditAnonRate, auditAnonBurst)}
}

// auditMiddleware records a mutating route's request once answered.
// public routes authenticate no one, so the caller's token, if it sent a
// valid one, is looked up for the record.
func (s *Server) auditMiddleware(public bool, mode auditMode) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			if forwarded, _ := c.Get(ctxForwarded).(bool); forwarded {
				return err
			}
			if public && c.Get(ctxIdentity) == nil {
				if id := s.presentedToken(c); id != nil {
					c.Set(ctxIdentity, id)
				}
			}
			s.audit.observe(c, err, mode)
			return err
		}
	}
}

// presentedToken is the valid token a request to a public route carries,
// nil without one: a local lookup, never a wait.
func (s *Server) presentedToken(c echo.Context) *identity {
	if s.opts.Dev {
		return &identity{User: "dev", Dev: true}
	}
	secret, err := bearerSecret(c.Request().Header.Get(echo.HeaderAuthorization))
	if err != nil || !plausibleSecret(secret) {
		return nil
	}
	var id *identity
	_ = s.cluster.FSM().View(func(tx *bbolt.Tx) error {
		tok, err := store.GetTokenByHash(tx, hashSecret(secret))
		if err == nil && tok != nil && !tok.Disabled && !tok.Expired(s.opts.Now().UnixMilli()) {
			id = &identity{TokenID: tok.ID, User: tok.User}
		}
		return nil
	})
	return id
}

// observe queues the entry of an answered request.
func (a *auditor) observe(c echo.Context, err error, mode auditMode) {
	status := c.Response().Status
	if err != nil {
		status = classify(err).status
	} else if !c.Response().Committed || status == 0 {
		status = http.StatusOK
	}
	if mode == auditRelay {
		if own, _ := c.Request().Context().Value(ctxKeyOwnRelay{}).(bool); own || status == http.StatusNoContent {
			return
		}
	}
	id := callerOf(c)
	e := fsm.AuditEntry{
		At:        a.s.opts.Now().UnixMilli(),
		TokenID:   id.TokenID,
		Actor:     id.actor(),
		Method:    c.Request().Method,
		Route:     c.Path(),
		Namespace: c.Param("ns"),
		Resource:  auditResource(c),
		Status:    status,
		Outcome:   auditOutcome(status),
		RequestID: requestID(c),
	}
	// Path parameters are the caller's text, of any length: clipped, so
	// one request cannot make the applier refuse its whole batch.
	for _, f := range []*string{&e.Namespace, &e.Resource, &e.Route, &e.RequestID} {
		*f = clipAuditField(*f)
	}
	sampled := mode == auditSampled ||
		e.Outcome == AuditRefused && (status == http.StatusTooManyRequests || (e.TokenID == "" && !id.Dev && !id.ClusterSecret))
	if sampled && !a.anon.Allow() {
		a.suppressed.Add(1)
		return
	}
	select {
	case a.queue <- e:
	default:
		a.suppressed.Add(1)
	}
}

// clipAuditField cuts s to fsm.MaxAuditFieldBytes on a character
// boundary, marking the cut with "…".
func clipAuditField(s string) string {
	if len(s) <= fsm.MaxAuditFieldBytes {
		return s
	}
	cut := fsm.MaxAuditFieldBytes - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func auditOutcome(status int) string {
	switch {
	case status < 400:
		return AuditOK
	case status < 500:
		return AuditRefused
	}
	return AuditFailed
}

// auditResource is the route's path parameters other than the namespace,
// "pipeline=p run=3", in the route's order.
func auditResource(c echo.Context) string {
	var parts []string
	values := c.ParamValues()
	for i, name := range c.ParamNames() {
		if name == "ns" || i >= len(values) {
			continue
		}
		parts = append(parts, name+"="+values[i])
	}
	return strings.Join(parts, " ")
}

// run batches queued entries into audit records until the server shuts
// down.
func (a *auditor) run() {
	tick := time.NewTicker(auditFlushEvery)
	defer tick.Stop()
	var batch []fsm.AuditEntry
	for {
		select {
		case <-a.s.shutdown:
			a.flush(batch, 2*time.Second)
			return
		case e := <-a.queue:
			batch = append(batch, e)
			if len(batch) < auditBatch {
				continue
			}
		case <-tick.C:
		}
		batch = a.flush(batch, applyTimeout)
	}
}

// flush records batch (and the suppressed count) on the leader; it returns
// the emptied batch.
func (a *auditor) flush(batch []fsm.AuditEntry, timeout time.Duration) []fsm.AuditEntry {
	if n := a.suppressed.Swap(0); n > 0 {
		batch = append(batch, fsm.AuditEntry{At: a.s.opts.Now().UnixMilli(), Method: "*", Route: "*", Outcome: AuditSuppressed, Suppressed: n})
	}
	if len(batch) == 0 {
		return batch
	}
	if !a.s.cluster.IsLeader() {
		// A follower's own answers, or a leader's queue after it stepped
		// down: the leader records them.
		a.relay(batch, timeout)
		return batch[:0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, _, err := a.s.cluster.Apply(ctx, fsm.CmdAuditRecord, fsm.Meta{Timestamp: a.s.opts.Now().UnixMilli(), Actor: "system"},
		fsm.AuditRecord{Entries: batch})
	switch {
	case errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader):
		// Leadership went while the batch waited: not applied, so the
		// new leader records it.
		a.relay(batch, timeout)
	case err == nil && res != nil && res.Err != nil:
		a.dropped(auditDropApplyFail, batch)
		a.s.logger.Warn("audit entries not recorded", "entries", len(batch), "error", res.Err)
	case err != nil:
		a.dropped(auditDropApplyFail, batch)
		a.s.logger.Warn("audit entries not recorded", "entries", len(batch), "error", err)
	}
	return batch[:0]
}
