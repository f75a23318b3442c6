// Package supervisor is the leader service that runs each installed
// extension's container (docs/extensions.md, "The supervisor"): it starts
// or adopts the container under a deterministic name, checks its health,
// records its state in replicated state when it changes, restarts it with
// backoff when it crashes, replaces it on reinstall and removes it on
// uninstall. It fills an extcall.Directory with every healthy extension's
// address and secret. See DESIGN.md.
package supervisor

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/extcall"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/agent/reconcile"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store"
)

// Defaults for Config's zero values.
const (
	DefaultStopTimeout    = 10 * time.Second
	DefaultHealthInterval = 2 * time.Second
	// DefaultStartupChecks: health checks a new container gets to become
	// ready (upstream: 30 at 1 s).
	DefaultStartupChecks = 30
	// DefaultHealthFailures: failed checks in a row after which a ready
	// extension is restarted.
	DefaultHealthFailures = 3
	// DefaultStableAfter: an extension healthy for this long has
	// recovered; its next crash is restarted after the shortest backoff
	// again (as a crash-looping container's backoff resets).
	DefaultStableAfter = 10 * time.Minute
	// listInterval is how often the engine is listed for containers of
	// extensions that are no longer installed (uninstalled while no
	// leader supervised them).
	listInterval = time.Minute
)

// Opener opens a sealed value (*seal.Keyring).
type Opener interface {
	Open(sealed []byte, location string) ([]byte, error)
}

// Engine is what the supervisor needs of the container backend.
type Engine interface {
	scheduler.Scheduler
	scheduler.Images
}

// Config is what the supervisor needs from the node.
type Config struct {
	// ClusterID scopes container names and labels.
	ClusterID string
	// ExtensionAddress (server.extension_address): when set, containers
	// join Network, listen on 0.0.0.0:8082, are reached at their IP, and
	// get it as GOFER_HOST. Empty: host networking, a free loopback port,
	// and this leader's API as GOFER_HOST.
	ExtensionAddress string
	// Network is scheduler.docker.network (used with ExtensionAddress).
	Network string
	// APIHost is this leader's API host:port.
	APIHost string
	// MemberHosts lists every member's API host:port (nil: just APIHost).
	MemberHosts func() []string
	// APITLS: the API serves TLS, so GOFER_HOSTS lists https URLs; APICA
	// (PEM, may be empty) is passed as GOFER_EXTENSION_SYSTEM_GOFER_CA so
	// the extension verifies Gofer against the cluster CA.
	APITLS bool
	APICA  string
	// LogLevel is passed as GOFER_EXTENSION_SYSTEM_LOG_LEVEL.
	LogLevel string
	// StopTimeout is the grace of a stop (extensions.stop_timeout).
	StopTimeout time.Duration
	// Secrets opens the extension token's sealed secret.
	Secrets Opener
	// Directory is filled with running, healthy extensions and cleared
	// when the service stops.
	Directory *extcall.Directory
	// Builtin makes the built-in extensions' images when missing.
	Builtin *Builtin
	// HealthInterval, StartupChecks and HealthFailures tune health
	// checking (defaults above).
	HealthInterval time.Duration
	StartupChecks  int
	HealthFailures int
	// MinBackoff and MaxBackoff bound the restart backoff of one
	// extension (defaults 1 s and 2 min); StableAfter of healthy running
	// resets it (default DefaultStableAfter).
	MinBackoff, MaxBackoff time.Duration
	StableAfter            time.Duration
	// HTTP calls extensions (default: a client without timeout; every
	// call has its own).
	HTTP *http.Client
	// FreePort picks a free loopback port (tests replace it).
	FreePort func() (int, error)
	// HostPorts, when set (scheduler.engine nomad), says the engine may
	// run an extension on another host than the leader: each extension
	// listens on 0.0.0.0:<a port of HostPorts no other extension holds>
	// on its host's network, the engine reserves that port (so it places
	// the extension where it is free) and reports the host's address as
	// Status.IPAddress, and GOFER_HOST is ExtensionAddress, or APIHost
	// without it. Built-in images are used as named when the engine
	// cannot import them (ErrUnsupported). See DESIGN.md, "Networking".
	HostPorts PortRange
}

// PortRange is an inclusive range of ports; the zero value is none.
type PortRange struct {
	First, Last int
}

// Set reports whether the range holds any port.
func (r PortRange) Set() bool { return r.First > 0 && r.Last >= r.First }

// Supervisor is the leader service; New builds one per leadership term.
type Supervisor struct {
	cfg    Config
	state  leadership.StateReader
	apply  leadership.Applier
	clock  clock.Clock
	logger hclog.Logger
	engine Engine

	loop    *reconcile.Loop
	workers *reconcile.Workers

	mu sync.Mutex
	// pokes wakes a worker when its extension's record changed.
	pokes map[string]chan struct{}
	// seenToken is each installed extension's token at the last pass, so
	// a pass pokes only the workers whose extension changed.
	seenToken map[string]string
	lastList  time.Time
	// hostPorts is the port each extension was last placed on in this
	// term (HostPorts placement), so two workers placing at once never
	// pick the same one.
	hostPorts map[string]int
}

// New builds a supervisor (the constructor shape of every leader
// service: config, deps, backend).
func New(cfg Config, d leadership.Deps, engine Engine) *Supervisor {
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = DefaultHealthInterval
	}
	if cfg.StartupChecks <= 0 {
		cfg.StartupChecks = DefaultStartupChecks
	}
	if cfg.HealthFailures <= 0 {
		cfg.HealthFailures = DefaultHealthFailures
	}
	if cfg.StableAfter <= 0 {
		cfg.StableAfter = DefaultStableAfter
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(2*time.Minute, cfg.MinBackoff)
	}
	if cfg.HTTP == nil {
		// Never through a proxy from the environment (HTTP_PROXY is often
		// set for image pulls): extensions are on this host or its
		// container network, and the calls carry the extension's secret.
		cfg.HTTP = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}}
	}
	if cfg.FreePort == nil {
		cfg.FreePort = freeLoopbackPort
	}
	if cfg.Directory == nil {
		cfg.Directory = extcall.NewDirectory()
	}
	logger := d.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Supervisor{cfg: cfg, state: d.State, apply: d.Apply, clock: clock.Or(d.Clock), logger: logger, engine: engine,
		pokes: map[string]chan struct{}{}, seenToken: map[string]string{}, hostPorts: map[string]int{}}
	s.loop = reconcile.NewLoop(reconcile.LoopConfig{
		Pass:    s.pass,
		Changes: func() <-chan struct{} { return s.state.Changes().Changed() },
		// Every applied batch wakes the pass, which only reads the
		// extensions: a gap coalesces a busy cluster's batches.
		Gap:    200 * time.Millisecond,
		Idle:   listInterval,
		Clock:  s.clock,
		Logger: s.logger,
	})
	s.workers = reconcile.NewWorkers(s.clock, cfg.MinBackoff, cfg.MaxBackoff, s.loop.Poke)
	return s
}

// Run supervises until ctx ends (leadership lost), then waits for every
// worker and clears the Directory. It never stops extension containers:
// the next leader adopts them.
func (s *Supervisor) Run(ctx context.Context) error {
	defer s.cfg.Directory.Clear()
	s.loop.Run(ctx)
	s.workers.Wait()
	return nil
}

// pass launches a worker for every installed extension and for every
// extension container whose extension is gone, and pokes the workers of
// extensions whose record changed.
func (s *Supervisor) pass(ctx context.Context) (reconcile.Result, error) {
	installed := map[string]string{}
	if err := s.state.View(func(tx *bbolt.Tx) error {
		list, err := store.AllExtensions(tx)
		for _, e := range list {
			installed[e.ID] = e.TokenID
		}
		return err
	}); err != nil {
		return reconcile.Result{}, err
	}
	ids := map[string]bool{}
	for id := range installed {
		ids[id] = true
	}
	now := s.clock.Now()
	if s.lastList.IsZero() || now.Sub(s.lastList) >= listInterval {
		// An engine that does not answer must not keep the installed
		// extensions from their workers (which retry on their own).
		list, err := s.engine.List(ctx, map[string]string{scheduler.LabelCluster: s.cfg.ClusterID, scheduler.LabelExtension: ""})
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("could not list extension containers; retrying later", "error", err)
			}
			s.lastList = now.Add(-listInterval + 5*time.Second)
		} else {
			s.lastList = now
		}
		for _, c := range list {
			if id := c.Labels[scheduler.LabelExtension]; id != "" && c.Name == ContainerName(s.cfg.ClusterID, id) {
				ids[id] = true
			}
		}
	}
	s.mu.Lock()
	for id, tok := range s.seenToken {
		if installed[id] != tok {
			s.pokeLocked(id)
		}
	}
	s.seenToken = installed
	s.mu.Unlock()
	for id := range ids {
		s.workers.Launch(ctx, id, func(ctx context.Context, w *reconcile.Worker) { s.work(ctx, w, id) })
	}
	return reconcile.Result{Wake: s.lastList.Add(listInterval)}, nil
}

// pokeLocked wakes id's worker, if any. s.mu is held.
func (s *Supervisor) pokeLocked(id string) {
	if ch, ok := s.pokes[id]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// pokeChannel registers (and returns) the channel id's worker waits on.
func (s *Supervisor) pokeChannel(id string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{}, 1)
	s.pokes[id] = ch
	return ch
}

func (s *Supervisor) dropPokeChannel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pokes, id)
}
