package extension

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Subscription is one pipeline's subscription to the extension. Gofer sends
// it on POST /api/subscribe (and, without Params, on DELETE
// /api/subscribe); at boot the SDK rebuilds it from what Gofer stored.
type Subscription struct {
	NamespaceID string
	PipelineID  string
	// ID is the pipeline's name for this subscription; it is unique within
	// the pipeline only, so key state by all three ids.
	ID string
	// Params are the pipeline's subscription settings, already
	// interpolated by Gofer (secrets resolved). Nil on Unsubscribe.
	Params map[string]string
}

// Event is an external event (a webhook) Gofer received for this extension
// and passes on verbatim.
type Event struct {
	// Headers of the original request, as Gofer saw them.
	Headers map[string]string
	// Body is the original request body.
	Body []byte
}

// Param documents one setting: an install setting (Documentation.ConfigParams)
// or a pipeline subscription parameter.
type Param struct {
	Key           string `json:"key"`
	Required      bool   `json:"required"`
	Documentation string `json:"documentation"`
}

// Documentation is what GET /api/info reports about the extension; Gofer
// shows it to users and checks required params against it.
type Documentation struct {
	ConfigParams               []Param `json:"config_params"`
	PipelineSubscriptionParams []Param `json:"pipeline_subscription_params"`
	// Body is free text (markdown) about the extension.
	Body string `json:"body"`
}

// Error lets a handler choose the status of its error reply. Any other
// error from Subscribe, Unsubscribe or ExternalEvent is a refusal: 400
// with the error's text as the message.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given status.
func Errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// statusOf is the HTTP status an extension's error is answered with.
func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Status >= 400 && e.Status <= 599 {
		return e.Status
	}
	return http.StatusBadRequest
}

// The wire shapes of the contract (upstream's field names).

type infoResponse struct {
	ExtensionID   string        `json:"extension_id"`
	Documentation Documentation `json:"documentation"`
}

type debugResponse struct {
	Info string `json:"info"`
}

type subscribeRequest struct {
	NamespaceID            string            `json:"namespace_id"`
	PipelineID             string            `json:"pipeline_id"`
	PipelineSubscriptionID string            `json:"pipeline_subscription_id"`
	Params                 map[string]string `json:"pipeline_subscription_params"`
}

type externalEventRequest struct {
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// errorResponse is the error reply, in the shape of upstream's (dropshot)
// errors.
type errorResponse struct {
	RequestID string `json:"request_id"`
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
}

// ErrEventBodyTooLarge is returned when an external event's decoded body is
// over its limit.
var ErrEventBodyTooLarge = errors.New("external event body too large")

// decodeEventBody decodes an external event's body bytes, at most limit of
// them. Upstream's server sends them as a JSON array of numbers (a Rust
// Vec<u8>); Go's encoding/json sends []byte as a base64 string. Both are
// accepted, and a missing body or null is an empty one.
func decodeEventBody(data json.RawMessage, limit int) ([]byte, error) {
	i := skipSpace(data, 0)
	if i == len(data) {
		return nil, nil
	}
	switch data[i] {
	case 'n':
		if string(data[i:]) != "null" {
			break
		}
		return nil, nil
	case '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		if base64.StdEncoding.DecodedLen(len(s)) > limit+3 {
			return nil, fmt.Errorf("body: %w", ErrEventBodyTooLarge)
		}
		out, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("body: not base64: %w", err)
		}
		if len(out) > limit {
			return nil, fmt.Errorf("body: %w", ErrEventBodyTooLarge)
		}
		return out, nil
	case '[':
		out, err := parseByteArray(data[i:], limit)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		return out, nil
	}
	return nil, errors.New("body: must be an array of byte values (0-255) or a base64 string")
}

// parseByteArray parses a JSON array of integers 0..255. It is written out
// by hand because a webhook can be megabytes, and decoding that element by
// element through reflection is slow.
func parseByteArray(data []byte, limit int) ([]byte, error) {
	out := make([]byte, 0, len(data)/3)
	i := skipSpace(data, 1)
	if i < len(data) && data[i] == ']' {
		return out, nil
	}
	for {
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			return nil, fmt.Errorf("element %d: not a byte value (0-255)", len(out))
		}
		v, digits := 0, 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			v = v*10 + int(data[i]-'0')
			digits++
			i++
			if v > 255 || digits > 3 {
				return nil, fmt.Errorf("element %d: not a byte value (0-255)", len(out))
			}
		}
		if len(out) == limit {
			return nil, ErrEventBodyTooLarge
		}
		out = append(out, byte(v))
		i = skipSpace(data, i)
		if i >= len(data) {
			return nil, errors.New("unterminated array")
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return out, nil
		default:
			return nil, fmt.Errorf("element %d: not a byte value (0-255)", len(out))
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}
