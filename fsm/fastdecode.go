package fsm

import "github.com/goferhq/gofer/internal/fastjson"

// fastDecoder is a command body that can decode the canonical JSON the
// leader's json.Marshal wrote without reflection (internal/fastjson). It
// reports false for anything else, and decodeBody then uses json.Unmarshal,
// so every body decodes to what json.Unmarshal gives. Only the commands of
// the hot API write path have one.
type fastDecoder interface {
	decodeFast(body []byte) bool
}

// decodeFast decodes json.Marshal's form of a NamespaceUpdate: the body of
// every namespace PATCH.
func (c *NamespaceUpdate) decodeFast(body []byte) bool {
	var out NamespaceUpdate
	d := fastjson.NewDecoder(body)
	ok := d.Fields(func(key string) bool {
		switch key {
		case "id":
			s, ok := d.String()
			out.ID = s
			return ok
		case "name":
			s, ok := d.String()
			out.Name = &s
			return ok
		case "description":
			s, ok := d.String()
			out.Description = &s
			return ok
		}
		return false
	})
	if !ok || !d.End() {
		return false
	}
	*c = out
	return true
}

// decodeFast decodes json.Marshal's form of an AuditRecord: the leader
// appends one batch of audit entries after API writes.
func (c *AuditRecord) decodeFast(body []byte) bool {
	var out AuditRecord
	d := fastjson.NewDecoder(body)
	seen := false
	ok := d.Fields(func(key string) bool {
		// A repeated "entries" would make json.Unmarshal merge into the
		// elements the first one decoded: left to it.
		if key != "entries" || seen {
			return false
		}
		seen = true
		if !d.Byte('[') {
			return false
		}
		out.Entries = []AuditEntry{} // json.Unmarshal gives "[]" a non-nil empty slice
		if d.Peek() == ']' {
			return d.Byte(']')
		}
		for {
			var e AuditEntry
			if !d.Fields(func(key string) bool { return e.decodeField(d, key) }) {
				return false
			}
			out.Entries = append(out.Entries, e)
			switch d.Peek() {
			case ',':
				d.Byte(',')
			case ']':
				return d.Byte(']')
			default:
				return false
			}
		}
	})
	if !ok || !d.End() {
		return false
	}
	*c = out
	return true
}

// decodeField reads the value of one AuditEntry field; false for a key
// it does not know (the whole body then goes to json.Unmarshal).
func (e *AuditEntry) decodeField(d *fastjson.Decoder, key string) bool {
	var ok bool
	switch key {
	case "at":
		e.At, ok = d.Int()
	case "token_id":
		e.TokenID, ok = d.String()
	case "actor":
		e.Actor, ok = d.String()
	case "method":
		e.Method, ok = d.String()
	case "route":
		e.Route, ok = d.String()
	case "namespace":
		e.Namespace, ok = d.String()
	case "resource":
		e.Resource, ok = d.String()
	case "status":
		var n int64
		n, ok = d.Int()
		e.Status = int(n)
		ok = ok && int64(e.Status) == n // int is 32 bits on some platforms
	case "outcome":
		e.Outcome, ok = d.String()
	case "request_id":
		e.RequestID, ok = d.String()
	case "suppressed":
		e.Suppressed, ok = d.Int()
	}
	return ok
}
