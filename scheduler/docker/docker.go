// Package docker runs task containers on a Docker engine; it implements
// scheduler.Scheduler. Every gofer node must reach the same engine (one
// host or a shared DOCKER_HOST, docs/architecture.md §10): the container name is the
// attempt's identity, and a new leader finds the old leader's containers
// only if they live on the engine it talks to.
//
// Errors always wrap one of the scheduler sentinels when the executor can
// act on them; see errors.go for how daemon answers are told apart from
// silence (the executor must never mistake "unreachable" for "gone").
package docker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/scheduler"
)

// Defaults for Options' zero values.
const (
	DefaultNetwork     = "bridge"
	DefaultPullTimeout = 5 * time.Minute
	DefaultStopGrace   = 10 * time.Second
	DefaultAPITimeout  = 30 * time.Second
)

// Options configure a Scheduler. The zero value is usable: it talks to the
// engine named by the DOCKER_* environment (or the default socket).
type Options struct {
	// Host overrides DOCKER_HOST (e.g. "unix:///var/run/docker.sock",
	// "tcp://10.0.0.5:2375"); empty uses the environment.
	Host string
	// Network is the network mode of every task container: "bridge"
	// (default), "host", "none" or the name of a user-defined network.
	// Config key: [scheduler.docker] network.
	Network string
	// PullTimeout bounds one image pull, so an unreachable registry fails
	// the start instead of holding the executor. Default 5m.
	PullTimeout time.Duration
	// StopGrace is the SIGTERM-to-SIGKILL grace Stop uses when called with
	// a grace <= 0. Default 10s.
	StopGrace time.Duration
	// APITimeout bounds each short daemon call (inspect, create, start,
	// remove, list; stop adds its grace). A daemon that accepts connections
	// but never answers would otherwise hold a caller that passed a
	// context without deadline forever. Wait and Logs are bounded only by
	// their ctx: they legitimately last as long as the task. Default 30s.
	APITimeout time.Duration
	// Logger receives pull progress and fallbacks; default discards.
	Logger hclog.Logger
}

// Scheduler is the Docker backend. It is safe for concurrent use.
type Scheduler struct {
	cli  *client.Client
	opts Options
	log  hclog.Logger
	// busy bounds concurrent container creates, starts and removals (a
	// stop mostly waits out its grace, so it takes no slot). Docker
	// 20.10's network code can deadlock when many run at once (endpoint
	// and sandbox deletion racing network lookups), and the engine
	// serialises most of that work anyway.
	busy chan struct{}
	// versionKnown is set once the client has negotiated the engine's API
	// version (see negotiated).
	versionKnown atomic.Bool
	negotiateMu  sync.Mutex
}

// negotiated makes sure the client knows the engine's API version before
// a call that reads it without negotiating first: the Docker client's
// ContainerList formats its filters with the client's version field,
// unlocked, while another goroutine's first request may be negotiating
// (writing) it — a data race the race detector reports. Any request
// that negotiates does (ServerVersion is a small one); after it, the
// field is never written again.
func (s *Scheduler) negotiated(ctx context.Context) error {
	if s.versionKnown.Load() {
		return nil
	}
	s.negotiateMu.Lock()
	defer s.negotiateMu.Unlock()
	if s.versionKnown.Load() {
		return nil
	}
	if _, err := s.cli.ServerVersion(ctx); err != nil {
		return err
	}
	s.versionKnown.Store(true)
	return nil
}

// maxConcurrentMutations is the bound on busy.
const maxConcurrentMutations = 4

// acquire takes a slot for a mutating call; the returned func frees it.
func (s *Scheduler) acquire(ctx context.Context) (func(), error) {
	select {
	case s.busy <- struct{}{}:
		return func() { <-s.busy }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

var _ scheduler.Scheduler = (*Scheduler)(nil)

// New builds a Scheduler. It does no I/O: the API version is negotiated on
// the first call, so a node can start while the engine is still coming up
// (calls fail with ErrUnavailable until it answers). Use Check to fail
// fast on a misconfiguration.
func New(opts Options) (*Scheduler, error) {
	if opts.Network == "" {
		opts.Network = DefaultNetwork
	}
	if opts.PullTimeout <= 0 {
		opts.PullTimeout = DefaultPullTimeout
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = DefaultStopGrace
	}
	if opts.APITimeout <= 0 {
		opts.APITimeout = DefaultAPITimeout
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	clientOpts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if opts.Host != "" {
		clientOpts = append(clientOpts, client.WithHost(opts.Host))
	}
	cli, err := client.NewClientWithOpts(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("docker: client for %q: %w", opts.Host, err)
	}
	return &Scheduler{cli: cli, opts: opts, log: opts.Logger.Named("docker"), busy: make(chan struct{}, maxConcurrentMutations)}, nil
}

// Close releases the client's idle connections.
func (s *Scheduler) Close() error { return s.cli.Close() }

// Check reports whether the engine answers and the configured network
// exists, so that a node refuses to start with a typo in
// [scheduler.docker] network instead of failing every task later (the
// engine accepts such a container at create and refuses it only at start).
func (s *Scheduler) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.APITimeout)
	defer cancel()
	if _, err := s.cli.Ping(ctx); err != nil {
		return classify("ping", s.cli.DaemonHost(), err)
	}
	switch s.opts.Network {
	case "bridge", "host", "none", "default":
		return nil
	}
	if _, err := s.cli.NetworkInspect(ctx, s.opts.Network, network.InspectOptions{}); err != nil {
		return classify("network", s.opts.Network, err)
	}
	return nil
}

// short returns a context bounded by APITimeout for one non-streaming call.
func (s *Scheduler) short(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.APITimeout)
}
