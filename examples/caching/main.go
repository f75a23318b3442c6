// The caching example, from the FAQ's "use the object store as a cache":
// a task restores its dependency cache from a pipeline object, does its
// work with it (a cold start "downloads" what is missing), and saves the
// cache back for the next run. The first run misses and fills the cache;
// every later run starts warm.
//
// On a cluster (or `make run`):
//
//	gofer up examples/caching
//	gofer pipeline run caching --watch     # "cache miss", then "saved cache"
//	gofer pipeline run caching --watch     # "cache hit: 3 entries, built 1 time(s) before"
//	gofer pipeline object get caching deps_cache
//
// The task reaches the API at GOFER_API_BASE_URL with its run's token
// (InjectAPIToken), so task containers must be able to: `make run` gives
// them the host network for that. A pipeline object outlives runs (the
// pipeline's object limit evicts the oldest keys); a run object would be a
// cache for one run only.
//
// With `gofer run local` there is no API: the task says so and builds cold.
package main

import (
	"os"

	sdk "github.com/goferhq/gofer/sdk/go"
)

func main() {
	err := sdk.NewPipeline("caching", "Caching").
		Description("Restores a dependency cache from the object store, uses it, and saves it back.").
		Tasks(
			sdk.NewTask("build", "gofer/busybox:latest").
				Description("Restores pipeline object deps_cache, fills what is missing, saves it back.").
				InjectAPIToken(true).
				Script(`
mkdir -p /cache
if [ -z "$GOFER_TOKEN" ]; then
  echo "no API here (gofer run local): building without a cache"
  echo "fetched dependency: $(date +%s)" >/cache/deps
  exit 0
fi
api="${GOFER_API_BASE_URL%%,*}/api/namespaces/$GOFER_NAMESPACE_ID/pipelines/$GOFER_PIPELINE_ID/objects/deps_cache"
auth="Authorization: Bearer $GOFER_TOKEN"
if wget -q -O /cache/deps --header "$auth" --header "gofer-api-version: v0" "$api"; then
  builds=$(grep -c '^built' /cache/deps)
  echo "cache hit: $(grep -c '^dep' /cache/deps) entries, built $builds time(s) before"
else
  echo "cache miss: fetching dependencies"
  : >/cache/deps
  for d in alpha beta gamma; do echo "dep $d" >>/cache/deps; done
fi
echo "built in run $GOFER_RUN_ID" >>/cache/deps
wget -q -O /dev/null --header "$auth" --header "gofer-api-version: v0" \
  --post-file /cache/deps "$api?force=true" || { echo "could not save the cache at $api"; exit 1; }
echo "saved cache ($(wc -c </cache/deps) bytes)"
`),
		).Finish()
	if err != nil {
		os.Exit(1)
	}
}
