package extcall

import (
	"io"
	"strconv"
)

// newEventBody streams POST /api/external-event's body,
// {"headers": headers, "body": [n, n, …]}, with the bytes written as JSON
// numbers (upstream's serde Vec<u8>) without building the up to four times
// larger text in memory. The length is exact, so the request carries a
// Content-Length.
func newEventBody(headers []byte, body []byte) (io.Reader, int64) {
	prefix := append(append([]byte(`{"headers":`), headers...), `,"body":[`...)
	const suffix = `]}`
	n := int64(len(prefix) + len(suffix))
	for i, b := range body {
		n += int64(digits(b))
		if i > 0 {
			n++ // the comma
		}
	}
	return &eventBody{prefix: prefix, body: body, suffix: []byte(suffix)}, n
}

func digits(b byte) int {
	switch {
	case b >= 100:
		return 3
	case b >= 10:
		return 2
	}
	return 1
}

type eventBody struct {
	prefix, body, suffix []byte
	next                 int // index of the next body byte
	pending              []byte
}

func (e *eventBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(e.pending) == 0 {
			switch {
			case e.prefix != nil:
				e.pending, e.prefix = e.prefix, nil
			case e.next < len(e.body):
				// A chunk of numbers at a time.
				buf := make([]byte, 0, 4096)
				for e.next < len(e.body) && len(buf) < 4096-4 {
					if e.next > 0 {
						buf = append(buf, ',')
					}
					buf = strconv.AppendUint(buf, uint64(e.body[e.next]), 10)
					e.next++
				}
				e.pending = buf
			case e.suffix != nil:
				e.pending, e.suffix = e.suffix, nil
			default:
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
		}
		c := copy(p[n:], e.pending)
		n += c
		e.pending = e.pending[c:]
	}
	return n, nil
}
