package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs tracks every process the benchmark starts so that all of them are
// killed at the end, on an error and on Ctrl-C. Each pid is also appended
// to a pid file that run.sh reads in its trap, in case this program itself
// is killed (children also get SIGKILL through Pdeathsig).
type procs struct {
	mu      sync.Mutex
	live    map[*proc]bool
	pidFile string
	closed  bool
}

func newProcs(pidFile string) *procs {
	return &procs{live: map[*proc]bool{}, pidFile: pidFile}
}

// proc is one child process that can be killed and started again with the
// same command line.
type proc struct {
	reg     *procs
	name    string
	bin     string
	args    []string
	env     []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (r *procs) newProc(name, bin string, args, env []string, logPath string) *proc {
	return &proc{reg: r, name: name, bin: bin, args: args, env: env, logPath: logPath}
}

// start launches the process; its output goes (appended) to logPath.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.name)
	}
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "\n===== %s %s %s\n", time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	p.reg.mu.Lock()
	if p.reg.closed {
		p.reg.mu.Unlock()
		log.Close()
		return fmt.Errorf("shutting down")
	}
	err = cmd.Start()
	if err == nil {
		p.reg.live[p] = true
		p.reg.recordPID(cmd.Process.Pid)
	}
	p.reg.mu.Unlock()
	if err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

func (r *procs) recordPID(pid int) {
	if r.pidFile == "" {
		return
	}
	f, err := os.OpenFile(r.pidFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, pid)
	f.Close()
}

// kill sends SIGKILL to the process (and its process group) and waits
// until it is gone.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "warning: %s (pid %d) did not exit after SIGKILL\n", p.name, cmd.Process.Pid)
	}
	p.reg.mu.Lock()
	delete(p.reg.live, p)
	p.reg.mu.Unlock()
}

// signal sends sig to the process's group (SIGSTOP, SIGCONT).
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}

// pid returns the running process id, or 0.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// running reports whether the process is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// killAll kills every live process and refuses new starts.
func (r *procs) killAll() {
	r.mu.Lock()
	r.closed = true
	var all []*proc
	for p := range r.live {
		all = append(all, p)
	}
	r.mu.Unlock()
	for _, p := range all {
		p.kill()
	}
}

// tail returns the last n lines of a log file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// freePort finds a loopback port not handed out before in this run.
func freePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for i := 0; i < 100; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !usedPorts[port] {
			usedPorts[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port")
}

// waitFor retries fn until it succeeds or timeout passes.
func waitFor(timeout time.Duration, what string, fn func() error) error {
	deadline := time.Now().Add(timeout)
	delay := 20 * time.Millisecond
	var last error
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			if last != nil {
				err = fmt.Errorf("%w (before that: %v)", err, last)
			}
		} else {
			last = err
		}
		var fe fatalError
		if errors.As(err, &fe) {
			return fmt.Errorf("%s: %w", what, fe.error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: gave up after %s: %w", what, timeout, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, 250*time.Millisecond)
	}
}

// fatalError stops waitFor at once: retrying cannot help (a process died).
type fatalError struct{ error }

// exited is a fatalError if p is not running, with the end of its log.
func exited(p *proc) error {
	if p.running() {
		return nil
	}
	return fatalError{fmt.Errorf("%s exited:\n%s", p.name, tail(p.logPath, 15))}
}
