// The script example: a multi-line shell script as a task, and a run
// variable that overrides the task's own (gofer pipeline run script -v
// NAME=you).
package main

import (
	"os"

	sdk "github.com/goferhq/gofer/sdk/go"
)

func main() {
	err := sdk.NewPipeline("script", "Script").
		Description("A multi-line shell script in a task; run it with -v NAME=you to override the task's variable.").
		Tasks(
			sdk.NewTask("greet", "gofer/busybox:latest").
				Variable("NAME", "world").
				Script(`
set -eu
echo "Hello, $NAME!"
for i in 1 2 3; do
  echo "step $i of run $GOFER_RUN_ID"
done
echo "done at $(date -u +%H:%M:%S)"
`),
		).Finish()
	if err != nil {
		os.Exit(1)
	}
}
