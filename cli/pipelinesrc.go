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
// or a .py program using the Python SDK. Programs print the config JSON
// on stdout; their build and run output goes behind a spinner and is
// shown in full, with the command to reproduce, if they fail.
func loadPipeline(ctx context.Context, path string, status io.Writer) (*sdk.PipelineConfig, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var raw []byte
	switch {
	case info.IsDir():
		if _, err := os.Stat(filepath.Join(path, "go.mod")); err != nil {
			return nil, fmt.Errorf("%s is a folder without a go.mod: gofer up takes a Go program folder, a .json config or a .py program", path)
		}
		raw, err = runGoProgram(ctx, path, status)
	case strings.HasSuffix(path, ".json"):
		raw, err = os.ReadFile(path)
	case strings.HasSuffix(path, ".py"):
		raw, err = runProgram(ctx, status, "running "+path, filepath.Dir(path), pythonInterpreter(), filepath.Base(path))
	default:
		return nil, fmt.Errorf("%s: gofer up takes a Go program folder, a .json config or a .py program", path)
	}
	if err != nil {
		return nil, err
	}
	cfg, err := sdk.DecodeConfig(bytes.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("%s did not produce a pipeline config: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func pythonInterpreter() string {
	if p := os.Getenv("GOFER_PYTHON"); p != "" {
		return p
	}
	return "python3"
}

// runGoProgram builds the program in dir and runs it, returning its stdout.
func runGoProgram(ctx context.Context, dir string, status io.Writer) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "gofer-pipeline-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "pipeline")
	_, err = runProgram(ctx, status, "building "+dir, dir, "go", "build", "-o", bin, ".")
	if err == nil {
		var out []byte
		if out, err = runProgram(ctx, status, "running "+dir, dir, bin); err == nil {
			return out, nil
		}
	}
	// The binary is gone once this returns: the line to reproduce with
	// builds and runs the program again, which shows a build error and a
	// run error alike.
	var pe *programError
	if errors.As(err, &pe) {
		pe.reproduce = reproduceLine(dir, "go", []string{"run", "."})
	}
	return nil, err
}

// programError is a build or run failure: the whole output and how to
// reproduce it.
type programError struct {
	what, reproduce string
	output          string
	err             error
}

func (e *programError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed: %v\n", e.what, e.err)
	if out := strings.TrimRight(e.output, "\n"); out != "" {
		fmt.Fprintf(&b, "\n%s\n", out)
	}
	fmt.Fprintf(&b, "\nreproduce with: %s", e.reproduce)
	return b.String()
}

// runProgram runs name args in dir and returns its stdout. Its stderr is
// summarised on status (a spinner with the last line, when status is a
// terminal) and returned in full inside the error if it fails.
func runProgram(ctx context.Context, status io.Writer, what, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
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
		return nil, &programError{what: what, reproduce: reproduceLine(dir, name, args), output: output, err: err}
	}
	return stdout.Bytes(), nil
}

func reproduceLine(dir, name string, args []string) string {
	parts := append([]string{name}, args...)
	for i, p := range parts {
		parts[i] = shellWord(p)
	}
	return fmt.Sprintf("(cd %s && %s)", shellWord(dir), strings.Join(parts, " "))
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
