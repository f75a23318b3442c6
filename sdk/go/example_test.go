package sdk_test

import (
	"fmt"
	"os"
	"time"

	sdk "github.com/goferhq/gofer/sdk/go"
)

// A whole pipeline program: build the pipeline and print its config, which
// `gofer up` registers.
func ExampleNewPipeline() {
	err := sdk.NewPipeline("simple", "My Simple Pipeline").
		Description("This pipeline is purely for testing purposes.").
		Tasks(
			sdk.NewTask("simple_task", "gofer/busybox:latest").
				Description("This task simply prints our hello-world message and exits!").
				Command("echo", "Hello from Gofer!"),
		).Finish()
	if err != nil {
		os.Exit(1)
	}
	// Output:
	// {
	//   "id": "simple",
	//   "name": "My Simple Pipeline",
	//   "description": "This pipeline is purely for testing purposes.",
	//   "parallelism": 0,
	//   "tasks": [
	//     {
	//       "id": "simple_task",
	//       "description": "This task simply prints our hello-world message and exits!",
	//       "image": "gofer/busybox:latest",
	//       "depends_on": {},
	//       "variables": {},
	//       "command": [
	//         "echo",
	//         "Hello from Gofer!"
	//       ],
	//       "inject_api_token": false,
	//       "always_pull_newest_image": false
	//     }
	//   ]
	// }
}

// Dependencies make a DAG: test and lint run in parallel after build,
// deploy needs both to succeed, notify runs only if test failed, and report
// runs whatever happened to deploy.
func ExampleTask_DependsOn() {
	p := sdk.NewPipeline("dag", "DAG").Tasks(
		sdk.NewTask("build", "gofer/busybox:latest").Command("echo", "build"),
		sdk.NewTask("test", "gofer/busybox:latest").Command("echo", "test").DependsOn("build", sdk.Success),
		sdk.NewTask("lint", "gofer/busybox:latest").Command("echo", "lint").DependsOn("build", sdk.Success),
		sdk.NewTask("deploy", "gofer/busybox:latest").Command("echo", "deploy").
			DependsOnMany(map[string]sdk.RequiredParentStatus{"test": sdk.Success, "lint": sdk.Success}),
		sdk.NewTask("notify", "gofer/busybox:latest").Command("echo", "tests failed").DependsOn("test", sdk.Failure),
		sdk.NewTask("report", "gofer/busybox:latest").Command("echo", "done").DependsOn("deploy", sdk.Any),
	)
	if err := p.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range p.Config().Tasks {
		fmt.Println(t.ID, t.DependsOn)
	}
	// Output:
	// build map[]
	// test map[build:Success]
	// lint map[build:Success]
	// deploy map[lint:Success test:Success]
	// notify map[test:Failure]
	// report map[deploy:Any]
}

// Script runs a shell script with the image's sh.
func ExampleTask_Script() {
	t := sdk.NewTask("greet", "gofer/busybox:latest").Script(`
		echo "hello from $GOFER_TASK_ID"
		date
	`)
	fmt.Printf("%q\n", t.Config().Command)
	// Output:
	// ["sh" "-c" "echo \"hello from $GOFER_TASK_ID\"\n\t\tdate"]
}

// Variables merge, the later call winning; names are kept as given.
func ExampleTask_Variables() {
	t := sdk.NewTask("vars", "gofer/busybox:latest").
		Variable("GREETING", "hello").
		Variables(map[string]string{"GREETING": "bonjour", "target": "world"})
	fmt.Println(t.Config().Variables)
	// Output:
	// map[GREETING:bonjour target:world]
}

// Durations are stored as Go duration strings.
func ExampleTask_Retries() {
	t := sdk.NewTask("flaky", "gofer/busybox:latest").
		Command("sh", "-c", "exit 1").
		Timeout(90*time.Second).
		Retries(3, 500*time.Millisecond)
	c := t.Config()
	fmt.Println(c.Timeout, c.Retries, c.RetryBackoff)
	// Output:
	// 1m30s 3 500ms
}

// Validation errors name the task at fault.
func ExamplePipeline_Validate() {
	err := sdk.NewPipeline("cyclic", "Cyclic").Tasks(
		sdk.NewTask("one", "gofer/busybox:latest").DependsOn("three", sdk.Success),
		sdk.NewTask("two", "gofer/busybox:latest").DependsOn("one", sdk.Success),
		sdk.NewTask("three", "gofer/busybox:latest").DependsOn("two", sdk.Success),
	).Validate()
	fmt.Println(err)
	err = sdk.NewPipeline("typo", "Typo").Tasks(
		sdk.NewTask("build", "gofer/busybox:latest"),
		sdk.NewTask("deploy", "gofer/busybox:latest").DependsOn("biuld", sdk.Success),
	).Validate()
	fmt.Println(err)
	// Output:
	// task "one": dependency cycle: one -> three -> two -> one
	// task "deploy": unknown dependency "biuld"
}

// The markers are replaced by secrets and objects when the task starts.
func ExamplePipelineSecret() {
	t := sdk.NewTask("deploy", "gofer/busybox:latest").
		Variable("API_KEY", sdk.PipelineSecret("api_key")).
		Variable("SHARED", sdk.GlobalSecret("shared_token")).
		Variable("CACHE", sdk.PipelineObject("cache_key")).
		Variable("ARTIFACT", sdk.RunObject("artifact"))
	for _, k := range []string{"API_KEY", "SHARED", "CACHE", "ARTIFACT"} {
		fmt.Println(k, "=", t.Config().Variables[k])
	}
	// Output:
	// API_KEY = pipeline_secret{{api_key}}
	// SHARED = global_secret{{shared_token}}
	// CACHE = pipeline_object{{cache_key}}
	// ARTIFACT = run_object{{artifact}}
}
