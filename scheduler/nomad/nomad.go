// Package nomad runs task containers as Nomad batch jobs; it implements
// scheduler.Scheduler. Each attempt is one job whose id is the attempt's
// deterministic container name, with one group and one docker task; every
// gofer node talks to the same Nomad cluster, so a new leader finds the
// old leader's jobs through the API (DESIGN.md).
//
// Errors always wrap one of the scheduler sentinels when the executor can
// act on them; errors.go tells Nomad's answers apart from silence.
package nomad

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// Defaults for Options' zero values.
const (
	DefaultAddress    = "http://127.0.0.1:4646"
	DefaultCPU        = 100 // MHz
	DefaultMemoryMB   = 256
	DefaultStopGrace  = 10 * time.Second
	DefaultAPITimeout = 30 * time.Second
	// DefaultPlacementTimeout is how long a job may wait for Nomad to
	// place it before the attempt ends (Options.PlacementTimeout).
	DefaultPlacementTimeout = 5 * time.Minute
	// DefaultLogSettle is how long logs are still read after a task
	// ended (Options.LogSettle).
	DefaultLogSettle = 2 * time.Second
	// blockingWait is how long one blocking query may wait on the server
	// before it answers unchanged (Nomad caps it at 10 minutes).
	blockingWait = time.Minute
)

// TLS configures the HTTPS connection to Nomad; paths name PEM files.
type TLS struct {
	CACert     string
	ClientCert string
	ClientKey  string
	ServerName string
	// Insecure skips verifying the server's certificate (tests only).
	Insecure bool
}

// Options configure a Scheduler. The zero value talks to a local agent's
// default namespace and region, in datacenter "*" (any).
type Options struct {
	// Address is Nomad's HTTP API, e.g. "https://nomad.internal:4646".
	Address string
	// Region and Namespace of every job; empty means the agent's region
	// and the "default" namespace.
	Region    string
	Namespace string
	// Datacenters the jobs may run in; default ["*"] (any).
	Datacenters []string
	// Token is the ACL token (secret id) sent with every call.
	Token string
	TLS   TLS
	// CPU (MHz) and MemoryMB are the resources of a task whose request
	// does not set them (the pipeline's per-task resources).
	CPU      int
	MemoryMB int
	// StopGrace is the task's kill_timeout: when Nomad itself stops a
	// running task (Remove's purge, an operator's job stop) it sends
	// SIGTERM, waits this long, then SIGKILLs. It is fixed when the job is
	// registered; Stop signals the task itself and honours its own grace.
	// Default 10s.
	StopGrace time.Duration
	// APITimeout bounds each short call (register, read, deregister,
	// list), so an agent that accepts connections and never answers
	// cannot hold a caller whose ctx has no deadline. Wait and Logs are
	// bounded by their ctx only. Default 30s.
	APITimeout time.Duration
	// PlacementTimeout is how long a registered job may stay unplaced
	// (no node can run it: no such datacenter, more resources than any
	// node has, or a full cluster) before Wait deregisters it and ends the
	// attempt, naming Nomad's reason. It counts from the job's submit
	// time, so a new leader keeps the same deadline. Default 5m.
	PlacementTimeout time.Duration
	// LogSettle is how long a task's logs are still read after it ended:
	// Nomad writes the last output to the log files asynchronously (see
	// logs.go). Longer is safer on a heavily loaded client, and every
	// task's end is reported that much later. Default 2s.
	LogSettle time.Duration
	// Logger; default discards.
	Logger hclog.Logger
}

// Scheduler is the Nomad backend. It is safe for concurrent use.
type Scheduler struct {
	cli  *nomadapi.Client
	opts Options
	log  hclog.Logger
}

var (
	_ scheduler.Scheduler = (*Scheduler)(nil)
	_ scheduler.Images    = (*Scheduler)(nil)
)

// New builds a Scheduler. It does no I/O; use Check to fail fast on a
// wrong address or token.
func New(opts Options) (*Scheduler, error) {
	if opts.Address == "" {
		opts.Address = DefaultAddress
	}
	if len(opts.Datacenters) == 0 {
		opts.Datacenters = []string{"*"}
	}
	if opts.CPU <= 0 {
		opts.CPU = DefaultCPU
	}
	if opts.MemoryMB <= 0 {
		opts.MemoryMB = DefaultMemoryMB
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = DefaultStopGrace
	}
	if opts.APITimeout <= 0 {
		opts.APITimeout = DefaultAPITimeout
	}
	if opts.PlacementTimeout <= 0 {
		opts.PlacementTimeout = DefaultPlacementTimeout
	}
	if opts.LogSettle <= 0 {
		opts.LogSettle = DefaultLogSettle
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	cfg := &nomadapi.Config{
		Address:   opts.Address,
		Region:    opts.Region,
		Namespace: opts.Namespace,
		SecretID:  opts.Token,
	}
	if t := opts.TLS; t != (TLS{}) {
		cfg.TLSConfig = &nomadapi.TLSConfig{CACert: t.CACert, ClientCert: t.ClientCert, ClientKey: t.ClientKey,
			TLSServerName: t.ServerName, Insecure: t.Insecure}
	}
	cli, err := nomadapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad: client for %q: %w", opts.Address, err)
	}
	return &Scheduler{cli: cli, opts: opts, log: opts.Logger.Named("nomad")}, nil
}

// Close releases the client's idle connections.
func (s *Scheduler) Close() error {
	s.cli.Close()
	return nil
}

// Check reports whether the agent answers with a leader for our region.
func (s *Scheduler) Check(ctx context.Context) error {
	ctx, cancel := s.short(ctx)
	defer cancel()
	if _, _, err := s.cli.Jobs().List(s.query(ctx, nil)); err != nil {
		return classify("check", s.opts.Address, err)
	}
	return nil
}

// short returns a context bounded by APITimeout for one short call.
func (s *Scheduler) short(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.APITimeout)
}

// query is the read options of one call under ctx.
func (s *Scheduler) query(ctx context.Context, q *nomadapi.QueryOptions) *nomadapi.QueryOptions {
	if q == nil {
		q = &nomadapi.QueryOptions{}
	}
	return q.WithContext(ctx)
}

// write is the write options of one call under ctx.
func (s *Scheduler) write(ctx context.Context) *nomadapi.WriteOptions {
	return (&nomadapi.WriteOptions{}).WithContext(ctx)
}
