package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The dependency conditions under short names, so a pipeline reads
// sdk.NewTask(...).DependsOn("build", sdk.Success).
const (
	// Any runs the child whatever the parent's outcome (success, failure
	// or skipped).
	Any = RequiredParentStatusAny
	// Success runs the child only if the parent succeeded.
	Success = RequiredParentStatusSuccess
	// Failure runs the child only if the parent failed.
	Failure = RequiredParentStatusFailure
)

// Pipeline builds a PipelineConfig. Create one with NewPipeline, chain the
// setters, and end with Finish:
//
//	err := sdk.NewPipeline("simple", "Simple").Tasks(...).Finish()
//
// Setters never fail or panic; a problem (a bad id, a cycle, an empty
// script, a negative timeout...) is reported by Validate, JSON and Finish.
type Pipeline struct {
	cfg   *PipelineConfig
	tasks []*Task
}

// c returns the config, creating it for a zero Pipeline.
func (p *Pipeline) c() *PipelineConfig {
	if p.cfg == nil {
		p.cfg = &PipelineConfig{Tasks: []*TaskConfig{}}
	}
	return p.cfg
}

// NewPipeline starts a pipeline. The id is 3 to 32 characters of ASCII
// letters, digits, '_' and '-'; it names the pipeline in the API and the
// CLI. The name is for humans and may be anything up to 256 bytes.
func NewPipeline(id, name string) *Pipeline {
	return &Pipeline{cfg: &PipelineConfig{ID: id, Name: name, Tasks: []*TaskConfig{}}}
}

// Description sets the pipeline's description (up to 4096 bytes).
func (p *Pipeline) Description(description string) *Pipeline {
	p.c().Description = description
	return p
}

// Parallelism limits how many runs of this pipeline may run at once; 0
// (the default) means the server's per-pipeline default.
func (p *Pipeline) Parallelism(n int64) *Pipeline {
	p.c().Parallelism = n
	return p
}

// Timeout bounds a whole run: a run still going after d is cancelled. It is
// stored as d.String() ("10m0s"); 0, the default, means no limit. d must be
// at most MaxTimeout.
func (p *Pipeline) Timeout(d time.Duration) *Pipeline {
	p.c().Timeout = durationString(d)
	return p
}

// RunRetention sets which of this pipeline's finished runs the server
// keeps, replacing its api.run_retention_count and api.run_retention_age:
// the newest count runs (0: no limit by number) and the runs that ended
// less than age ago (0: no limit by age). RunRetention(0, 0) keeps every
// run whatever the server sets. Older runs are deleted with their task
// logs and run objects (docs/runs.md, "Run retention").
func (p *Pipeline) RunRetention(count int64, age time.Duration) *Pipeline {
	p.c().RunRetention = &RunRetention{Count: count, Age: durationString(age)}
	return p
}

// Tasks adds tasks to the pipeline, in order. Calls accumulate. The order
// is kept in the config; it does not affect when a task runs, only its
// dependencies do.
func (p *Pipeline) Tasks(tasks ...*Task) *Pipeline {
	for _, t := range tasks {
		p.tasks = append(p.tasks, t)
		if t == nil {
			p.c().Tasks = append(p.c().Tasks, nil) // reported by Validate
			continue
		}
		p.c().Tasks = append(p.c().Tasks, t.c())
	}
	return p
}

// Config returns the config being built (not a copy). Changing it changes
// the pipeline.
func (p *Pipeline) Config() *PipelineConfig { return p.c() }

// Validate reports the first problem with the pipeline: a mistake made
// through a setter (such as an empty Script), then everything the server
// checks (PipelineConfig.Validate: ids, limits, duplicate tasks, unknown
// dependencies, cycles). Every error names the pipeline or task at fault.
func (p *Pipeline) Validate() error {
	for _, t := range p.tasks {
		if t != nil && t.err != nil {
			return t.err
		}
	}
	return p.c().Validate()
}

// JSON validates the pipeline and returns its config in the canonical form
// both SDKs print: encoding/json with two-space indentation and without
// HTML escaping (so "<", ">" and "&" stay as they are), fields in
// PipelineConfig order, map keys sorted, tasks in the order added. There is
// no trailing newline.
func (p *Pipeline) JSON() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return canonicalJSON(p.c())
}

// FinishTo validates the pipeline and writes its JSON and a newline to w.
// On error nothing is written.
func (p *Pipeline) FinishTo(w io.Writer) error {
	out, err := p.JSON()
	if err != nil {
		return err
	}
	_, err = w.Write(append(out, '\n'))
	return err
}

// Finish validates the pipeline and prints its config JSON on stdout, which
// is what `gofer up` reads and registers. If the pipeline is invalid it
// prints the error on stderr instead and returns it, so a pipeline program
// ends with:
//
//	if err := p.Finish(); err != nil {
//		os.Exit(1)
//	}
func (p *Pipeline) Finish() error {
	err := p.FinishTo(os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return err
}

// canonicalJSON is the one encoding of a config the SDKs agree on.
func canonicalJSON(cfg *PipelineConfig) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Task builds a TaskConfig: one container in the pipeline's DAG. Create one
// with NewTask and add it with Pipeline.Tasks. Setters never fail or panic;
// problems are reported by the pipeline's Validate. When two setters write
// the same field the later call wins.
type Task struct {
	cfg *TaskConfig
	err error // the first mistake made through a setter
}

// c returns the config, creating it (and its maps) for a zero Task.
func (t *Task) c() *TaskConfig {
	if t.cfg == nil {
		t.cfg = &TaskConfig{}
	}
	if t.cfg.DependsOn == nil {
		t.cfg.DependsOn = map[string]RequiredParentStatus{}
	}
	if t.cfg.Variables == nil {
		t.cfg.Variables = map[string]string{}
	}
	return t.cfg
}

// NewTask starts a task running image. The id is 3 to 32 characters of
// ASCII letters, digits, '_' and '-', unique in the pipeline; other tasks
// use it in DependsOn. By default the task has no dependencies and no
// variables, keeps the image's entrypoint and command, pulls the image
// only when it is absent, and has no timeout and no retries.
func NewTask(id, image string) *Task {
	return &Task{cfg: &TaskConfig{
		ID:        id,
		Image:     image,
		DependsOn: map[string]RequiredParentStatus{},
		Variables: map[string]string{},
	}}
}

// Config returns the config being built (not a copy).
func (t *Task) Config() *TaskConfig { return t.c() }

// Description sets the task's description (up to 4096 bytes).
func (t *Task) Description(description string) *Task {
	t.c().Description = description
	return t
}

// Command overrides the image's CMD. With no arguments the image's own CMD
// is kept.
func (t *Task) Command(args ...string) *Task {
	t.c().Command = append([]string(nil), args...)
	return t
}

// Entrypoint overrides the image's ENTRYPOINT (Docker then also ignores the
// image's CMD). With no arguments the image's own ENTRYPOINT is kept;
// Entrypoint("") runs the command without the image's entrypoint.
func (t *Task) Entrypoint(args ...string) *Task {
	t.c().Entrypoint = append([]string(nil), args...)
	return t
}

// Script runs text with the image's sh: the command becomes
// ["sh", "-c", <text without leading and trailing white space>]. The image
// must have sh on its PATH (gofer/busybox:latest does; gofer/gofer:latest
// does not), and an image with an ENTRYPOINT gets the command as its
// arguments, so set Entrypoint too if needed. A later Command replaces the
// script. An empty script is an error.
func (t *Task) Script(text string) *Task {
	script := strings.TrimSpace(text)
	if script == "" {
		t.fail(fmt.Errorf("%w: task %q: script is empty", ErrInvalidConfig, truncateForError(t.c().ID)))
		return t
	}
	t.c().Command = []string{"sh", "-c", script}
	return t
}

// Variable sets one environment variable of the task's container. The name
// is kept as given (not upper-cased); a later call with the same name wins.
// The value may be an interpolation marker such as PipelineSecret("key").
// Note that the container's environment treats names that differ only in
// case as the same variable.
func (t *Task) Variable(name, value string) *Task {
	t.c().Variables[name] = value
	return t
}

// Variables sets several environment variables, merged into those set
// before; on the same name the later call wins.
func (t *Task) Variables(vars map[string]string) *Task {
	for k, v := range vars {
		t.c().Variables[k] = v
	}
	return t
}

// DependsOn makes the task wait for the task parent and run only if parent
// ends as status requires: Any, Success or Failure. A task whose condition
// can no longer be met is skipped. Calling it again for the same parent
// replaces the condition.
func (t *Task) DependsOn(parent string, status RequiredParentStatus) *Task {
	t.c().DependsOn[parent] = status
	return t
}

// DependsOnMany adds several dependencies at once, merged into those set
// before.
func (t *Task) DependsOnMany(parents map[string]RequiredParentStatus) *Task {
	for parent, status := range parents {
		t.c().DependsOn[parent] = status
	}
	return t
}

// InjectAPIToken asks for a Gofer API token for each run, given to the
// container in an environment variable, so the task can call the API.
func (t *Task) InjectAPIToken(inject bool) *Task {
	t.c().InjectAPIToken = inject
	return t
}

// RegistryAuth sets the credentials to pull the task's image with.
func (t *Task) RegistryAuth(user, pass string) *Task {
	t.c().RegistryAuth = &RegistryAuth{User: user, Pass: pass}
	return t
}

// AlwaysPull pulls the image before every run even when it is present
// (always_pull_newest_image). The default, false, pulls only an absent
// image.
func (t *Task) AlwaysPull(always bool) *Task {
	t.c().AlwaysPullNewestImage = always
	return t
}

// Timeout bounds one attempt of the task: the container is stopped when it
// runs longer, and the attempt fails. It is stored as d.String() ("1m30s");
// 0, the default, means no limit. d must be at most MaxTimeout.
func (t *Task) Timeout(d time.Duration) *Task {
	t.c().Timeout = durationString(d)
	return t
}

// Retries gives a failed attempt up to n more attempts (0 to MaxRetries),
// waiting backoff before the first retry and twice as long before each
// next one (capped at MaxRetryBackoff). A backoff of 0 retries at once.
func (t *Task) Retries(n int, backoff time.Duration) *Task {
	t.c().Retries = n
	t.c().RetryBackoff = durationString(backoff)
	return t
}

// Resources sets the CPU (MHz) and memory (MB) the task reserves on the
// scheduler; 0 for either keeps the scheduler's default ([scheduler.nomad]
// cpu and memory on Nomad; no limit on Docker). Memory is a hard limit.
func (t *Task) Resources(cpuMHz, memoryMB int) *Task {
	if cpuMHz == 0 && memoryMB == 0 {
		t.c().Resources = nil
		return t
	}
	t.c().Resources = &Resources{CPU: cpuMHz, Memory: memoryMB}
	return t
}

func (t *Task) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// durationString is the config form of d: empty for 0 (the field is then
// omitted), else Go's d.String(). A negative d is kept so that Validate
// reports it.
func durationString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}
