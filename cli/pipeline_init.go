package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	sdk "github.com/goferhq/gofer/sdk/go"
	pythonsdk "github.com/goferhq/gofer/sdk/python"
)

// `gofer pipeline init` writes a pipeline project that builds and
// registers with nothing but this binary and a toolchain: no module proxy,
// no pip. The SDKs are not published anywhere a user's go.mod or pip could
// fetch them, so the project carries a copy of the SDK this binary was
// built with (embedded by sdk/go and sdk/python themselves, see their
// Source and Files), which therefore always matches the server.

// goSDKDir is where a Go project keeps its copy of the SDK; its go.mod
// replaces the SDK module with this folder. third_party, not internal: the
// copy is a module of its own (it has a go.mod), not a package of the
// project.
const goSDKDir = "third_party/gofer-sdk"

// scaffoldImage is the image the scaffolded tasks use: the local busybox
// image `make images` builds (it has sh), as in examples/.
const scaffoldImage = "gofer/busybox:latest"

var initLanguages = []string{"go", "python", "json"}

func pipelineInitCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "write a new pipeline project (Go, Python or JSON) into DIR, with the SDK it needs",
		ArgsUsage: "DIR",
		Description: `Writes a two-task pipeline and a README with the next commands into DIR (created if
missing). A Go project gets go.mod, main.go and a copy of the Go SDK in ` + goSDKDir + `
(go.mod replaces the SDK module with it, so go build needs no module proxy); a Python
project gets pipeline.py and the Python SDK in gofer_sdk/ (python3 alone runs it); a
JSON project gets pipeline.json. The SDK copied is the one this gofer was built with.
Then: gofer up DIR.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "language", Aliases: []string{"l"}, Value: "go", Usage: "go, python or json"},
			&cli.StringFlag{Name: "id", Usage: "the pipeline id (default: DIR's name)"},
			&cli.BoolFlag{Name: "force", Usage: "write into DIR even if it is not empty (files of the same name are overwritten, the SDK folder replaced)"},
		},
		Action: pipelineInit,
	}
}

// projectFile is one file of a scaffolded project, its path relative to
// the project folder and slash-separated.
type projectFile struct {
	path string
	data []byte
}

func pipelineInit(c *cli.Context) error {
	if err := args(c, 1); err != nil {
		return err
	}
	p, err := out(c)
	if err != nil {
		return err
	}
	lang := c.String("language")
	if !contains(initLanguages, lang) {
		return usageError(c, "--language %q must be one of %s", lang, strings.Join(initLanguages, ", "))
	}
	dir := c.Args().First()
	id := c.String("id")
	if id == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		id = filepath.Base(abs)
		if err := sdk.ValidateIdentifier(id); err != nil {
			return usageError(c, "pipeline id from the folder name: %v; choose one with --id", err)
		}
	} else if err := sdk.ValidateIdentifier(id); err != nil {
		return usageError(c, "--id: %v", err)
	}
	if err := checkProjectDir(dir, c.Bool("force")); err != nil {
		return err
	}
	if err := checkNoOtherEntry(dir, lang); err != nil {
		return err
	}
	version, _, _ := strings.Cut(c.App.Version, " ")
	files, replaced, err := scaffold(lang, id, version)
	if err != nil {
		return err
	}
	if err := writeProject(dir, files, replaced); err != nil {
		return err
	}
	written := make([]string, len(files))
	for i, f := range files {
		written[i] = f.path
	}
	if p.format != "plain" {
		return p.result("", map[string]any{"dir": dir, "language": lang, "pipeline_id": id, "files": written}, nil, nil)
	}
	p.message("✓ Wrote a %s pipeline project for pipeline [%s] into %s:", langName(lang), id, dir)
	for _, line := range summarizeFiles(written) {
		p.message("    %s", line)
	}
	p.message("")
	p.message("  Register and deploy it:  gofer up %s", dir)
	p.message("  Start a run:             gofer pipeline run %s --watch", id)
	p.message("  Or run it without a server, on local Docker: gofer run local %s", dir)
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func langName(lang string) string {
	switch lang {
	case "go":
		return "Go"
	case "python":
		return "Python"
	}
	return "JSON"
}

// entryFiles are the files by which `gofer up DIR` picks a folder's
// language, first match wins (pipelineSource).
var entryFiles = []struct{ name, lang string }{{"go.mod", "go"}, {"pipeline.py", "python"}, {"pipeline.json", "json"}}

// checkNoOtherEntry refuses to write a lang project (with --force) into a
// folder that holds another language's entry file that `gofer up DIR`
// would pick before the new project's own: a Python project written
// beside a go.mod would still be built as Go.
func checkNoOtherEntry(dir, lang string) error {
	for _, e := range entryFiles {
		if e.lang == lang {
			return nil
		}
		if st, err := os.Lstat(filepath.Join(dir, e.name)); err == nil && !st.IsDir() {
			return fmt.Errorf("%s holds %s, so 'gofer up %s' would run that %s project instead of this %s one: remove %s first, or give another folder",
				dir, e.name, dir, langName(e.lang), langName(lang), e.name)
		}
	}
	return nil
}

// checkProjectDir refuses a path that is a file, and a folder that holds
// anything unless force: a new project should not mix with other files.
func checkProjectDir(dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		if st, serr := os.Stat(dir); serr == nil && !st.IsDir() {
			return fmt.Errorf("%s is a file, not a folder: give a new or empty folder for the project", dir)
		}
		return err
	case len(entries) > 0 && !force:
		names := make([]string, 0, 3)
		for _, e := range entries[:min(3, len(entries))] {
			names = append(names, e.Name())
		}
		more := ""
		if len(entries) > 3 {
			more = ", …"
		}
		return fmt.Errorf("%s is not empty (it holds %s%s): give a new or empty folder, or --force to write the project's files into it (files of the same name are overwritten)",
			dir, strings.Join(names, ", "), more)
	}
	return nil
}

// scaffold returns the project's files and the folders that hold a copy of
// an SDK (written afresh, so that --force leaves no stale SDK file).
func scaffold(lang, id, version string) ([]projectFile, []string, error) {
	render := strings.NewReplacer("{{ID}}", id, "{{IMAGE}}", scaffoldImage, "{{VERSION}}", version, "{{SDK_DIR}}", goSDKDir)
	readme := projectFile{"README.md", []byte(render.Replace(readmeIntro + readmeByLanguage[lang]))}
	switch lang {
	case "go":
		sdkFiles, goVersion, err := goSDKFiles()
		if err != nil {
			return nil, nil, err
		}
		gomod := fmt.Sprintf("module %s\n\ngo %s\n\nrequire %s v0.0.0\n\n// The SDK is not on any module proxy: this copy (from gofer %s) is it.\nreplace %s => ./%s\n",
			modulePath(id), goVersion, sdkModule, version, sdkModule, goSDKDir)
		files := []projectFile{{"go.mod", []byte(gomod)}, {"main.go", []byte(render.Replace(goMainTemplate))}, readme}
		return append(files, sdkFiles...), []string{goSDKDir}, nil
	case "python":
		pyFiles, err := fsFiles(pythonsdk.Files(), "", func(string) bool { return true })
		if err != nil {
			return nil, nil, err
		}
		files := []projectFile{{"pipeline.py", []byte(render.Replace(pythonTemplate))}, readme}
		return append(files, pyFiles...), []string{"gofer_sdk"}, nil
	}
	raw, err := scaffoldPipeline(id).JSON()
	if err != nil {
		return nil, nil, err
	}
	return []projectFile{{"pipeline.json", append(raw, '\n')}, readme}, nil, nil
}

// modulePath names a Go project's module after its pipeline, under
// example.com (Go's own placeholder for "yours to name"). An element of an
// import path must not start with '-', which an id may.
func modulePath(id string) string {
	name := strings.TrimLeft(id, "-")
	if name == "" {
		name = "pipeline"
	}
	return "example.com/" + name
}

// scaffoldPipeline is the pipeline every language's project describes;
// the Go and Python templates below build the same one.
func scaffoldPipeline(id string) *sdk.Pipeline {
	return sdk.NewPipeline(id, id).
		Description("Two tasks: build, then test once build has succeeded.").
		Tasks(
			sdk.NewTask("build", scaffoldImage).Script("echo building in run $GOFER_RUN_ID"),
			sdk.NewTask("test", scaffoldImage).Command("echo", "testing").DependsOn("build", sdk.Success),
		)
}

// goSDKFiles is the Go SDK without its tests (they read golden files that
// stay in the Gofer repository), under goSDKDir, and the go version its
// go.mod names.
func goSDKFiles() ([]projectFile, string, error) {
	files, err := fsFiles(sdk.Source(), goSDKDir, func(name string) bool { return !strings.HasSuffix(name, "_test.go") })
	if err != nil {
		return nil, "", err
	}
	mod, err := fs.ReadFile(sdk.Source(), "go.mod")
	if err != nil {
		return nil, "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(mod))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "go "); ok {
			return files, strings.TrimSpace(v), nil
		}
	}
	return nil, "", errors.New("the embedded Go SDK's go.mod names no go version")
}

// fsFiles reads every file of fsys that keep accepts, under prefix.
func fsFiles(fsys fs.FS, prefix string, keep func(name string) bool) ([]projectFile, error) {
	var files []projectFile
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !keep(name) {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		files = append(files, projectFile{path.Join(prefix, name), data})
		return nil
	})
	return files, err
}

// writeProject writes files into dir, emptying the folders in replaced
// first. Everything goes through an os.Root, and a symbolic link on the
// way to any file it writes or folder it replaces is refused before
// anything changes: with --force, DIR may hold a link (DIR/main.go,
// DIR/third_party) through which a write or the SDK folder's removal would
// land outside the project.
func writeProject(dir string, files []projectFile, replaced []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	paths := append([]string(nil), replaced...)
	for _, f := range files {
		if !underAny(f.path, replaced) {
			paths = append(paths, f.path)
		}
	}
	if err := refuseSymlinks(root, dir, paths); err != nil {
		return err
	}
	for _, r := range replaced {
		if err := root.RemoveAll(filepath.FromSlash(r)); err != nil {
			return err
		}
	}
	for _, f := range files {
		name := filepath.FromSlash(f.path)
		if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		if err := root.WriteFile(name, f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// underAny reports whether slash path p lies inside one of dirs.
func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// refuseSymlinks returns an error naming the first symbolic link found at
// any of paths (slash paths inside root) or at a folder on the way to one.
func refuseSymlinks(root *os.Root, dir string, paths []string) error {
	checked := map[string]bool{}
	for _, p := range paths {
		parts := strings.Split(p, "/")
		for i := range parts {
			sub := strings.Join(parts[:i+1], "/")
			if checked[sub] {
				continue
			}
			checked[sub] = true
			fi, err := root.Lstat(filepath.FromSlash(sub))
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				return err
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s is a symbolic link: pipeline init does not write through links (the write would land outside the project); remove it or give another folder",
					filepath.Join(dir, filepath.FromSlash(sub)))
			}
		}
	}
	return nil
}

// summarizeFiles lists the files at the project's top level and counts
// those in each folder, so a copied SDK takes one line.
func summarizeFiles(paths []string) []string {
	var top []string
	inDir := map[string]int{}
	for _, p := range paths {
		if d, _, ok := strings.Cut(p, "/"); ok {
			if strings.HasPrefix(p, goSDKDir+"/") {
				d = goSDKDir
			}
			inDir[d]++
			continue
		}
		top = append(top, p)
	}
	dirs := make([]string, 0, len(inDir))
	for d := range inDir {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		top = append(top, fmt.Sprintf("%s/ (the SDK, %s)", d, plural(inDir[d], "file")))
	}
	return top
}

const goMainTemplate = `// The {{ID}} pipeline: two tasks, build and then test. gofer up builds
// this program, registers the config JSON it prints and deploys it.
//
//	gofer up .                          # register and deploy
//	gofer pipeline run {{ID}} --watch
//	gofer run local .                   # or run it once on local Docker
package main

import (
	"os"

	sdk "github.com/goferhq/gofer/sdk/go"
)

func main() {
	err := sdk.NewPipeline("{{ID}}", "{{ID}}").
		Description("Two tasks: build, then test once build has succeeded.").
		Tasks(
			sdk.NewTask("build", "{{IMAGE}}").
				Script("echo building in run $GOFER_RUN_ID"),
			sdk.NewTask("test", "{{IMAGE}}").
				Command("echo", "testing").
				DependsOn("build", sdk.Success),
		).Finish()
	if err != nil {
		os.Exit(1) // Finish printed the error on stderr
	}
}
`

const pythonTemplate = `"""The {{ID}} pipeline: two tasks, build and then test. gofer up runs this
program with python3, registers the config JSON it prints and deploys it.

    gofer up .                          # register and deploy
    gofer pipeline run {{ID}} --watch
    gofer run local .                   # or run it once on local Docker
"""
from gofer_sdk import Pipeline, Task, SUCCESS

Pipeline("{{ID}}", "{{ID}}").description(
    "Two tasks: build, then test once build has succeeded."
).tasks(
    Task("build", "{{IMAGE}}").script("echo building in run $GOFER_RUN_ID"),
    Task("test", "{{IMAGE}}").command("echo", "testing").depends_on("build", SUCCESS),
).finish()
`

const readmeIntro = "# {{ID}}\n\nA Gofer pipeline, written by `gofer pipeline init` (gofer {{VERSION}}). Next:\n\n" +
	"```sh\n" +
	"gofer up .                        # register the pipeline and deploy it\n" +
	"gofer pipeline run {{ID}} --watch\n" +
	"gofer run local .                 # or run it once on the local Docker engine, no server\n" +
	"```\n\n" +
	"The tasks use `{{IMAGE}}`, the local image `make images` builds in a Gofer checkout; any image\n" +
	"with `sh` will do. See docs/pipelines.md in the Gofer repository for everything a pipeline can say.\n\n"

var readmeByLanguage = map[string]string{
	"go": "`main.go` is the pipeline. `{{SDK_DIR}}` is the Go SDK (`github.com/goferhq/gofer/sdk/go`,\n" +
		"standard library only) copied from that gofer: the SDK is not published on a module proxy, so `go.mod`\n" +
		"requires it and replaces it with this folder. `go build` needs no network and no `go.sum`.\n" +
		"To take the SDK of a newer gofer: run its `gofer pipeline init` in a scratch folder and copy that\n" +
		"`{{SDK_DIR}}` over this one.\n",
	"python": "`pipeline.py` is the pipeline. `gofer_sdk/` is the Python SDK (standard library only) copied\n" +
		"from that gofer; `python3 pipeline.py` finds it next to the program, so nothing needs installing.\n" +
		"To take the SDK of a newer gofer: run its `gofer pipeline init --language python` in a scratch folder\n" +
		"and copy that `gofer_sdk/` over this one.\n",
	"json": "`pipeline.json` is the pipeline's config, exactly what gofer up registers. Its fields are in\n" +
		"docs/pipelines.md; `gofer up` checks it before sending it.\n",
}
