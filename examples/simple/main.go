// The simple example: two tasks, one after the other.
//
//	gofer up examples/simple          # register and deploy it
//	gofer pipeline run simple --watch
//	gofer run local examples/simple   # or run it without a server
package main

import (
	"os"

	sdk "github.com/goferhq/gofer/sdk/go"
)

func main() {
	err := sdk.NewPipeline("simple", "Simple Pipeline").
		Description("Two tasks: hello, then world once hello succeeds. Uses the local busybox image that 'make images' builds.").
		Tasks(
			sdk.NewTask("hello", "gofer/busybox:latest").
				Description("Say hello.").
				Command("echo", "Hello from Gofer!").
				Variable("GREETING", "hello"),
			sdk.NewTask("world", "gofer/busybox:latest").
				Description("Runs after hello succeeds.").
				Command("sh", "-c", "echo world from $GOFER_TASK_ID").
				DependsOn("hello", sdk.Success),
		).Finish()
	if err != nil {
		os.Exit(1)
	}
}
