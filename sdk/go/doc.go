// Package sdk describes Gofer pipelines in Go.
//
// A pipeline is a DAG of container tasks. The types in this package are the
// exact JSON that `gofer up` registers with the server, and the validation
// here is the same code the server runs, so a pipeline that passes Validate
// locally is accepted remotely.
//
// The package depends on the standard library only, so user pipelines build
// fast and offline.
//
// # Writing a pipeline
//
// A pipeline is a small Go program (a folder with a go.mod) that builds the
// pipeline with NewPipeline and NewTask and ends with Finish, which
// validates it and prints its config JSON on stdout. `gofer up FOLDER`
// builds and runs the program and registers what it printed:
//
//	package main
//
//	import (
//		"os"
//		"time"
//
//		sdk "github.com/goferhq/gofer/sdk/go"
//	)
//
//	func main() {
//		err := sdk.NewPipeline("dag", "Build, test, deploy").
//			Description("Tests and lint run in parallel after the build.").
//			Parallelism(2).
//			Timeout(30*time.Minute).
//			Tasks(
//				sdk.NewTask("build", "gofer/busybox:latest").
//					Script("echo building run $GOFER_RUN_ID"),
//				sdk.NewTask("test", "gofer/busybox:latest").
//					Command("echo", "testing").
//					DependsOn("build", sdk.Success).
//					Timeout(10*time.Minute).
//					Retries(2, 5*time.Second),
//				sdk.NewTask("lint", "gofer/busybox:latest").
//					Command("echo", "linting").
//					DependsOn("build", sdk.Success),
//				sdk.NewTask("deploy", "gofer/busybox:latest").
//					Script(`echo "deploying with $API_KEY"`).
//					Variable("API_KEY", sdk.PipelineSecret("api_key")).
//					DependsOnMany(map[string]sdk.RequiredParentStatus{
//						"test": sdk.Success,
//						"lint": sdk.Success,
//					}),
//				sdk.NewTask("notify", "gofer/busybox:latest").
//					Command("echo", "tests failed").
//					DependsOn("test", sdk.Failure),
//			).Finish()
//		if err != nil {
//			os.Exit(1) // Finish has printed the error on stderr
//		}
//	}
//
// Setters never fail; Validate, JSON and Finish report the first problem
// (an invalid id, a duplicate task, a dependency on a task that does not
// exist, a cycle, a limit exceeded, an empty script...), and every error
// names the pipeline or task it is about.
//
// # The printed JSON
//
// Finish prints PipelineConfig as encoding/json does with two-space
// indentation and HTML escaping off, followed by a newline: fields in struct
// order, optional fields omitted when empty, map keys (dependencies,
// variables) sorted, tasks in the order they were added, durations as Go
// duration strings ("1m30s"). The Python SDK (sdk/python) prints
// byte-for-byte the same JSON for the same pipeline; shared golden files
// in sdk/testdata/golden check that.
//
// # Interpolation markers
//
// A variable's value can be a marker that Gofer replaces when the task
// starts: PipelineSecret, GlobalSecret, PipelineObject and RunObject return
// them, so secrets never appear in the config.
package sdk
