// The secrets example: a secret reaches the task as an environment
// variable through an interpolation marker, and never appears in the
// config. On a cluster (or `make run`), store the secrets first:
//
//	gofer secret pipeline put secrets api_key @-
//	gofer secret global put registry_password hunter22
//	gofer pipeline run secrets --watch
//
// With `gofer run local` pass them on the command line:
//
//	gofer run local examples/secrets --secret api_key=s3cr3t --global-secret registry_password=hunter22
//
// Secret values are masked in stored task logs and in the local runner's
// output.
package main

import (
	"os"

	sdk "github.com/goferhq/gofer/sdk/go"
)

func main() {
	err := sdk.NewPipeline("secrets", "Secrets").
		Description("Uses a pipeline secret and a global secret through interpolation markers.").
		Tasks(
			sdk.NewTask("use_secrets", "gofer/busybox:latest").
				Variable("API_KEY", sdk.PipelineSecret("api_key")).
				Variable("REGISTRY_PASSWORD", sdk.GlobalSecret("registry_password")).
				Script(`
echo "calling the API with key $API_KEY"
echo "the registry password has ${#REGISTRY_PASSWORD} characters"
`),
		).Finish()
	if err != nil {
		os.Exit(1)
	}
}
