// Package local runs one pipeline on the local Docker engine without a
// server: `gofer run local`. It is the same executor the leader runs,
// over an in-process FSM with no raft, so conditions, skips, timeouts,
// retries and the task environment behave exactly as on a cluster.
package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/executor"
	"github.com/goferhq/gofer/agent/executor/mask"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/docker"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// Options describe one local run.
type Options struct {
	Config    *sdk.PipelineConfig
	Variables map[string]string
	// Values for the interpolation markers the pipeline's variables use.
	PipelineSecrets map[string]string
	GlobalSecrets   map[string]string
	PipelineObjects map[string]string
	RunObjects      map[string]string
	// DockerHost overrides DOCKER_HOST; Network is the containers' network
	// mode ("bridge" by default).
	DockerHost string
	Network    string
	// Out receives the tasks' output, each line prefixed with its task.
	Out io.Writer
	// Logger receives the executor's own log (warnings only by default).
	Logger hclog.Logger
	// Scheduler replaces Docker (tests).
	Scheduler scheduler.Scheduler
}

// Result is how the run ended.
type Result struct {
	Run   *model.Run
	Tasks []*model.TaskExecution
}

// ErrMissingValues is wrapped when a marker has no value.
var ErrMissingValues = errors.New("missing values for the pipeline's secrets or objects")

// Run executes the pipeline once and returns when it is complete. If ctx
// ends first (Ctrl-C), the run is cancelled, its containers are stopped,
// and Run returns the cancelled result.
func Run(ctx context.Context, opts Options) (*Result, error) {
	cfg, secrets, err := interpolate(opts)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "gofer", Level: hclog.Warn, Output: os.Stderr})
	}
	sched := opts.Scheduler
	if sched == nil {
		d, err := docker.New(docker.Options{Host: opts.DockerHost, Network: opts.Network, Logger: opts.Logger})
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = d.Check(cctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("gofer run local needs a Docker engine: %w", err)
		}
		sched = d
	}

	dir, err := os.MkdirTemp("", "gofer-local-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "state.db"), store.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	f, err := fsm.New(db, store.Options{NoSync: true}, opts.Logger)
	if err != nil {
		db.Close()
		return nil, err
	}
	defer func() { f.Flush(); db.Close() }()
	ap := &fsm.Direct{FSM: f, Actor: "local"}

	clusterID := "local-" + randomHex(6)
	now := time.Now().UnixMilli()
	steps := []struct {
		t    fsm.CommandType
		body any
	}{
		{fsm.CmdClusterInit, fsm.ClusterInit{ClusterID: clusterID, Roles: model.BuiltinRoles(now), Namespace: model.Namespace{ID: model.DefaultNamespace, Name: "Default"}}},
		{fsm.CmdConfigRegister, fsm.ConfigRegister{NamespaceID: model.DefaultNamespace, Config: cfg}},
		{fsm.CmdConfigDeploy, fsm.ConfigDeploy{NamespaceID: model.DefaultNamespace, PipelineID: cfg.ID, Version: 1}},
		{fsm.CmdRunCreate, fsm.RunCreate{NamespaceID: model.DefaultNamespace, PipelineID: cfg.ID, Variables: opts.Variables,
			Initiator: model.Initiator{User: "local"}}},
	}
	for _, s := range steps {
		res, err := ap.Apply(ctx, s.t, s.body)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			return nil, fmt.Errorf("prepare the run: %w", err)
		}
	}

	execCtx, stopExec := context.WithCancel(context.Background())
	ex := executor.New(executor.Config{
		ClusterID: clusterID, Term: 1, LogMaxBytes: 64 << 20, StopGrace: 10 * time.Second,
		APIURLs: func() []string { return nil },
	}, leadership.Deps{State: f, Apply: ap, Logger: opts.Logger.Named("executor")}, sched)
	execDone := make(chan struct{})
	go func() { defer close(execDone); _ = ex.Run(execCtx) }()

	printer := newLogPrinter(opts.Out, secrets)
	result, err := waitAndPrint(ctx, f, ap, cfg.ID, printer)
	stopExec()
	<-execDone
	removeLeftovers(sched, clusterID)
	return result, err
}

// waitAndPrint streams the tasks' output until the run is complete. If ctx
// ends first it cancels the run and waits (bounded) for it to stop.
func waitAndPrint(ctx context.Context, f *fsm.FSM, ap *fsm.Direct, pipeline string, p *logPrinter) (*Result, error) {
	ref := fsm.RunRef{NamespaceID: model.DefaultNamespace, PipelineID: pipeline, RunID: 1}
	done := ctx.Done()
	var deadline <-chan time.Time
	for {
		changed := f.Changes().Changed()
		res, err := readRun(f, ref)
		if err != nil {
			return nil, err
		}
		p.print(f, res.Tasks)
		if res.Run.State == model.RunStateComplete {
			p.flush()
			return res, nil
		}
		select {
		case <-changed:
		case <-time.After(500 * time.Millisecond):
		case <-done:
			done = nil
			deadline = time.After(30 * time.Second)
			ap.Apply(context.Background(), fsm.CmdRunCancel, fsm.RunCancel{RunRef: ref,
				Cancel: model.Cancellation{Reason: model.ReasonUserCancelled, By: "local (interrupted)", GraceMillis: 5000}})
		case <-deadline:
			p.flush()
			return res, fmt.Errorf("the run did not stop within 30s of the interrupt")
		}
	}
}

func readRun(f *fsm.FSM, ref fsm.RunRef) (*Result, error) {
	res := &Result{}
	err := f.View(func(tx *bbolt.Tx) (err error) {
		if res.Run, err = store.GetRun(tx, ref.NamespaceID, ref.PipelineID, ref.RunID); err != nil {
			return err
		}
		res.Tasks, err = store.ListTasks(tx, ref.NamespaceID, ref.PipelineID, ref.RunID)
		return err
	})
	return res, err
}

// removeLeftovers stops and removes any container of this local run (an
// interrupted run, say), and waits until the engine lists none: a removal
// the stopped executor began may still be under way (a second Remove then
// fails as "already in progress"), and the run is only over when its
// containers are gone.
func removeLeftovers(sched scheduler.Scheduler, clusterID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		list, err := sched.List(ctx, map[string]string{executor.LabelCluster: clusterID})
		if err != nil || len(list) == 0 {
			return
		}
		for _, c := range list {
			_ = sched.Stop(ctx, c.Name, 5*time.Second)
			_ = sched.Remove(ctx, c.Name)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logPrinter prints each task's new output as "task | line", masking
// secret values (and their encoded forms and lines) with the executor's
// masker: the local executor is handed the values themselves, so its
// stored log is not masked.
type logPrinter struct {
	w       io.Writer
	secrets *mask.Set
	width   int
	next    map[string]int64
	streams map[string]*mask.Stream
	partial map[string][]byte
}

func newLogPrinter(w io.Writer, secrets []string) *logPrinter {
	var values [][]byte
	for _, s := range secrets {
		values = append(values, []byte(s))
	}
	return &logPrinter{w: w, secrets: mask.New(values), next: map[string]int64{}, streams: map[string]*mask.Stream{}, partial: map[string][]byte{}}
}

func (p *logPrinter) print(f *fsm.FSM, tasks []*model.TaskExecution) {
	if p.w == nil {
		return
	}
	for _, t := range tasks {
		p.width = max(p.width, len(t.TaskID))
	}
	for _, t := range tasks {
		var chunks [][]byte
		_ = f.View(func(tx *bbolt.Tx) error {
			chunks, p.next[t.TaskID] = store.LogChunks(tx, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID, p.next[t.TaskID], 1<<20)
			return nil
		})
		p.feed(t.TaskID, chunks, t.Terminal())
	}
}

// feed prints a task's new output, masked, line by line; a secret split
// across chunks is masked once its end arrives.
func (p *logPrinter) feed(task string, chunks [][]byte, terminal bool) {
	st := p.streams[task]
	if st == nil {
		st = mask.NewStream(p.secrets)
		p.streams[task] = st
	}
	for _, c := range chunks {
		st.Write(c)
	}
	buf := append(p.partial[task], st.Next(terminal)...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		p.line(task, string(buf[:i]))
		buf = buf[i+1:]
	}
	// An unfinished last line waits for its end (or the task's).
	p.partial[task] = append([]byte(nil), buf...)
	if terminal && len(p.partial[task]) > 0 {
		p.line(task, string(p.partial[task]))
		p.partial[task] = nil
	}
}

func (p *logPrinter) flush() {
	for task, st := range p.streams {
		p.partial[task] = append(p.partial[task], st.Next(true)...)
	}
	for task, rest := range p.partial {
		if len(rest) > 0 {
			p.line(task, string(rest))
		}
	}
	p.partial = map[string][]byte{}
}

func (p *logPrinter) line(task, text string) {
	fmt.Fprintf(p.w, "%-*s | %s\n", p.width, task, text)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
