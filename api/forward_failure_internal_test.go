package api

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// A forward that failed after the leader took the request must not read
// as "nothing happened": the client would report a write that may have
// been applied as not applied.
func TestForwardFailureSaysWhenTheOutcomeIsUnknown(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	cases := []struct {
		method  string
		err     error
		unknown bool
	}{
		{http.MethodPost, refused, false},
		{http.MethodPost, io.ErrUnexpectedEOF, true},
		{http.MethodDelete, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
		{http.MethodGet, io.ErrUnexpectedEOF, false},
	}
	for _, c := range cases {
		msg := forwardFailure(c.method, "http://10.0.0.1:8080", c.err)
		// The client reads "outcome is unknown" in an API 503 as a write
		// that may have been applied (client/outcome.go).
		if got := strings.Contains(msg, "outcome is unknown"); got != c.unknown {
			t.Errorf("%s after %v: %q reads as unknown=%v, want %v", c.method, c.err, msg, got, c.unknown)
		}
		if !strings.Contains(msg, "10.0.0.1:8080") {
			t.Errorf("%q does not name the leader", msg)
		}
	}
}
