package fsm

import "github.com/goferhq/gofer/internal/fastjson"

// fastEncoder is a command body that writes its own JSON: exactly the
// bytes json.Marshal writes for it (internal/fastjson), so the log holds
// the same entries either way. Only the commands of the hot API write path
// have one (encodeAt uses it); their decoders are in fastdecode.go.
type fastEncoder interface {
	appendJSON(dst []byte) []byte
}

// appendJSON is json.Marshal(c): the body of every namespace PATCH.
func (c NamespaceUpdate) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = fastjson.AppendString(dst, c.ID)
	if c.Name != nil {
		dst = append(dst, `,"name":`...)
		dst = fastjson.AppendString(dst, *c.Name)
	}
	if c.Description != nil {
		dst = append(dst, `,"description":`...)
		dst = fastjson.AppendString(dst, *c.Description)
	}
	return append(dst, '}')
}

// appendJSON is json.Marshal(c): the leader's batch of audit entries.
func (c AuditRecord) appendJSON(dst []byte) []byte {
	if c.Entries == nil {
		return append(dst, `{"entries":null}`...)
	}
	dst = append(dst, `{"entries":[`...)
	for i := range c.Entries {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = c.Entries[i].appendJSON(dst)
	}
	return append(dst, "]}"...)
}

// appendJSON is json.Marshal(e), omitempty fields left out when empty.
func (e *AuditEntry) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"at":`...)
	dst = fastjson.AppendInt(dst, e.At)
	if e.TokenID != "" {
		dst = append(dst, `,"token_id":`...)
		dst = fastjson.AppendString(dst, e.TokenID)
	}
	if e.Actor != "" {
		dst = append(dst, `,"actor":`...)
		dst = fastjson.AppendString(dst, e.Actor)
	}
	dst = append(dst, `,"method":`...)
	dst = fastjson.AppendString(dst, e.Method)
	dst = append(dst, `,"route":`...)
	dst = fastjson.AppendString(dst, e.Route)
	if e.Namespace != "" {
		dst = append(dst, `,"namespace":`...)
		dst = fastjson.AppendString(dst, e.Namespace)
	}
	if e.Resource != "" {
		dst = append(dst, `,"resource":`...)
		dst = fastjson.AppendString(dst, e.Resource)
	}
	dst = append(dst, `,"status":`...)
	dst = fastjson.AppendInt(dst, int64(e.Status))
	dst = append(dst, `,"outcome":`...)
	dst = fastjson.AppendString(dst, e.Outcome)
	if e.RequestID != "" {
		dst = append(dst, `,"request_id":`...)
		dst = fastjson.AppendString(dst, e.RequestID)
	}
	if e.Suppressed != 0 {
		dst = append(dst, `,"suppressed":`...)
		dst = fastjson.AppendInt(dst, e.Suppressed)
	}
	return append(dst, '}')
}
