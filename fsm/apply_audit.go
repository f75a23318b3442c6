package fsm

import (
	"fmt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// AuditRecord carries audit entries (CmdAuditRecord): each becomes one
// cluster-wide event of kind model.EventAudit, in order.
type AuditRecord struct {
	Entries []AuditEntry `json:"entries"`
}

// AuditEntry is one audited API request. It names who asked and what, never
// a credential or a value: the token's id (not its secret), the route's
// template, the path parameters and the answer's status.
type AuditEntry struct {
	// At is when the leader answered (epoch ms).
	At int64 `json:"at"`
	// TokenID and Actor are the caller's token and its user; empty when
	// the request carried no valid token.
	TokenID string `json:"token_id,omitempty"`
	Actor   string `json:"actor,omitempty"`
	Method  string `json:"method"`
	// Route is the route's template, /api/namespaces/:ns/pipelines/:pipeline.
	Route     string `json:"route"`
	Namespace string `json:"namespace,omitempty"`
	// Resource is the route's other path parameters, "pipeline=p run=3".
	Resource  string `json:"resource,omitempty"`
	Status    int    `json:"status"`
	Outcome   string `json:"outcome"`
	RequestID string `json:"request_id,omitempty"`
	// Suppressed, on an entry of outcome "suppressed", counts refused
	// requests not recorded one by one (docs/auth.md, "Audit").
	Suppressed int64 `json:"suppressed,omitempty"`
}

// Bounds of an audit record: what the API sends stays well inside them.
const (
	MaxAuditEntries    = 512
	MaxAuditFieldBytes = 1024
)

// applyAuditRecord appends one audit event per entry. Everything it
// writes comes from the entries, so every replica writes the same bytes.
func applyAuditRecord(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[AuditRecord](body)
	if len(cmd.Entries) == 0 || len(cmd.Entries) > MaxAuditEntries {
		return nil, fmt.Errorf("%w: entries: %d, want 1 to %d", ErrInvalid, len(cmd.Entries), MaxAuditEntries)
	}
	for i, e := range cmd.Entries {
		for _, f := range [][2]string{{"token_id", e.TokenID}, {"actor", e.Actor}, {"method", e.Method}, {"route", e.Route},
			{"namespace", e.Namespace}, {"resource", e.Resource}, {"outcome", e.Outcome}, {"request_id", e.RequestID}} {
			if len(f[1]) > MaxAuditFieldBytes {
				return nil, fmt.Errorf("%w: entries[%d].%s: longer than %d bytes", ErrInvalid, i, f[0], MaxAuditFieldBytes)
			}
		}
		if e.Outcome == "" {
			return nil, fmt.Errorf("%w: entries[%d].outcome is required", ErrInvalid, i)
		}
	}
	for _, e := range cmd.Entries {
		details := model.EventDetails{"method": e.Method, "route": e.Route, "status": e.Status, "outcome": e.Outcome}
		for _, f := range [][2]string{{"token_id", e.TokenID}, {"namespace", e.Namespace}, {"resource", e.Resource}, {"request_id", e.RequestID}} {
			if f[1] != "" {
				details[f[0]] = f[1]
			}
		}
		if e.Suppressed > 0 {
			details["suppressed"] = e.Suppressed
		}
		actor := e.Actor
		if actor == "" {
			actor = "anonymous"
		}
		at := e.At
		if at == 0 {
			at = a.meta.Timestamp
		}
		if err := store.AppendEvent(a.tx, &model.Event{Kind: model.EventAudit, Details: details, Emitted: at, Actor: actor}); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
