package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sdk "github.com/goferhq/gofer/sdk/go"
)

// loadPipeline turns PATH into a validated pipeline config: a folder with
// a Go program (built and run with the local toolchain), a .json config,
// or a .py program using the Python SDK. A folder without a go.mod stands
// for its pipeline.py, or else its pipeline.json (what `gofer pipeline
// init` writes), so `gofer up DIR` works for every language. Programs
// print the config JSON on stdout; their build and run output goes behind
// a spinner and is shown in full, with the command to reproduce, if they
// fail.
func loadPipeline(ctx context.Context, path string, status io.Writer) (*sdk.PipelineConfig, error) {
	src, err := pipelineSource(path)
	if err != nil {
		return nil, err
	}
	var raw []byte
	switch {
	case src.goProgram:
		raw, err = runGoProgram(ctx, src.path, status)
	case strings.HasSuffix(src.path, ".json"):
		raw, err = os.ReadFile(src.path)
	default:
		raw, err = runPythonProgram(ctx, src.path, status)
	}
	if err != nil {
		return nil, err
	}
	cfg, err := sdk.DecodeConfig(bytes.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("%s did not produce a pipeline config: %w", src.path, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", src.path, err)
	}
	return cfg, nil
}

// source is what loadPipeline reads: a Go program folder, or a .py or
// .json file.
type source struct {
	path      string
	goProgram bool
}

const notASource = "gofer up takes a Go program folder, a .json config or a .py program (`gofer pipeline init DIR` writes a new one)"

// pipelineSource finds the program or config PATH stands for. A folder's
// go.mod wins over its pipeline.py, which wins over its pipeline.json: the
// JSON beside a program is usually that program's output.
func pipelineSource(path string) (source, error) {
	info, err := os.Stat(path)
	if err != nil {
		return source{}, fmt.Errorf("%s: %w", path, err)
	}
	if !info.IsDir() {
		if strings.HasSuffix(path, ".json") || strings.HasSuffix(path, ".py") {
			return source{path: path}, nil
		}
		return source{}, fmt.Errorf("%s: %s", path, notASource)
	}
	if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
		return source{path: path, goProgram: true}, nil
	}
	for _, name := range []string{"pipeline.py", "pipeline.json"} {
		file := filepath.Join(path, name)
		if st, err := os.Stat(file); err == nil && !st.IsDir() {
			return source{path: file}, nil
		}
	}
	return source{}, fmt.Errorf("%s is a folder without a go.mod, pipeline.py or pipeline.json: %s", path, notASource)
}

func pythonInterpreter() string {
	if p := os.Getenv("GOFER_PYTHON"); p != "" {
		return p
	}
	return "python3"
}

// runPythonProgram runs file with python3 in the file's folder, so that a
// gofer_sdk copied next to it (what `gofer pipeline init` does) is found
// and the program's own relative paths mean what they mean to its author.
// Python resolves relative PYTHONPATH entries against its working
// directory, which is then not the user's: they are made absolute first,
// against the directory gofer runs in, so `PYTHONPATH=sdk/python gofer up
// examples/python/pipeline.py` finds what `PYTHONPATH=sdk/python python3
// examples/python/pipeline.py` finds.
func runPythonProgram(ctx context.Context, file string, status io.Writer) ([]byte, error) {
	var env []string
	if v, ok := os.LookupEnv("PYTHONPATH"); ok {
		if abs := absPathList(v); abs != v {
			env = []string{"PYTHONPATH=" + abs}
		}
	}
	raw, err := runProgram(ctx, status, "running "+file, filepath.Dir(file), env, pythonInterpreter(), filepath.Base(file))
	var perr *programError
	if errors.As(err, &perr) && strings.Contains(perr.output, "No module named 'gofer_sdk'") {
		perr.hint = "gofer_sdk is not importable from " + filepath.Dir(file) + ". Copy the SDK next to your program: " +
			"`gofer pipeline init --language python NEWDIR` writes a project holding it (NEWDIR/gofer_sdk), " +
			"or set PYTHONPATH to the sdk/python folder of a Gofer checkout (see docs/pipelines.md)."
	}
	return raw, err
}

// absPathList makes every relative entry of a PATH-style list absolute
// against the current directory, as Python itself would (an empty entry is
// the current directory).
func absPathList(list string) string {
	if list == "" {
		return list
	}
	entries := filepath.SplitList(list)
	for i, e := range entries {
		if filepath.IsAbs(e) {
			continue
		}
		if abs, err := filepath.Abs(e); err == nil {
			entries[i] = abs
		}
	}
	return strings.Join(entries, string(os.PathListSeparator))
}

// sdkModule is the Go SDK's module path. It is not published on any module
// proxy, so a go.mod that only requires it cannot build.
const sdkModule = "github.com/goferhq/gofer/sdk/go"

// sdkNotFound reports whether go build failed because it could not find
// or fetch the SDK module, as opposed to, say, a compile error in a line
// that imports it.
func sdkNotFound(output string) bool {
	for _, line := range strings.Split(output, "\n") {
		if !strings.Contains(line, sdkModule) {
			continue
		}
		for _, sign := range []string{"no required module", "go get", "cannot find module", "module lookup disabled",
			"missing go.sum entry", "replaced by", "replacement directory", "unrecognized import path", "reading "} {
			if strings.Contains(line, sign) {
				return true
			}
		}
	}
	return false
}

// runGoProgram builds the program in dir and runs it, returning its stdout.
func runGoProgram(ctx context.Context, dir string, status io.Writer) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "gofer-pipeline-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "pipeline")
	_, err = runProgram(ctx, status, "building "+dir, dir, nil, "go", "build", "-o", bin, ".")
	if err == nil {
		var out []byte
		if out, err = runProgram(ctx, status, "running "+dir, dir, nil, bin); err == nil {
			return out, nil
		}
	}
	var pe *programError
	if errors.As(err, &pe) {
		// The binary is gone once this returns: the line to reproduce with
		// builds and runs the program again, which shows a build error and a
		// run error alike.
		pe.reproduce = reproduceLine(dir, nil, "go", []string{"run", "."})
		// The go tool's advice for a module it cannot find is `go get`,
		// which cannot work for the SDK: say what does.
		if sdkNotFound(pe.output) {
			pe.hint = "The Go SDK (" + sdkModule + ") is not published on a module proxy, so `go get` cannot fetch it. " +
				"Keep a copy in your project and point go.mod at it:\n" +
				"    require " + sdkModule + " v0.0.0\n" +
				"    replace " + sdkModule + " => ./third_party/gofer-sdk\n" +
				"`gofer pipeline init NEWDIR` writes such a project, the SDK of this gofer included (see docs/pipelines.md)."
		}
	}
	return nil, err
}

// programError is a build or run failure: the whole output and how to
// reproduce it.
type programError struct {
	what, reproduce string
	output          string
	err             error
	// hint, when set, says what usually fixes this failure.
	hint string
}

func (e *programError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed: %v\n", e.what, e.err)
	if out := strings.TrimRight(e.output, "\n"); out != "" {
		fmt.Fprintf(&b, "\n%s\n", out)
	}
	fmt.Fprintf(&b, "\nreproduce with: %s", e.reproduce)
	if e.hint != "" {
		fmt.Fprintf(&b, "\n\n%s", e.hint)
	}
	return b.String()
}

// runProgram runs name args in dir, with env (KEY=VALUE) added to gofer's
// environment, and returns its stdout. Its stderr is summarised on status
// (a spinner with the last line, when status is a terminal) and returned
// in full inside the error if it fails.
func runProgram(ctx context.Context, status io.Writer, what, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderrR, stderrW := io.Pipe()
	cmd.Stderr = stderrW
	spin := newSpinner(status, what)
	var full bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderrR)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			full.WriteString(sc.Text() + "\n")
			spin.note(sc.Text())
		}
	}()
	err := cmd.Run()
	stderrW.Close()
	wg.Wait()
	spin.stop(err == nil)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			err = fmt.Errorf("%s is not installed or not on PATH", name)
		}
		output := full.String()
		if err != nil && stdout.Len() > 0 && !strings.HasPrefix(what, "building") {
			output += stdout.String()
		}
		return nil, &programError{what: what, reproduce: reproduceLine(dir, env, name, args), output: output, err: err}
	}
	return stdout.Bytes(), nil
}

func reproduceLine(dir string, env []string, name string, args []string) string {
	parts := make([]string, 0, len(env)+1+len(args))
	for _, e := range env {
		parts = append(parts, shellAssignment(e))
	}
	parts = append(parts, shellWord(name))
	for _, a := range args {
		parts = append(parts, shellWord(a))
	}
	return fmt.Sprintf("(cd %s && %s)", shellWord(dir), strings.Join(parts, " "))
}

// shellAssignment quotes a NAME=value environment word so the shell still
// reads it as an assignment: only the value is quoted ('PYTHONPATH=/a b'
// would be a command name). A word whose NAME is not a shell name is
// quoted whole.
func shellAssignment(kv string) string {
	name, value, ok := strings.Cut(kv, "=")
	if !ok || !isShellName(name) {
		return shellWord(kv)
	}
	if value == "" {
		return name + "="
	}
	return name + "=" + shellWord(value)
}

// isShellName reports whether s is a POSIX shell variable name.
func isShellName(s string) bool {
	for i, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')) {
			return false
		}
	}
	return s != ""
}

// shellWord quotes s for a POSIX shell when it holds anything but plain
// path characters, so the reproduce line can be pasted as it is.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// spinner shows progress on a terminal and stays silent otherwise.
type spinner struct {
	w      io.Writer
	what   string
	active bool
	mu     sync.Mutex
	last   string
	done   chan struct{}
}

func newSpinner(w io.Writer, what string) *spinner {
	s := &spinner{w: w, what: what, done: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			s.active = true
			go s.loop()
		}
	}
	return s
}

func (s *spinner) loop() {
	frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.mu.Lock()
			line := s.last
			s.mu.Unlock()
			if len(line) > 60 {
				line = line[:60] + "…"
			}
			fmt.Fprintf(s.w, "\r\033[K%s %s %s", frames[i%len(frames)], s.what, line)
		}
	}
}

func (s *spinner) note(line string) {
	s.mu.Lock()
	s.last = line
	s.mu.Unlock()
}

func (s *spinner) stop(ok bool) {
	if !s.active {
		return
	}
	close(s.done)
	mark := "✓"
	if !ok {
		mark = "✗"
	}
	fmt.Fprintf(s.w, "\r\033[K%s %s\n", mark, s.what)
}
