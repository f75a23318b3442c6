// The secrets example: a secret reaches the task as an environment
// variable through an interpolation marker, and never appears in the
// config. With `gofer run local`:
//
//	gofer run local examples/secrets --secret api_key=s3cr3t --global-secret registry_password=hunter22
//
// The local runner masks secret values in the printed output.
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
