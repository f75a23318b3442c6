package store

import (
	"encoding/json"
	"strconv"

	"github.com/goferhq/gofer/internal/fastjson"
	"github.com/goferhq/gofer/store/model"
)

// The records every API write rewrites (a namespace, an event) are
// encoded and decoded by hand: encoding/json's reflection was most of the
// state machine's CPU per write. The bytes are json.Marshal's, exactly
// (records are compared byte for byte across replicas), and anything the
// hand decoder does not recognise goes to json.Unmarshal (internal/fastjson).

// marshalNamespace is json.Marshal(ns).
func marshalNamespace(ns *model.Namespace) []byte {
	return AppendNamespace(make([]byte, 0, 80+len(ns.ID)+len(ns.Name)+len(ns.Description)), ns, true)
}

// AppendNamespace appends ns as json.Marshal writes it (escapeHTML) or as
// a json.Encoder with SetEscapeHTML(false) does (the API's answers).
func AppendNamespace(b []byte, ns *model.Namespace, escapeHTML bool) []byte {
	str := fastjson.AppendString
	if !escapeHTML {
		str = fastjson.AppendStringNoHTMLEscape
	}
	b = append(b, `{"id":`...)
	b = str(b, ns.ID)
	b = append(b, `,"name":`...)
	b = str(b, ns.Name)
	b = append(b, `,"description":`...)
	b = str(b, ns.Description)
	b = append(b, `,"created":`...)
	b = fastjson.AppendInt(b, ns.Created)
	b = append(b, `,"modified":`...)
	b = fastjson.AppendInt(b, ns.Modified)
	return append(b, '}')
}

// unmarshalNamespace is json.Unmarshal(raw, ns) for a fresh ns.
func unmarshalNamespace(raw []byte, ns *model.Namespace) error {
	var fast model.Namespace
	d := fastjson.NewDecoder(raw)
	ok := d.Fields(func(key string) bool {
		var ok bool
		switch key {
		case "id":
			fast.ID, ok = d.String()
		case "name":
			fast.Name, ok = d.String()
		case "description":
			fast.Description, ok = d.String()
		case "created":
			fast.Created, ok = d.Int()
		case "modified":
			fast.Modified, ok = d.Int()
		}
		return ok
	})
	if ok && d.End() {
		*ns = fast
		return nil
	}
	return json.Unmarshal(raw, ns)
}

// marshalEvent is json.Marshal(e), by hand when every detail is a string,
// an integer or a bool (what appliers put); otherwise json.Marshal.
func marshalEvent(e *model.Event) ([]byte, error) {
	var keys [16]string
	sorted := keys[:0]
	size := 96 + len(e.Kind) + len(e.Actor) + len(e.NamespaceID) + len(e.PipelineID)
	for k, v := range e.Details {
		switch v := v.(type) {
		case string:
			size += len(v) + len(k) + 8
		case int, int64, uint64, bool:
			size += len(k) + 28
		default:
			// Other types (and any MarshalJSON they have) stay
			// json.Marshal's; so would a MarshalJSON on EventDetails.
			return json.Marshal(e)
		}
		sorted = append(sorted, k)
	}
	// encoding/json writes map keys sorted by their bytes.
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, e.ID, 10)
	b = append(b, `,"kind":`...)
	b = fastjson.AppendString(b, e.Kind)
	b = append(b, `,"details":`...)
	if e.Details == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		for i, k := range sorted {
			if i > 0 {
				b = append(b, ',')
			}
			b = fastjson.AppendKey(b, k)
			switch v := e.Details[k].(type) {
			case string:
				b = fastjson.AppendString(b, v)
			case int:
				b = fastjson.AppendInt(b, int64(v))
			case int64:
				b = fastjson.AppendInt(b, v)
			case uint64:
				b = strconv.AppendUint(b, v, 10)
			case bool:
				if v {
					b = append(b, "true"...)
				} else {
					b = append(b, "false"...)
				}
			}
		}
		b = append(b, '}')
	}
	b = append(b, `,"emitted":`...)
	b = fastjson.AppendInt(b, e.Emitted)
	b = append(b, `,"actor":`...)
	b = fastjson.AppendString(b, e.Actor)
	if e.NamespaceID != "" {
		b = append(b, `,"namespace_id":`...)
		b = fastjson.AppendString(b, e.NamespaceID)
	}
	if e.PipelineID != "" {
		b = append(b, `,"pipeline_id":`...)
		b = fastjson.AppendString(b, e.PipelineID)
	}
	return append(b, '}'), nil
}
