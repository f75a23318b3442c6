// Package agent is one Gofer node: it wires configuration, the data
// directory, raft (TCP transport, raft-boltdb/v2 or raft-wal log, file snapshots), the
// bbolt FSM and the REST API, runs the leadership lifecycle, and starts
// and stops the leader-only services.
package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/extcall"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/agent/supervisor"
	"github.com/goferhq/gofer/api"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/internal/metrics"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/docker"
	"github.com/goferhq/gofer/scheduler/nomad"
	"github.com/goferhq/gofer/scheduler/noop"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// Agent is a running node.
type Agent struct {
	cfg    Config
	meta   model.Metadata
	logger hclog.Logger
	nodeID string

	db  *store.DB
	fsm *fsm.FSM
	// secrets seals secret values on this node (API) and opens them for
	// tasks (executor).
	secrets *seal.Keyring
	raft    *raft.Raft
	// logStore is raft's log and stable store, the one raft.log_store
	// names (logstore.go).
	logStore  logStore
	snapshots *raft.FileSnapshotStore
	transport *raft.NetworkTransport
	// tls is the [tls] key pair and cluster CA (tls.go).
	tls *nodeTLS

	api   *api.Server
	apiLn net.Listener
	// extCalls calls the running extensions (extensions below) for the
	// API.
	extCalls *extcall.Client
	// The external-events listener (external_events.go); nil when
	// disabled.
	eventsSrv *http.Server
	eventsLn  net.Listener
	// metrics is the node's registry (metrics.go); metricsSrv and
	// metricsLn its listener with [metrics] access = "listener".
	metrics    *metrics.Metrics
	metricsSrv *http.Server
	metricsLn  net.Listener
	http       *http.Client
	sched      scheduler.Scheduler

	// Extension supervision (extensions.go): where running extensions
	// answer, filled by each term's supervisor; one for the node's life.
	extensions *extcall.Directory
	builtin    *supervisor.Builtin

	// Leadership lifecycle (leader.go).
	leaderNotify chan bool
	ready        atomic.Bool
	leadership   *leadership.Lifecycle

	// CheckState verifies an uploaded backup before it is opened for
	// writing. It defaults to CheckStateInProcess; the CLI installs
	// SubprocessStateChecker.
	CheckState StateChecker

	restoreMu  sync.Mutex
	shutdownCh chan struct{}
	wg         sync.WaitGroup
	stopOnce   sync.Once
	stopErr    error
}

// New prepares a node: data dir, node id, state file, raft and the API
// listener. Nothing is served until Run.
func New(cfg Config, meta model.Metadata, logger hclog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// First the raft log, whose lock says whether another process uses
	// this data dir: nothing in it is touched before that is known.
	logStore, err := openConfiguredLogStore(cfg.Server.DataDir, cfg.Raft.LogStore, logger)
	if err != nil {
		return nil, err
	}
	nodeID, err := loadNodeID(cfg.Server.DataDir, cfg.Server.NodeID)
	if err != nil {
		logStore.Close()
		return nil, err
	}
	a := &Agent{
		logStore:     logStore,
		cfg:          cfg,
		meta:         meta,
		logger:       logger,
		nodeID:       nodeID,
		leaderNotify: make(chan bool, 16),
		shutdownCh:   make(chan struct{}),
		http:         &http.Client{Timeout: 10 * time.Second},
		CheckState:   CheckStateInProcess,
		extensions:   extcall.NewDirectory(),
		metrics:      metrics.New(),
	}
	a.builtin = newBuiltin(meta, logger)
	if a.tls, err = loadNodeTLS(cfg.TLS); err != nil {
		a.closeStores()
		return nil, err
	}
	a.http.Transport = &http.Transport{Proxy: nil, TLSClientConfig: a.tls.peerClientConfig(),
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext, IdleConnTimeout: 90 * time.Second}
	if a.sched, err = newScheduler(cfg.Scheduler, logger); err != nil {
		a.closeStores()
		return nil, err
	}
	if a.secrets, err = openSecretKeyring(cfg, logger); err != nil {
		a.closeStores()
		return nil, err
	}
	if err := a.setupRaft(); err != nil {
		a.stopRaft()
		a.closeStores()
		return nil, err
	}
	fileLimit := raiseFileLimit(logger)
	a.extCalls = extcall.NewClient(a.extensions)
	maxConns, maxForwards := apiConnCap(cfg.API.MaxConnections, fileLimit, logger)
	logger.Debug("api connection cap", "max_connections", maxConns, "max_forwards", maxForwards, "open_file_limit", fileLimit)
	a.api = api.New(api.Options{
		Dev:                      cfg.Server.Dev,
		MaxRequestBody:           cfg.API.MaxRequestBody,
		PipelineVersionRetention: cfg.API.PipelineVersionRetention,
		Metadata:                 meta,
		Secrets:                  a.secrets,
		MaxObjectBytes:           cfg.Objects.MaxObjectBytes,
		PipelineObjectLimit:      cfg.Objects.PipelineObjectLimit,
		RunObjectLimit:           cfg.Objects.RunObjectLimit,
		MaxConnections:           maxConns,
		MaxForwards:              maxForwards,
		LeaderSilence:            cfg.Raft.HeartbeatTimeout.D(),
		BodyReadTimeout:          cfg.API.BodyReadTimeout.D(),
		BodyMinRate:              cfg.API.BodyMinRate,
		StreamKeepAlive:          cfg.API.StreamKeepAlive.D(),
		RateLimit:                float64(cfg.API.RateLimit),
		RateBurst:                cfg.API.RateBurst,
		AnonRateLimit:            float64(cfg.API.AnonymousRateLimit),
		AnonRateBurst:            cfg.API.AnonymousRateBurst,
		ReadHeaderTimeout:        cfg.API.ReadHeaderTimeout.D(),
		MaxHeaderBytes:           cfg.API.MaxHeaderBytes,
		IdleTimeout:              cfg.API.IdleTimeout.D(),
		LogStore:                 cfg.Raft.LogStore,
		ExtensionLogs:            a.extensionLogs,
		ExtensionCalls:           a.extensionCalls(),
		Metrics:                  a.metrics,
		MetricsAccess:            cfg.Metrics.Access,
		TLS:                      a.tls.serverConfig(),
		PeerTLS:                  a.tls.peerClientConfig(),
	}, a, logger)
	ln, err := net.Listen("tcp", cfg.Server.APIAddr)
	if err != nil {
		a.stopRaft()
		a.closeStores()
		return nil, fmt.Errorf("listen on server.api_addr %s: %w", cfg.Server.APIAddr, err)
	}
	a.apiLn = ln
	if err := a.listenMetrics(); err != nil {
		ln.Close()
		a.stopRaft()
		a.closeStores()
		return nil, err
	}
	if err := a.listenExternalEvents(); err != nil {
		ln.Close()
		if a.metricsLn != nil {
			a.metricsLn.Close()
		}
		a.stopRaft()
		a.closeStores()
		return nil, err
	}
	return a, nil
}

// setupRaft opens the log store, snapshot store, state file and transport
// and starts raft, bootstrapping a new cluster when asked to.
func (a *Agent) setupRaft() error {
	dir := a.cfg.Server.DataDir
	var err error
	rlog := a.logger.Named("raft")
	a.snapshots, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, rlog)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	var trusted bool
	a.db, trusted, err = openState(dir, a.logger)
	if err != nil {
		return err
	}
	a.fsm, err = fsm.New(a.db, store.Options{NoSync: true}, a.logger)
	if err != nil {
		return err
	}
	a.fsm.SetObserver(a.metrics.FSM())

	advertise, err := net.ResolveTCPAddr("tcp", a.cfg.RaftAdvertise())
	if err != nil {
		return fmt.Errorf("resolve raft advertise address %q: %w", a.cfg.RaftAdvertise(), err)
	}
	if a.cfg.TLS.MutualRaft() {
		var stream *tlsStreamLayer
		stream, err = newTLSStreamLayer(a.cfg.Server.RaftAddr, advertise, a.tls, rlog)
		if err == nil {
			a.transport = raft.NewNetworkTransportWithLogger(stream, 8, 10*time.Second, rlog)
		}
	} else {
		a.transport, err = raft.NewTCPTransportWithLogger(a.cfg.Server.RaftAddr, advertise, 8, 10*time.Second, rlog)
	}
	if err != nil {
		return fmt.Errorf("listen on server.raft_addr %s: %w", a.cfg.Server.RaftAddr, err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(a.nodeID)
	rc.Logger = rlog
	rc.HeartbeatTimeout = a.cfg.Raft.HeartbeatTimeout.D()
	rc.ElectionTimeout = a.cfg.Raft.ElectionTimeout.D()
	rc.LeaderLeaseTimeout = a.cfg.Raft.LeaderLeaseTimeout.D()
	rc.CommitTimeout = a.cfg.Raft.CommitTimeout.D()
	// Raft's own snapshot timer would let every node snapshot at about
	// the same log index; it gets a threshold it never reaches and
	// runSnapshotTurns (snapshot_turns.go) snapshots in this node's slot.
	rc.SnapshotInterval = a.cfg.Raft.SnapshotInterval.D()
	rc.SnapshotThreshold = math.MaxUint64
	a.fsm.SetSnapshotWriteRate(a.cfg.Raft.SnapshotWriteRate)
	a.fsm.SetSnapshotDir(dir)
	rc.TrailingLogs = a.cfg.Raft.TrailingLogs
	rc.NotifyCh = a.leaderNotify
	rc.ShutdownOnRemove = false
	rc.NoSnapshotRestoreOnStart = trusted
	// Group commit: writers queue into a buffered channel so the leader
	// takes whole batches per log append and per FSM transaction. It voids
	// raft's own enqueue timeout, which Apply replaces with the caller's
	// deadline. Larger append batches amortise the fsyncs further.
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 128
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raft config: %w", err)
	}
	logs := raft.LogStore(a.logStore)
	if cache, err := raft.NewLogCache(512, a.logStore); err == nil {
		logs = cache
	}
	recovered, err := a.recoverPeers(rc, logs)
	if err != nil {
		return err
	}
	if recovered {
		// The state file holds the recovered state but was not synced:
		// load it from the snapshot the recovery wrote instead.
		rc.NoSnapshotRestoreOnStart = false
	}
	a.raft, err = raft.NewRaft(rc, a.fsm, logs, a.logStore, a.snapshots, a.transport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	a.metrics.RegisterRaft(a.raft)
	a.registerStateMetrics()

	if a.cfg.Server.Bootstrap {
		has, err := raft.HasExistingState(logs, a.logStore, a.snapshots)
		if err != nil {
			return err
		}
		if !has {
			a.logger.Info("bootstrapping a new cluster", "node_id", a.nodeID, "raft_addr", a.cfg.RaftAdvertise())
			if a.cfg.Cluster.Secret == "" && !a.cfg.Server.Dev {
				// Joiners need the secret to be admitted; without it each
				// would loop on a 401 and blame itself.
				a.logger.Warn("this cluster has no cluster.secret: no other node can join it; set the same cluster.secret " +
					"(GOFER_WEB_CLUSTER__SECRET, at least 32 characters) on every node, this one included, and restart it")
			}
			f := a.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
				Suffrage: raft.Voter, ID: raft.ServerID(a.nodeID), Address: raft.ServerAddress(a.cfg.RaftAdvertise()),
			}}})
			if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				return fmt.Errorf("bootstrap: %w", err)
			}
		}
	}
	return nil
}

// Run serves until ctx ends, then stops gracefully.
func (a *Agent) Run(ctx context.Context) error {
	a.leadership = a.newLeadership()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.monitorLeadership()
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.watchLeaderLiveness()
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.flushState()
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.runSnapshotTurns()
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.api.Serve(a.apiLn) }()
	a.serveExternalEvents()
	a.serveMetrics()
	if addr := a.cfg.Server.PprofAddr; addr != "" {
		stop, err := servePprof(addr, a.logger)
		if err != nil {
			a.Shutdown()
			return err
		}
		defer stop()
	}
	if len(a.cfg.Server.Join) > 0 {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.joinLoop(a.cfg.Server.Join)
		}()
	}
	a.logger.Info("gofer node started", "node_id", a.nodeID, "api", a.cfg.APIURL(), "raft", a.cfg.RaftAdvertise(),
		"data_dir", a.cfg.Server.DataDir, "version", a.meta.Semver)
	select {
	case <-ctx.Done():
		return a.Shutdown()
	case err := <-serveErr:
		a.Shutdown()
		return fmt.Errorf("api server: %w", err)
	}
}

// Shutdown stops the node gracefully: a leader hands leadership to a peer
// first, open streams end, raft stops, and the state file is flushed and
// marked clean so the next start can trust it.
func (a *Agent) Shutdown() error {
	a.stopOnce.Do(func() { a.stopErr = a.shutdown() })
	return a.stopErr
}

func (a *Agent) shutdown() error {
	timeout := a.cfg.Server.ShutdownTimeout.D()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a.logger.Info("shutting down")
	if a.raft.State() == raft.Leader && a.hasPeers() {
		if err := a.raft.LeadershipTransfer().Error(); err != nil {
			a.logger.Warn("leadership transfer failed; peers will elect a leader after the election timeout", "error", err)
		} else {
			a.logger.Info("transferred leadership before stopping")
		}
	}
	close(a.shutdownCh)
	// A paced snapshot in progress would hold the shutdown (raft and the
	// snapshot-turns service wait for it) past the timeout.
	a.fsm.AbortSnapshots()
	a.stopExternalEvents(ctx)
	a.stopMetrics(ctx)
	if err := a.api.Shutdown(ctx); err != nil {
		a.logger.Warn("api shutdown", "error", err)
	}
	a.wg.Wait()
	a.removeDevExtensions(ctx)
	var errs []error
	if err := a.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
	}
	if err := a.transport.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := a.closeStores(); err != nil {
		errs = append(errs, err)
	} else if err := markClean(a.cfg.Server.DataDir, a.fsm.AppliedIndex()); err != nil {
		errs = append(errs, fmt.Errorf("mark state clean: %w", err))
	}
	return errors.Join(errs...)
}

// stopRaft undoes what setupRaft started when New fails: raft's
// goroutines would otherwise keep running on the state file closeStores
// closes, and the transport would keep server.raft_addr bound, so a retry
// in the same process (or a test) could not listen on it.
func (a *Agent) stopRaft() {
	if a.raft != nil {
		if err := a.raft.Shutdown().Error(); err != nil {
			a.logger.Warn("raft shutdown after a failed start", "error", err)
		}
	}
	if a.transport != nil {
		if err := a.transport.Close(); err != nil {
			a.logger.Warn("raft transport close after a failed start", "error", err)
		}
	}
}

// closeStores flushes and closes the state file and the raft log.
func (a *Agent) closeStores() error {
	var errs []error
	if a.fsm != nil {
		a.fsm.Flush()
	}
	if a.db != nil {
		if err := a.db.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("flush state: %w", err))
		}
		if err := a.db.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if a.logStore != nil {
		if err := a.logStore.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Agent) hasPeers() bool {
	f := a.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	return len(f.Configuration().Servers) > 1
}

// NodeID implements api.Cluster.
func (a *Agent) NodeID() string { return a.nodeID }

// FSM implements api.Cluster.
func (a *Agent) FSM() *fsm.FSM { return a.fsm }

// APIURL is where this node's API is reachable.
func (a *Agent) APIURL() string { return a.cfg.APIURL() }

// maxEntrySize caps a raft entry (docs/architecture.md §3): bigger entries delay
// heartbeats, which are sent on the same connection.
const maxEntrySize = 512 << 10

// Apply implements api.Cluster: it replicates one command and returns the
// FSM's result and the entry's index.
func (a *Agent) Apply(ctx context.Context, t fsm.CommandType, meta fsm.Meta, body any) (*fsm.Result, uint64, error) {
	data, err := fsm.Encode(t, meta, body)
	if err != nil {
		return nil, 0, err
	}
	if len(data) > maxEntrySize {
		return nil, 0, fmt.Errorf("%w: %d bytes, the limit is %d", api.ErrEntryTooLarge, len(data), maxEntrySize)
	}
	timeout := a.cfg.Raft.ApplyTimeout.D()
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	f := a.raft.Apply(data, timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return nil, 0, mapRaftError(err)
		}
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("%w: %v", api.ErrOutcomeUnknown, ctx.Err())
	}
	res, _ := f.Response().(*fsm.Result)
	if res == nil {
		res = &fsm.Result{}
	}
	return res, f.Index(), nil
}

// mapRaftError sorts raft's errors into "nothing was written, retry" and
// "the outcome is unknown".
func mapRaftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %v", api.ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %v", api.ErrNoLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %v", api.ErrOutcomeUnknown, err)
	}
	return err
}

// applySystem applies a command the node itself decided on.
func (a *Agent) applySystem(ctx context.Context, t fsm.CommandType, body any) (*fsm.Result, error) {
	res, _, err := a.Apply(ctx, t, fsm.Meta{Actor: "system", Timestamp: time.Now().UnixMilli()}, body)
	if err != nil {
		return nil, err
	}
	return res, res.Err
}

// IsLeader implements api.Cluster.
func (a *Agent) IsLeader() bool { return a.raft.State() == raft.Leader }

// Ready implements api.Cluster: leader and established.
func (a *Agent) Ready() bool { return a.ready.Load() && a.IsLeader() }

// Leader implements api.Cluster.
func (a *Agent) Leader() (string, string) {
	_, id := a.raft.LeaderWithID()
	if id == "" {
		return "", ""
	}
	if string(id) == a.nodeID {
		return a.nodeID, a.cfg.APIURL()
	}
	var url string
	// Every forwarded request asks; a member's address is written once at
	// join, so committed state suffices and no commit is forced.
	_ = a.fsm.ViewCommitted(func(tx *bbolt.Tx) error {
		if s, err := store.GetServer(tx, string(id)); err == nil && s != nil {
			url = s.APIAddr
		}
		return nil
	})
	return string(id), url
}

// LastContact implements api.Cluster.
func (a *Agent) LastContact() time.Duration {
	if a.IsLeader() {
		return 0
	}
	last := a.raft.LastContact()
	if last.IsZero() {
		return -time.Millisecond
	}
	return time.Since(last)
}

// LastLogIndex implements api.Cluster.
func (a *Agent) LastLogIndex() uint64 { return a.raft.LastIndex() }

// State implements api.Cluster.
func (a *Agent) State() string { return a.raft.State().String() }

// VerifyLeader implements api.Cluster.
func (a *Agent) VerifyLeader(ctx context.Context) error {
	f := a.raft.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return mapRaftError(err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HasState implements api.Cluster: true once this node is in a raft
// configuration (bootstrapped or joined).
func (a *Agent) HasState() bool {
	f := a.raft.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// ClusterSecret implements api.Cluster.
func (a *Agent) ClusterSecret() string { return a.cfg.Cluster.Secret }

func (a *Agent) clusterID() string {
	var id string
	_ = a.fsm.View(func(tx *bbolt.Tx) error {
		id = store.ClusterID(tx)
		return nil
	})
	return id
}

// NewLogger builds the node's logger from the server settings.
func NewLogger(cfg ServerConfig) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "gofer",
		Level:      hclog.LevelFromString(strings.ToLower(cfg.LogLevel)),
		JSONFormat: cfg.LogFormat == "json",
		Output:     os.Stderr,
	})
}

// stateFlushInterval bounds how long applied entries wait in the FSM's
// pending transaction when no reader forces a commit.
const stateFlushInterval = 50 * time.Millisecond

// flushState commits the FSM's pending transaction periodically, so a
// write-only stretch does not keep a growing transaction open.
func (a *Agent) flushState() {
	t := time.NewTicker(stateFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-a.shutdownCh:
			return
		case <-t.C:
			if a.fsm.Dirty() {
				a.fsm.Flush()
			}
		}
	}
}

// newScheduler builds the configured container backend. Creating the
// Docker or Nomad client does not contact the engine; an unreachable
// engine shows up as task failures that say so.
func newScheduler(cfg SchedulerConfig, logger hclog.Logger) (scheduler.Scheduler, error) {
	if cfg.Engine == "noop" {
		logger.Warn("scheduler.engine is noop: tasks run nothing (benchmarks only)")
		return noop.New(), nil
	}
	if cfg.Engine == "nomad" {
		n := cfg.Nomad
		return nomad.New(nomad.Options{
			Address:     n.Address,
			Region:      n.Region,
			Namespace:   n.Namespace,
			Datacenters: n.Datacenters,
			Token:       n.Token,
			TLS: nomad.TLS{CACert: n.CACert, ClientCert: n.ClientCert, ClientKey: n.ClientKey,
				ServerName: n.TLSServerName, Insecure: n.TLSSkipVerify},
			CPU:       n.CPU,
			MemoryMB:  n.Memory,
			StopGrace: n.StopGrace.D(),
			Logger:    logger,
			// How long a job may wait unplaced before the attempt fails.
			PlacementTimeout: n.PlacementTimeout.D(),
			LogSettle:        n.LogSettle.D(),
		})
	}
	return docker.New(docker.Options{
		Host:        cfg.Docker.Host,
		Network:     cfg.Docker.Network,
		PullTimeout: cfg.Docker.PullTimeout.D(),
		Logger:      logger,
	})
}

// apiURLs lists every member's API address, for GOFER_API_BASE_URL.
func (a *Agent) apiURLs() []string {
	var urls []string
	_ = a.fsm.ViewCommitted(func(tx *bbolt.Tx) error {
		servers, err := store.ListServers(tx)
		for _, s := range servers {
			urls = append(urls, s.APIAddr)
		}
		return err
	})
	if len(urls) == 0 {
		urls = []string{a.cfg.APIURL()}
	}
	return urls
}
