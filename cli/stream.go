package cli

import (
	"fmt"
	"io"

	"github.com/goferhq/gofer/client"
)

// resumeNote prints one line on stderr when a follow stream (logs, events)
// lost its node and resumed on another, so the reader knows why output
// paused; stdout carries only the stream itself.
func resumeNote(w io.Writer) func(client.Resume) {
	return func(r client.Resume) {
		fmt.Fprintf(w, "note: connection to node lost; resumed %s\n", r.Position())
	}
}
