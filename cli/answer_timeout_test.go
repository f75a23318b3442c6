package cli

import (
	"testing"

	"github.com/goferhq/gofer/api"
)

// The CLI's answer timeout must not cut requests the server still means
// to answer: it exceeds every route's own bound, read from the route
// table so neither can drift. Snapshot save and restore are exempt from
// it (the client never applies it to them); internal routes are the
// nodes' own.
func TestAnswerTimeoutAboveServerBounds(t *testing.T) {
	for _, r := range api.Routes() {
		if r.Internal || r.Path == "/api/cluster/snapshot" {
			continue
		}
		if r.AnswerWithin >= answerTimeout {
			t.Errorf("%s %s may take %s to answer; the CLI gives up after %s", r.Method, r.Path, r.AnswerWithin, answerTimeout)
		}
	}
}
