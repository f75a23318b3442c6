// The objects example: variables whose values come from Gofer's object
// store, through interpolation markers. With `gofer run local` pass the
// values on the command line:
//
//	gofer run local examples/objects --object settings='{"mode":"fast"}' --run-object build_id=42
//
// On a cluster the markers are resolved from the pipeline and run object
// stores when the task starts (until those stores exist, the container
// sees the marker itself, and the task says so).
package main

import (
	"os"

	sdk "github.com/goferhq/gofer/sdk/go"
)

func main() {
	err := sdk.NewPipeline("objects", "Objects").
		Description("Reads a pipeline object and a run object through interpolation markers.").
		Tasks(
			sdk.NewTask("read_objects", "gofer/busybox:latest").
				Variable("SETTINGS", sdk.PipelineObject("settings")).
				Variable("BUILD_ID", sdk.RunObject("build_id")).
				Script(`
case "$SETTINGS" in
  pipeline_object*) echo "no object store on this server yet: got the marker $SETTINGS" ;;
  *) echo "settings: $SETTINGS" ;;
esac
echo "build id: $BUILD_ID"
`),
		).Finish()
	if err != nil {
		os.Exit(1)
	}
}
