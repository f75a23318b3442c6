// Command gofer is Gofer's one binary: the server (gofer service start),
// the CLI, and the tools that run inside task containers.
package main

import (
	"os"

	"github.com/goferhq/gofer/cli"
)

// Set by the linker: -X main.version=... -X main.commit=...
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(cli.Run(cli.Build{Version: version, Commit: commit}, os.Args))
}
