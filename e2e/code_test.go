package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/scheduler"
)

// Pipelines as code: the examples print the JSON they are documented
// with, `gofer up` registers every kind of PATH against a real dev server,
// and `gofer run local` runs every example on the real Docker engine.

var codeGoExamples = []string{"simple", "dag", "script", "objects", "secrets", "caching"}

// codeEnv is the environment the CLI runs with: the dev server, the Go
// build cache of this machine (runCLI gives every call a fresh HOME), and
// the Python SDK.
func codeEnv(t *testing.T, url string) []string {
	t.Helper()
	sdkPython, err := filepath.Abs("../sdk/python")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PYTHONPATH=" + sdkPython}
	if url != "" {
		env = append(env, "GOFER_API_BASE_URL="+url)
	}
	for _, name := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		if out, err := exec.Command("go", "env", name).Output(); err == nil {
			env = append(env, name+"="+strings.TrimSpace(string(out)))
		}
	}
	return env
}

func TestCodeExamplesPrintTheirJSON(t *testing.T) {
	env := append(os.Environ(), codeEnv(t, "")...)
	check := func(name string, cmd *exec.Cmd) {
		want, err := os.ReadFile(filepath.Join("../examples", name, "pipeline.json"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = env
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(got) != string(want) {
			t.Errorf("examples/%s prints something else than its pipeline.json:\n%s\nregenerate it with: (cd examples/%s && go run . > pipeline.json)", name, got, name)
		}
	}
	for _, name := range codeGoExamples {
		cmd := exec.Command("go", "run", ".")
		cmd.Dir = filepath.Join("../examples", name)
		check(name, cmd)
	}
	check("python", exec.Command("python3", "../examples/python/pipeline.py"))
}

func TestCodeUp(t *testing.T) {
	n := NewNode(t, "dev", "--dev")
	n.Start()
	WaitFor(t, 30*time.Second, func() error { _, err := n.Health(); return err })
	env := codeEnv(t, n.URL)
	gofer := func(args ...string) (string, error) { return runCLI(t, env, args...) }

	for _, c := range []struct{ path, id string }{
		{"../examples/simple", "simple"},
		{"../examples/dag/pipeline.json", "dag"},
		{"../examples/python/pipeline.py", "simple_python"},
	} {
		out, err := gofer("up", c.path)
		if err != nil || !strings.Contains(out, "✓ Created pipeline and registered ["+c.id+"]") || !strings.Contains(out, "gofer pipeline run "+c.id) {
			t.Fatalf("gofer up %s: %v\n%s", c.path, err, out)
		}
		out, err = gofer("pipeline", "get", c.id, "-o", "json")
		if err != nil || !strings.Contains(out, `"live_version": 1`) {
			t.Fatalf("after gofer up %s the pipeline is not live: %v\n%s", c.path, err, out)
		}
	}

	// The same config again is not registered again; the Go program and
	// its JSON are the same config.
	for _, path := range []string{"../examples/simple", "../examples/simple/pipeline.json"} {
		out, err := gofer("up", path)
		if err != nil || !strings.Contains(out, "already live at version 1") {
			t.Fatalf("gofer up %s a second time: %v\n%s", path, err, out)
		}
	}

	// A changed config without --deploy is registered, not deployed; diff
	// shows the change.
	dir := t.TempDir()
	raw, err := os.ReadFile("../examples/dag/pipeline.json")
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(raw), `"parallelism": 2`, `"parallelism": 3`, 1)
	if err := os.WriteFile(filepath.Join(dir, "dag.json"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := gofer("up", filepath.Join(dir, "dag.json"), "--deploy=false")
	if err != nil || !strings.Contains(out, "version 2 (not deployed)") {
		t.Fatalf("gofer up --deploy=false: %v\n%s", err, out)
	}
	out, err = gofer("pipeline", "config", "diff", "dag", "1", "2")
	if err != nil || !strings.Contains(out, `-  "parallelism": 2,`) || !strings.Contains(out, `+  "parallelism": 3,`) {
		t.Fatalf("diff: %v\n%s", err, out)
	}

	// A Go program that does not compile: the compiler's own words reach
	// the user, with the command to reproduce, and nothing is registered.
	broken := t.TempDir()
	sdkGo, _ := filepath.Abs("../sdk/go")
	files := map[string]string{
		"go.mod":  "module example.com/broken\n\ngo 1.26.8\n\nrequire github.com/goferhq/gofer/sdk/go v0.0.0\n\nreplace github.com/goferhq/gofer/sdk/go => " + sdkGo + "\n",
		"main.go": "package main\n\nimport sdk \"github.com/goferhq/gofer/sdk/go\"\n\nfunc main() {\n\tsdk.NewPipeline(\"broken\", \"Broken\").Finish()\n\tnotDefinedAnywhere()\n}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(broken, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err = gofer("up", broken)
	reproduce := "(cd " + broken + " && go run .)"
	if err == nil || !strings.Contains(out, "undefined: notDefinedAnywhere") || !strings.Contains(out, "reproduce with: "+reproduce) {
		t.Fatalf("gofer up of a program that does not compile: %v\n%s", err, out)
	}
	// The line reproduces: gofer up's own build is gone, the command builds
	// again and shows the same error.
	if again, err := exec.Command("sh", "-c", reproduce).CombinedOutput(); err == nil || !strings.Contains(string(again), "undefined: notDefinedAnywhere") {
		t.Fatalf("%s: %v\n%s", reproduce, err, again)
	}
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic:") {
		t.Fatalf("a build failure printed a Go stack:\n%s", out)
	}
	if out, _ := gofer("pipeline", "get", "broken"); !strings.Contains(out, "does not exist") {
		t.Fatalf("a failed build registered something:\n%s", out)
	}
	// A program whose pipeline is invalid is refused before the server.
	files["main.go"] = "package main\n\nimport (\n\t\"os\"\n\n\tsdk \"github.com/goferhq/gofer/sdk/go\"\n)\n\nfunc main() {\n\tif sdk.NewPipeline(\"invalid\", \"Invalid\").Tasks(sdk.NewTask(\"aaa\", \"x\").DependsOn(\"zzz\", sdk.Success)).Finish() != nil {\n\t\tos.Exit(1)\n\t}\n}\n"
	if err := os.WriteFile(filepath.Join(broken, "main.go"), []byte(files["main.go"]), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = gofer("up", broken)
	if err == nil || !strings.Contains(out, `task "aaa": unknown dependency "zzz"`) {
		t.Fatalf("gofer up of an invalid pipeline: %v\n%s", err, out)
	}

	// An invalid image reference fails gofer up of a JSON config and of a
	// Python program (the SDK refuses it in finish()), naming the task and
	// field, and registers nothing.
	badJSON := strings.Replace(strings.Replace(string(rawSimple(t)), `"id": "simple"`, `"id": "bad_image"`, 1),
		`"image": "gofer/busybox:latest"`, `"image": "Foo Bar"`, 1)
	badPy := "from gofer_sdk import Pipeline, Task\n\nPipeline(\"bad_image_py\", \"x\").tasks(Task(\"build\", \"Foo Bar\")).finish()\n"
	for _, c := range []struct{ file, body, id, task string }{
		{"bad.json", badJSON, "bad_image", "hello"},
		{"bad.py", badPy, "bad_image_py", "build"},
	} {
		path := filepath.Join(t.TempDir(), c.file)
		if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err = gofer("up", path)
		if want := `tasks[` + c.task + `].image: "Foo Bar" is not a valid image reference: `; err == nil || !strings.Contains(out, want) {
			t.Fatalf("gofer up %s: %v\n%s\nwant %q", c.file, err, out, want)
		}
		if out, _ := gofer("pipeline", "get", c.id); !strings.Contains(out, "does not exist") {
			t.Fatalf("gofer up %s with an invalid image registered something:\n%s", c.file, out)
		}
	}

	// A run whose secrets and objects are missing is refused, the CLI
	// printing each with its fix on its own line.
	needs := strings.Replace(strings.Replace(string(rawSimple(t)), `"id": "simple"`, `"id": "needs"`, 1),
		`"GREETING": "hello"`, `"GREETING": "pipeline_secret{{greeting}}", "CONFIG": "pipeline_object{{config}}"`, 1)
	needsPath := filepath.Join(t.TempDir(), "needs.json")
	if err := os.WriteFile(needsPath, []byte(needs), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := gofer("up", needsPath); err != nil {
		t.Fatalf("gofer up needs.json: %v\n%s", err, out)
	}
	out, err = gofer("pipeline", "run", "needs")
	for _, line := range []string{
		"error: 2 secrets or objects are not there; fix each, then try again:",
		`  pipeline_object "config" does not exist (used by hello.CONFIG): gofer pipeline object put needs config FILE -n default`,
		`  pipeline_secret "greeting" does not exist (used by hello.GREETING): gofer secret pipeline put needs greeting VALUE -n default`,
	} {
		if err == nil || !slices.Contains(strings.Split(out, "\n"), line) {
			t.Fatalf("gofer pipeline run needs: %v\n%s\nwant the line %q", err, out, line)
		}
	}
}

// rawSimple is examples/simple/pipeline.json.
func rawSimple(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../examples/simple/pipeline.json")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestCodeExamplesOnDevServer follows examples/README.md for the objects
// and secrets examples against a dev server whose task containers use the
// host network (as `make run` sets it up): values come from the server's
// object and secret stores, a task stores a run object with its run's
// token, and secret values are masked in the stored logs.
func TestCodeExamplesOnDevServer(t *testing.T) {
	ensureImages(t)
	n := NewNode(t, "dev", "--dev")
	n.Env = append(n.Env, "GOFER_WEB_SCHEDULER__DOCKER__NETWORK=host")
	n.Start()
	WaitFor(t, 30*time.Second, func() error { _, err := n.Health(); return err })
	h, err := n.Health()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeContainers(t, h.ClusterID) })
	env := codeEnv(t, n.URL)
	settings := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(settings, []byte(`{"mode":"fast"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, step := range [][]string{
		{"up", "../examples/objects"},
		{"pipeline", "object", "put", "objects", "settings", settings},
		{"pipeline", "run", "objects", "--watch"},
		{"up", "../examples/secrets"},
		{"secret", "pipeline", "put", "secrets", "api_key", "s3cr3t-key-123"},
		{"secret", "global", "put", "registry_password", "hunter22"},
		{"pipeline", "run", "secrets", "--watch"},
		{"up", "../examples/caching"},
		{"pipeline", "run", "caching", "--watch"},
		{"pipeline", "run", "caching", "--watch"},
	} {
		if out, err := runCLI(t, env, step...); err != nil {
			t.Fatalf("gofer %s: %v\n%s", strings.Join(step, " "), err, out)
		}
	}
	for _, c := range []struct {
		args []string
		want []string
		not  string
	}{
		{[]string{"task", "logs", "objects", "1", "read_objects"}, []string{`settings: {"mode":"fast"}`, "build id: build-1"}, ""},
		{[]string{"task", "logs", "secrets", "1", "use_secrets"}, []string{"calling the API with key **************", "has 8 characters"}, "s3cr3t-key-123"},
		// The caching example: the first run fills the cache, the second
		// restores it from the object store and saves it back.
		{[]string{"task", "logs", "caching", "1", "build"}, []string{"cache miss: fetching dependencies", "saved cache"}, "cache hit"},
		{[]string{"task", "logs", "caching", "2", "build"}, []string{"cache hit: 3 entries, built 1 time(s) before", "saved cache"}, "cache miss"},
		{[]string{"pipeline", "object", "get", "caching", "deps_cache"}, []string{"dep alpha\ndep beta\ndep gamma\nbuilt in run 1\nbuilt in run 2\n"}, ""},
	} {
		out, err := runCLI(t, env, c.args...)
		if err != nil {
			t.Fatalf("gofer %s: %v\n%s", strings.Join(c.args, " "), err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("gofer %s lacks %q:\n%s", strings.Join(c.args, " "), w, out)
			}
		}
		if c.not != "" && strings.Contains(out, c.not) {
			t.Errorf("gofer %s shows the secret %q:\n%s", strings.Join(c.args, " "), c.not, out)
		}
	}
}

func TestCodeRunLocal(t *testing.T) {
	ensureImages(t)
	env := codeEnv(t, "")
	tests := []struct {
		name     string
		args     []string
		exitCode int
		want     []string // substrings of the output
		not      []string
	}{
		{name: "simple", args: []string{"../examples/simple"}, want: []string{"hello | Hello from Gofer!", "world | world from world", "status:      successful"}},
		{name: "dag", args: []string{"../examples/dag"}, want: []string{
			"[gofer] attempt 2 of 2 starting", "deploy         | deploying",
			"notify_failure  complete  skipped", "lint            complete  successful  2", "status:      successful"}},
		{name: "script", args: []string{"../examples/script", "-v", "NAME=you"}, want: []string{"greet | Hello, you!", "greet | step 3 of run 1"}},
		{name: "objects", args: []string{"../examples/objects", "--object", `settings={"mode":"fast"}`, "--run-object", "build_id=42"},
			want: []string{"store_build  | no API token here (gofer run local)", `settings: {"mode":"fast"}`, "build id: 42"}},
		{name: "secrets", args: []string{"../examples/secrets", "--secret", "api_key=s3cr3t-key-123", "--global-secret", "registry_password=hunter22"},
			want: []string{"calling the API with key ********", "has 8 characters"}, not: []string{"s3cr3t-key-123"}},
		{name: "secrets without values", args: []string{"../examples/secrets"}, exitCode: 2, want: []string{
			`variable API_KEY needs pipeline_secret "api_key": pass --secret api_key=VALUE`,
			`variable REGISTRY_PASSWORD needs global_secret "registry_password"`}},
		{name: "caching", args: []string{"../examples/caching"}, want: []string{"build | no API here (gofer run local): building without a cache"}},
		{name: "python", args: []string{"../examples/python/pipeline.py"}, want: []string{"hello | Hello from Gofer, in Python!"}},
		{name: "debug fails on purpose", args: []string{"../examples/debug/pipeline.json"}, exitCode: 1, want: []string{
			"fail  complete  failed      1", "ended failed"}},
		{name: "failing DAG", args: []string{codeFailingDAG(t)}, exitCode: 1, want: []string{
			"after_success  complete  skipped", "after_failure  complete  successful", "fails          complete  failed      1",
			"failed_precondition"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, env, append([]string{"run", "local"}, tt.args...)...)
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if code != tt.exitCode {
				t.Fatalf("exit code %d, want %d\n%s", code, tt.exitCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("output contains %q:\n%s", n, out)
				}
			}
		})
	}
	// Nothing is left behind.
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label="+scheduler.LabelCluster, "--format", "{{.Names}} {{.Labels}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, scheduler.LabelCluster+"=local-") {
			t.Errorf("gofer run local left a container: %s", line)
		}
	}
}

// codeFailingDAG writes a pipeline whose first task fails: the
// Success-conditioned task is skipped and the Failure-conditioned one runs.
func codeFailingDAG(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "failing.json")
	cfg := `{"id": "failing", "name": "Failing DAG", "tasks": [
  {"id": "fails", "image": "gofer/busybox:latest", "command": ["sh", "-c", "echo about to fail; exit 3"]},
  {"id": "after_success", "image": "gofer/busybox:latest", "command": ["echo", "never"], "depends_on": {"fails": "Success"}},
  {"id": "after_failure", "image": "gofer/busybox:latest", "command": ["echo", "cleaning up"], "depends_on": {"fails": "Failure"}}]}`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
