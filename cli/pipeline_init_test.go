package cli

import (
	"bytes"
	"context"
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runGofer(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	code = run(context.Background(), Build{Version: "1.2.3", Commit: "abc"}, append([]string{"gofer"}, args...), &out, &errs)
	return code, out.String(), errs.String()
}

// Mistakes on the command line exit 2 with the usage line and write
// nothing; a folder that is not empty is refused (exit 1) unless --force.
func TestPipelineInitRefusesBadInput(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		args []string
		errs string
	}{
		{[]string{"pipeline", "init"}, "init takes 1 argument(s), got 0\nusage: gofer pipeline init DIR"},
		{[]string{"pipeline", "init", "--language", "rust", filepath.Join(root, "proj")}, `--language "rust" must be one of go, python, json`},
		{[]string{"pipeline", "init", "--id", "x", filepath.Join(root, "proj")}, `--id: invalid identifier: "x" must be 3 to 32 characters long, got 1`},
		{[]string{"pipeline", "init", filepath.Join(root, "my pipeline")}, `pipeline id from the folder name: invalid identifier: "my pipeline" may contain only letters, digits, '_' and '-' (found ' ' at position 2); choose one with --id`},
		{[]string{"pipeline", "init", filepath.Join(root, "ab")}, "choose one with --id\nusage: gofer pipeline init DIR"},
	} {
		code, _, errs := runGofer(t, tc.args...)
		if code != 2 || !strings.Contains(errs, tc.errs) {
			t.Errorf("gofer %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, errs, tc.errs)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("refused commands wrote %v", entries)
	}

	dir := filepath.Join(root, "busy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runGofer(t, "pipeline", "init", dir)
	if code != 1 || !strings.Contains(errs, dir+" is not empty (it holds notes.txt)") || !strings.Contains(errs, "--force") {
		t.Fatalf("init into a non-empty folder: exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		t.Fatal("a refused init wrote go.mod")
	}
	file := filepath.Join(root, "afile")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runGofer(t, "pipeline", "init", file); code != 1 || !strings.Contains(errs, "is a file, not a folder") {
		t.Fatalf("init into a file: exit %d, stderr %q", code, errs)
	}

	// --force writes the project beside the user's files, and replaces
	// the SDK folder as a whole.
	stale := filepath.Join(dir, goSDKDir, "stale.go")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("package sdk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runGofer(t, "pipeline", "init", "--force", dir); code != 0 || !strings.Contains(out, "pipeline [busy]") {
		t.Fatalf("init --force: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("init --force removed the user's file: %v", err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("init --force left a stale file in the SDK folder")
	}
}

// Each language writes its program or config, the SDK it needs and a
// README, naming the pipeline after the folder unless --id says otherwise.
func TestPipelineInitWritesEachLanguage(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		args  []string
		files []string
		id    string
	}{
		{[]string{"my-pipeline"}, []string{"go.mod", "main.go", "README.md", goSDKDir + "/go.mod", goSDKDir + "/builder.go", goSDKDir + "/source.go", goSDKDir + "/extension/server.go"}, "my-pipeline"},
		{[]string{"--language", "python", "--id", "py_pipe", "py"}, []string{"pipeline.py", "README.md", "gofer_sdk/__init__.py", "gofer_sdk/builder.py", "gofer_sdk/py.typed"}, "py_pipe"},
		{[]string{"-l", "json", "json-pipeline"}, []string{"pipeline.json", "README.md"}, "json-pipeline"},
	} {
		dir := filepath.Join(root, tc.args[len(tc.args)-1])
		args := append(append([]string{"pipeline", "init"}, tc.args[:len(tc.args)-1]...), dir)
		code, out, errs := runGofer(t, args...)
		if code != 0 || !strings.Contains(out, "pipeline ["+tc.id+"]") || !strings.Contains(out, "gofer up "+dir) {
			t.Fatalf("gofer %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		for _, f := range tc.files {
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
				t.Errorf("%s: %v", strings.Join(args, " "), err)
			}
		}
		readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
		if !strings.Contains(string(readme), "gofer pipeline run "+tc.id+" --watch") || !strings.Contains(string(readme), "gofer 1.2.3") {
			t.Errorf("%s README.md:\n%s", dir, readme)
		}
		// gofer up finds what was written from the folder alone.
		src, err := pipelineSource(dir)
		if err != nil {
			t.Fatalf("pipelineSource(%s): %v", dir, err)
		}
		if src.goProgram != (tc.files[0] == "go.mod") {
			t.Errorf("pipelineSource(%s) = %+v", dir, src)
		}
	}
	// The Go SDK's tests stay behind: they read files of the Gofer
	// repository.
	matches, _ := filepath.Glob(filepath.Join(root, "my-pipeline", goSDKDir, "*_test.go"))
	if len(matches) > 0 {
		t.Errorf("test files copied: %v", matches)
	}
	mod, _ := os.ReadFile(filepath.Join(root, "my-pipeline", "go.mod"))
	for _, want := range []string{"module example.com/my-pipeline\n", "require " + sdkModule + " v0.0.0\n", "replace " + sdkModule + " => ./" + goSDKDir + "\n"} {
		if !strings.Contains(string(mod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, mod)
		}
	}
	if got := modulePath("--x-y"); got != "example.com/x-y" {
		t.Errorf("modulePath(--x-y) = %q", got)
	}
}

// A folder stands for its Go program, else its pipeline.py, else its
// pipeline.json.
func TestPipelineSourceOfAFolder(t *testing.T) {
	dir := t.TempDir()
	if _, err := pipelineSource(dir); err == nil || !strings.Contains(err.Error(), "without a go.mod, pipeline.py or pipeline.json") {
		t.Fatalf("empty folder: %v", err)
	}
	for _, step := range []struct{ add, want string }{
		{"pipeline.json", "pipeline.json"},
		{"pipeline.py", "pipeline.py"},
		{"go.mod", ""},
	} {
		if err := os.WriteFile(filepath.Join(dir, step.add), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := pipelineSource(dir)
		want := source{path: filepath.Join(dir, step.want)}
		if step.want == "" {
			want = source{path: dir, goProgram: true}
		}
		if err != nil || src != want {
			t.Errorf("with %s: %+v, %v; want %+v", step.add, src, err, want)
		}
	}
}

// Relative PYTHONPATH entries are resolved as Python would in gofer's own
// directory; the empty entry is that directory.
func TestAbsPathList(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	sep := string(os.PathListSeparator)
	got := absPathList("sdk/python" + sep + "/abs/lib" + sep)
	want := filepath.Join(wd, "sdk/python") + sep + "/abs/lib" + sep + wd
	if got != want {
		t.Errorf("absPathList = %q, want %q", got, want)
	}
	if absPathList("") != "" {
		t.Error("an empty PYTHONPATH must stay empty")
	}
}

// gofer up explains the SDK's absence only when go could not find the
// SDK module, not for any failure in a line that names it.
func TestSDKNotFound(t *testing.T) {
	for _, tc := range []struct {
		output string
		want   bool
	}{
		{"main.go:11:2: no required module provides package github.com/goferhq/gofer/sdk/go; to add it:\n\tgo get github.com/goferhq/gofer/sdk/go\n", true},
		{"main.go:11:2: cannot find module providing package github.com/goferhq/gofer/sdk/go: module lookup disabled by GOPROXY=off\n", true},
		{"go: github.com/goferhq/gofer/sdk/go@v0.0.0 (replaced by ./third_party/gofer-sdk): reading third_party/gofer-sdk/go.mod: open third_party/gofer-sdk/go.mod: no such file or directory\n", true},
		{"main.go:12:2: github.com/goferhq/gofer/sdk/go@v0.0.0: replacement directory ./third_party/gofer-sdk does not exist\n", true},
		{"./main.go:6:2: \"github.com/goferhq/gofer/sdk/go\" imported as sdk and not used\n", false},
		{"./main.go:12:3: undefined: notDefinedAnywhere\n", false},
	} {
		if got := sdkNotFound(tc.output); got != tc.want {
			t.Errorf("sdkNotFound(%q) = %v, want %v", tc.output, got, tc.want)
		}
	}
}

// --force never writes or deletes through a symbolic link in DIR: a link
// to a file outside (DIR/main.go) or to a folder outside (DIR/third_party,
// whose SDK folder --force replaces) is refused, and nothing outside
// changes.
func TestPipelineInitForceRefusesSymlinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		link string // the link's name in DIR
		dir  bool   // it points at a folder outside
	}{
		{"file", "main.go", false},
		{"sdk folder", "third_party", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outside := t.TempDir()
			target := filepath.Join(outside, "precious")
			keep := filepath.Join(target, "gofer-sdk", "keep.txt")
			if tc.dir {
				if err := os.MkdirAll(filepath.Dir(keep), 0o755); err != nil {
					t.Fatal(err)
				}
			} else {
				keep = target
			}
			if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "proj")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, tc.link)); err != nil {
				t.Fatal(err)
			}
			code, _, errs := runGofer(t, "pipeline", "init", "--force", dir)
			if code != 1 || !strings.Contains(errs, filepath.Join(dir, tc.link)+" is a symbolic link") {
				t.Errorf("init --force with %s a link: exit %d, %q; want it refused, naming the link", tc.link, code, errs)
			}
			if got, err := os.ReadFile(keep); err != nil || string(got) != "mine" {
				t.Errorf("the file outside DIR: %q, %v; want it untouched", got, err)
			}
			if _, err := os.Lstat(filepath.Join(dir, "go.mod")); err == nil {
				t.Error("go.mod written although the init was refused")
			}
		})
	}
}

// The Go project's go line (and its SDK copy's) is what the SDK needs, not
// the Go that built gofer: a line newer than the user's toolchain makes
// the go command download another one, which fails offline. Every
// supported Go (1.25 and later) must build it without switching, and the
// SDK must use nothing newer than the line says (go vet's stdversion and
// the compiler's -lang check it).
func TestPipelineInitGoLineFitsOlderToolchains(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "older-go")
	if code, out, errs := runGofer(t, "pipeline", "init", dir); code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, errs)
	}
	for _, mod := range []string{"go.mod", filepath.Join(filepath.FromSlash(goSDKDir), "go.mod")} {
		raw, err := os.ReadFile(filepath.Join(dir, mod))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(raw)
		if m == nil || version.Compare("go"+string(m[1]), "go1.25.0") > 0 {
			t.Errorf("%s:\n%s\nwant a go line of at most 1.25.0, so older toolchains build it without a download", mod, raw)
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to vet the project with")
	}
	cmd := exec.Command(goTool, "vet", "./...", sdkModule+"/...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOPROXY=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go vet in the project: %v\n%s", err, out)
	}
}

// --force refuses to write a project into a folder whose other entry
// file `gofer up DIR` would pick first (a go.mod beside a new
// pipeline.py), and writes nothing; one that comes after (a
// pipeline.json beside a new Go project) is fine.
func TestPipelineInitForceRefusesAnotherLanguage(t *testing.T) {
	for _, tc := range []struct {
		existing, lang string
		refused        bool
	}{
		{"go.mod", "python", true},
		{"go.mod", "json", true},
		{"pipeline.py", "json", true},
		{"pipeline.json", "python", false},
		{"pipeline.py", "go", false},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, tc.existing), []byte("module x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errs := runGofer(t, "pipeline", "init", "--force", "--id", "mixed", "-l", tc.lang, dir)
		if tc.refused {
			if code != 1 || !strings.Contains(errs, "holds "+tc.existing) {
				t.Errorf("-l %s beside %s: exit %d, %q; want it refused naming %s", tc.lang, tc.existing, code, errs, tc.existing)
			}
			if _, err := os.Stat(filepath.Join(dir, "README.md")); err == nil {
				t.Errorf("-l %s beside %s: README.md written although refused", tc.lang, tc.existing)
			}
			continue
		}
		if code != 0 {
			t.Errorf("-l %s beside %s: exit %d, %q; want it written", tc.lang, tc.existing, code, errs)
		} else if src, err := pipelineSource(dir); err != nil || src.goProgram != (tc.lang == "go") {
			t.Errorf("-l %s beside %s: gofer up would read %+v, %v", tc.lang, tc.existing, src, err)
		}
	}
}
