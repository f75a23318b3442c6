// The objects example: a task stores a run object through the API with
// its run's own token (inject_api_token), and the task after it receives
// that object and a pipeline object through interpolation markers.
//
// On a cluster (or `make run`), store the pipeline object first:
//
//	echo '{"mode":"fast"}' | gofer pipeline object put objects settings @-
//	gofer pipeline run objects --watch
//
// The first task reaches the API at GOFER_API_BASE_URL, so task containers
// must be able to: `make run` gives them the host network for that.
//
// With `gofer run local` there is no API (and no token): pass the values
// on the command line instead:
//
//	gofer run local examples/objects --object settings='{"mode":"fast"}' --run-object build_id=42
package main

import (
	"os"

	sdk "github.com/goferhq/gofer/sdk/go"
)

func main() {
	err := sdk.NewPipeline("objects", "Objects").
		Description("A task stores a run object with its run's API token; the next task reads it and a pipeline object.").
		Tasks(
			sdk.NewTask("store_build", "gofer/busybox:latest").
				Description("Stores run object build_id through the API.").
				InjectAPIToken(true).
				Script(`
if [ -z "$GOFER_TOKEN" ]; then
  echo "no API token here (gofer run local): build_id comes from --run-object"
  exit 0
fi
url="${GOFER_API_BASE_URL%%,*}/api/namespaces/$GOFER_NAMESPACE_ID/pipelines/$GOFER_PIPELINE_ID/runs/$GOFER_RUN_ID/objects/build_id"
wget -q -O /dev/null --header "Authorization: Bearer $GOFER_TOKEN" --header "gofer-api-version: v0" \
  --post-data "build-$GOFER_RUN_ID" "$url" || { echo "could not store the run object at $url"; exit 1; }
echo "stored run object build_id"
`),
			sdk.NewTask("read_objects", "gofer/busybox:latest").
				Description("Receives both objects as environment variables.").
				DependsOn("store_build", sdk.Success).
				Variable("SETTINGS", sdk.PipelineObject("settings")).
				Variable("BUILD_ID", sdk.RunObject("build_id")).
				Script(`
echo "settings: $SETTINGS"
echo "build id: $BUILD_ID"
`),
		).Finish()
	if err != nil {
		os.Exit(1)
	}
}
