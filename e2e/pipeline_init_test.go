package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// A user's own pipeline project, as `gofer pipeline init` writes it,
// builds and registers with the network off and nothing cached: the Go SDK
// comes from the project's copy (go.mod replaces the module, which no
// module proxy has), the Python SDK from the gofer_sdk folder beside
// pipeline.py (nothing pip-installed).

// offlineEnv is a user's environment without a module proxy and with an
// empty home, GOPATH and module cache, so nothing downloaded before can
// help; the build cache stays, as it only holds compiled packages. No
// PYTHONPATH either.
func offlineEnv(t *testing.T, c *Cluster) []string {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"GOPATH=" + filepath.Join(home, "go"),
		"GOMODCACHE=" + filepath.Join(home, "go", "pkg", "mod"),
		"GOFLAGS=-mod=mod",
		"GOPROXY=off",
		"PYTHONPATH=",
	}
	if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
		env = append(env, "GOCACHE="+strings.TrimSpace(string(out)))
	}
	if c != nil {
		env = append(env, "GOFER_API_BASE_URL="+c.Nodes[0].URL, "GOFER_TOKEN="+c.Token)
	}
	return env
}

func TestPipelineInitProjectsBuildAndRegisterOffline(t *testing.T) {
	c := NewCluster(t, 1)
	env := offlineEnv(t, c)
	gofer := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, env, args...)
		if err != nil {
			t.Fatalf("gofer %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	root := t.TempDir()
	var wantTasks string
	for _, lang := range []string{"json", "go", "python"} {
		id := "init-" + lang
		dir := filepath.Join(root, id)
		out := gofer("pipeline", "init", "--language", lang, dir)
		if !strings.Contains(out, "pipeline ["+id+"]") || !strings.Contains(out, "gofer up "+dir) {
			t.Fatalf("init %s:\n%s", lang, out)
		}
		switch lang {
		case "go":
			build := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "pipeline"), ".")
			build.Dir = dir
			build.Env = append(os.Environ(), env...)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build of the Go project, offline: %v\n%s", err, out)
			}
		case "python":
			run := exec.Command("python3", "pipeline.py")
			run.Dir = dir
			run.Env = append(os.Environ(), env...)
			if out, err := run.CombinedOutput(); err != nil || !strings.Contains(string(out), `"id": "`+id+`"`) {
				t.Fatalf("python3 pipeline.py of the Python project: %v\n%s", err, out)
			}
		}
		out = gofer("up", dir)
		if !strings.Contains(out, "✓ Created pipeline and registered ["+id+"]") {
			t.Fatalf("gofer up %s (%s):\n%s", dir, lang, out)
		}
		ctx := context.Background()
		pl, err := c.Client().GetPipeline(ctx, id)
		if err != nil || pl.LiveVersion != 1 {
			t.Fatalf("after gofer up %s: %+v, %v", dir, pl, err)
		}
		cfg, err := c.Client().GetConfig(ctx, id, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Tasks) != 2 || cfg.Tasks[0].ID != "build" || cfg.Tasks[1].ID != "test" || cfg.Tasks[1].DependsOn["build"] != "Success" {
			raw, _ := json.Marshal(cfg.Tasks)
			t.Fatalf("%s project registered tasks %s, want build, then test after build succeeded", lang, raw)
		}
		// The three languages describe the same tasks.
		raw, _ := json.Marshal(cfg.Tasks)
		if wantTasks == "" {
			wantTasks = string(raw)
		} else if string(raw) != wantTasks {
			t.Errorf("the %s project's tasks differ from the JSON project's:\n%s\n%s", lang, raw, wantTasks)
		}
	}

	// Without the copy, go's own advice is `go get`, which cannot work;
	// gofer up says what does. Likewise for a pipeline.py without gofer_sdk.
	bare := t.TempDir()
	mainGo, err := os.ReadFile(filepath.Join(root, "init-go", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"go.mod":      "module example.com/bare\n\ngo 1.26.8\n",
		"main.go":     string(mainGo),
		"pipeline.py": "from gofer_sdk import Pipeline\n",
	} {
		if err := os.WriteFile(filepath.Join(bare, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ path, want string }{
		{bare, "not published on a module proxy, so `go get` cannot fetch it"},
		{filepath.Join(bare, "pipeline.py"), "gofer_sdk is not importable from " + bare},
	} {
		out, err := runCLI(t, append(env, "GOFLAGS="), "up", tc.path)
		if err == nil || !strings.Contains(out, tc.want) || !strings.Contains(out, "gofer pipeline init") {
			t.Fatalf("gofer up %s without the SDK: %v\n%s", tc.path, err, out)
		}
	}

	// The Go project's pipeline runs: both tasks succeed.
	ensureImages(t)
	out := gofer("pipeline", "run", "init-go", "--watch")
	if !strings.Contains(out, "build") || !strings.Contains(out, "test") {
		t.Fatalf("pipeline run init-go --watch:\n%s", out)
	}
	run, err := c.Client().GetRun(context.Background(), "init-go", 1)
	if err != nil || run.Status != model.RunStatusSuccessful {
		t.Fatalf("run 1 of init-go: %+v, %v\n%s", run, err, out)
	}
}

// The Python example's commands, wherever the documentation gives them
// (examples/README.md, the example's docstring, the docs), work verbatim
// from the repository root, PYTHONPATH=sdk/python included: only the
// binary's path is this test's.
func TestExamplesPythonCommandsVerbatim(t *testing.T) {
	docs := []string{"../README.md", "../examples/README.md", "../examples/python/pipeline.py", "../sdk/python/README.md"}
	more, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds := map[string]bool{}
	line := regexp.MustCompile(`PYTHONPATH=sdk/python (?:bin/)?gofer (?:up|run local) examples/python/pipeline\.py`)
	for _, doc := range append(docs, more...) {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range line.FindAllString(string(raw), -1) {
			cmds[m] = true
		}
	}
	for _, want := range []string{"PYTHONPATH=sdk/python bin/gofer up examples/python/pipeline.py", "PYTHONPATH=sdk/python gofer run local examples/python/pipeline.py"} {
		if !cmds[want] {
			t.Fatalf("the docs no longer say %q (found %v)", want, cmds)
		}
	}
	ensureImages(t)
	c := NewCluster(t, 1)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for cmdline := range cmds {
		words := strings.Fields(cmdline)
		want := []string{"registered [simple_python]", "already live"}
		if words[2] == "run" {
			want = []string{"hello | Hello from Gofer, in Python!"}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		cmd := exec.CommandContext(ctx, goferBin, words[2:]...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), append(offlineEnv(t, c), words[0])...)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(string(out), w) }) {
			t.Fatalf("%s (from the repository root): %v\n%s", cmdline, err, out)
		}
	}
}
