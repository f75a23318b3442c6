// The dag example: parallel branches and every dependency condition.
// build runs first; test and lint run in parallel after it; deploy needs
// both to succeed; notify_failure runs only if the tests fail (so it is
// skipped here); report runs whatever happened. lint fails its first
// attempt on purpose and succeeds on its retry.
package main

import (
	"os"
	"time"

	sdk "github.com/goferhq/gofer/sdk/go"
)

func main() {
	err := sdk.NewPipeline("dag", "DAG").
		Description("Parallel branches and every dependency condition: build, then test and lint in parallel; deploy only if both succeed; notify_failure only if tests fail; report always.").
		Parallelism(2).
		Timeout(10*time.Minute).
		Tasks(
			sdk.NewTask("build", "gofer/busybox:latest").
				Command("sh", "-c", "echo building $GOFER_PIPELINE_ID run $GOFER_RUN_ID; sleep 1"),
			sdk.NewTask("test", "gofer/gofer:latest").
				Command("debug", "log").
				Variables(map[string]string{"LOGS_HEADER": "running the tests", "LOG_LINES": "5", "LOG_INTERVAL": "200ms"}).
				DependsOn("build", sdk.Success).
				Timeout(time.Minute),
			sdk.NewTask("lint", "gofer/busybox:latest").
				Command("sh", "-c", `echo linting; [ "$GOFER_TASK_ATTEMPT" -ge 2 ]`).
				DependsOn("build", sdk.Success).
				Retries(1, time.Second),
			sdk.NewTask("deploy", "gofer/busybox:latest").
				Command("echo", "deploying").
				DependsOnMany(map[string]sdk.RequiredParentStatus{"test": sdk.Success, "lint": sdk.Success}),
			sdk.NewTask("notify_failure", "gofer/busybox:latest").
				Command("echo", "tests failed!").
				DependsOn("test", sdk.Failure),
			sdk.NewTask("report", "gofer/gofer:latest").
				Command("debug", "envs").
				DependsOnMany(map[string]sdk.RequiredParentStatus{"deploy": sdk.Any, "notify_failure": sdk.Any}),
		).Finish()
	if err != nil {
		os.Exit(1)
	}
}
