package agent

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/goferhq/gofer/api"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/seal"
)

// DefaultConfigPath is where `gofer service start` looks for its file.
const DefaultConfigPath = "/etc/gofer/gofer.toml"

// EnvPrefix prefixes configuration environment variables:
// GOFER_WEB_<SECTION>__<KEY>, e.g. GOFER_WEB_SERVER__API_ADDR.
const EnvPrefix = "GOFER_WEB_"

// Config is a node's configuration. Sources, later winning: built-in
// defaults, the TOML file, GOFER_WEB_* environment variables, flags.
type Config struct {
	Server    ServerConfig      `toml:"server"`
	Raft      RaftConfig        `toml:"raft"`
	Cluster   ClusterConfig     `toml:"cluster"`
	API       APIConfig         `toml:"api"`
	Scheduler SchedulerConfig   `toml:"scheduler"`
	Secrets   SecretStoreConfig `toml:"secret_store"`
	Objects   ObjectStoreConfig `toml:"object_store"`
	// Extensions configures the extension supervisor (agent/supervisor).
	Extensions ExtensionsConfig `toml:"extensions"`
	// ExternalEvents is the external-events listener (webhooks for
	// extensions; config_external.go).
	ExternalEvents ExternalEventsConfig `toml:"external_events"`
	// Metrics is who may read GET /metrics (config_metrics.go).
	Metrics MetricsConfig `toml:"metrics"`
	// TLS is the API's certificate and the cluster CA (config_tls.go).
	TLS TLSConfig `toml:"tls"`
}

// SchedulerConfig picks and tunes the container backend.
type SchedulerConfig struct {
	// Engine is "docker", "nomad", or "noop" for control-plane
	// benchmarks only (containers do nothing and cannot survive a leader
	// change).
	Engine string       `toml:"engine"`
	Docker DockerConfig `toml:"docker"`
	Nomad  NomadConfig  `toml:"nomad"`
}

// NomadConfig tunes the Nomad backend (docs/nomad.md): each task attempt
// is a Nomad batch job. Every node must reach the same Nomad cluster.
type NomadConfig struct {
	// Address is Nomad's HTTP API, e.g. "https://nomad.internal:4646".
	Address string `toml:"address"`
	// Region and Namespace of the jobs; empty: the agent's region, the
	// "default" namespace.
	Region    string `toml:"region"`
	Namespace string `toml:"namespace"`
	// Datacenters the jobs may run in; empty: any ("*").
	Datacenters []string `toml:"datacenters"`
	// Token is the ACL token; prefer GOFER_WEB_SCHEDULER__NOMAD__TOKEN.
	Token string `toml:"token"`
	// TLS: PEM files and options for an https address.
	CACert        string `toml:"ca_cert"`
	ClientCert    string `toml:"client_cert"`
	ClientKey     string `toml:"client_key"`
	TLSServerName string `toml:"tls_server_name"`
	TLSSkipVerify bool   `toml:"tls_skip_verify"`
	// CPU (MHz) and Memory (MB) a task reserves when its pipeline config
	// does not set its resources.
	CPU    int `toml:"cpu"`
	Memory int `toml:"memory"`
	// StopGrace is each task's kill_timeout (SIGTERM to SIGKILL).
	StopGrace Duration `toml:"stop_grace"`
	// ExtensionPorts ("first-last") are the host ports extensions listen
	// on: each extension's job reserves one, on the host network of the
	// Nomad client it is placed on (agent/supervisor DESIGN.md).
	ExtensionPorts string `toml:"extension_ports"`
	// PlacementTimeout is how long a task's job may wait for Nomad to
	// place it before the attempt fails with Nomad's reason.
	PlacementTimeout Duration `toml:"placement_timeout"`
	// LogSettle is how long a task's logs are still read after it ended
	// (Nomad writes the last output to its log files asynchronously).
	LogSettle Duration `toml:"log_settle"`
}

// DockerConfig tunes the Docker backend. Every node must reach the same
// Docker engine (one host, or a shared DOCKER_HOST): the leader that
// recovers a run must see the containers the previous leader started.
type DockerConfig struct {
	// Host overrides DOCKER_HOST, e.g. "unix:///var/run/docker.sock" or
	// "tcp://10.0.0.5:2376".
	Host string `toml:"host"`
	// Network is the network mode of task containers: "bridge", "host",
	// "none" or a user-defined network's name.
	Network     string   `toml:"network"`
	PullTimeout Duration `toml:"pull_timeout"`
}

// ServerConfig is the node's identity, addresses and storage.
type ServerConfig struct {
	// NodeID names this node in the raft configuration; empty means a
	// generated id persisted in DataDir/node-id.
	NodeID  string `toml:"node_id"`
	DataDir string `toml:"data_dir"`
	// APIAddr is the host:port the HTTP API listens on.
	APIAddr string `toml:"api_addr"`
	// APIAdvertise is the URL other nodes and clients use to reach this
	// node's API; default http://<api_addr>.
	APIAdvertise string `toml:"api_advertise"`
	// RaftAddr is the host:port raft listens on.
	RaftAddr string `toml:"raft_addr"`
	// RaftAdvertise is the host:port peers dial; default RaftAddr.
	RaftAdvertise string `toml:"raft_advertise"`
	// Bootstrap forms a new single-node cluster on first start.
	Bootstrap bool `toml:"bootstrap"`
	// Join lists API URLs of existing members to join through.
	Join []string `toml:"join"`
	// Dev runs a single self-bootstrapped node on loopback with auth off.
	Dev       bool   `toml:"dev"`
	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`
	// ShutdownTimeout bounds a graceful stop (leadership transfer, open
	// streams).
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// PprofAddr, when set, serves Go's profiler (/debug/pprof/) on this
	// host:port, separately from the API and without auth: keep it on
	// loopback or a private interface.
	PprofAddr string `toml:"pprof_addr"`
	// ExtensionAddress (host:port) is where extension containers reach
	// the API: with it, extensions join scheduler.docker.network and get
	// it as GOFER_HOST; without, they run on the host network and reach
	// the leader's API directly (agent/supervisor DESIGN.md). On Nomad
	// it is only their GOFER_HOST (e.g. a load balancer of the members).
	ExtensionAddress string `toml:"extension_address"`
}

// ExtensionsConfig is the [extensions] section (docs/configuration.md).
type ExtensionsConfig struct {
	// InstallStdExtensions installs interval and cron (the built-in
	// images) on the cluster's first establish; once per cluster.
	InstallStdExtensions bool `toml:"install_std_extensions"`
	// StopTimeout is the SIGTERM-to-SIGKILL grace when an extension's
	// container is stopped (uninstall, replace, failed health).
	StopTimeout Duration `toml:"stop_timeout"`
	// CallExtensions: the leader calls the extensions its supervisor runs
	// — subscriptions are validated by the extension, external events and
	// the debug route are passed on (docs/extensions.md). Off only for
	// extensions run outside the supervisor, which the leader cannot call:
	// then subscriptions get the built-in check only.
	CallExtensions bool `toml:"call_extensions"`
	// TriggerKeyRetention is how long a trigger key (docs/triggers.md) is
	// kept. A tick key older than its subscription's watermark is refused
	// anyway, so this bounds only how late a GitHub redelivery (or
	// another non-tick key) is still recognised.
	TriggerKeyRetention Duration `toml:"trigger_key_retention"`
}

// RaftConfig tunes consensus timing and log compaction.
type RaftConfig struct {
	HeartbeatTimeout   Duration `toml:"heartbeat_timeout"`
	ElectionTimeout    Duration `toml:"election_timeout"`
	LeaderLeaseTimeout Duration `toml:"leader_lease_timeout"`
	CommitTimeout      Duration `toml:"commit_timeout"`
	SnapshotInterval   Duration `toml:"snapshot_interval"`
	SnapshotThreshold  uint64   `toml:"snapshot_threshold"`
	// SnapshotSlot is each voter's turn to snapshot (agent/snapslots): the
	// same on every node, so no two voters snapshot at once.
	SnapshotSlot Duration `toml:"snapshot_slot"`
	// SnapshotWriteRate bounds how fast a snapshot is written, in bytes
	// per second (0: unlimited).
	SnapshotWriteRate int64    `toml:"snapshot_write_rate"`
	TrailingLogs      uint64   `toml:"trailing_logs"`
	ApplyTimeout      Duration `toml:"apply_timeout"`
	// LogStore is where raft keeps its log and stable store: "boltdb"
	// (raft-boltdb/v2, raft.db) or "wal" (raft-wal, wal/). A data dir
	// keeps the store it was created with (logstore.go).
	LogStore string `toml:"log_store"`
}

// ClusterConfig holds what nodes share.
type ClusterConfig struct {
	// Secret lets nodes join without an admin token (the --join flag at
	// start). Every node that accepts joins must have the same value; at
	// least 32 characters.
	Secret string `toml:"secret"`
}

// APIConfig tunes the REST API and retention.
type APIConfig struct {
	// MaxRequestBody caps request bodies in bytes (raft entries are
	// limited to 512 KiB, so larger writes are refused anyway).
	MaxRequestBody int64 `toml:"max_request_body"`
	// EventLogRetention is how long events are kept.
	EventLogRetention Duration `toml:"event_log_retention"`
	// EventPruneInterval is how often the leader prunes events.
	EventPruneInterval Duration `toml:"event_prune_interval"`
	// PipelineVersionRetention is how many config versions a pipeline
	// keeps; the live version is never pruned. 0 keeps every version.
	PipelineVersionRetention int `toml:"pipeline_version_retention"`
	// GlobalRunConcurrencyLimit caps running runs across the cluster;
	// runs over it wait in order. 0: no cap.
	GlobalRunConcurrencyLimit int `toml:"global_run_concurrency_limit"`
	// PipelineRunConcurrencyLimit caps running runs of a pipeline whose
	// config sets no parallelism. 0: no cap.
	PipelineRunConcurrencyLimit int `toml:"pipeline_run_concurrency_limit"`
	// TaskExecutionLogRetention is how many of each pipeline's newest runs
	// keep their task logs. 0 keeps all.
	TaskExecutionLogRetention int `toml:"task_execution_log_retention"`
	// RunRetentionCount and RunRetentionAge are run retention
	// (docs/runs.md, "Run retention"): the leader deletes each pipeline's
	// finished runs beyond its newest RunRetentionCount, and those that
	// ended more than RunRetentionAge ago, with their task logs and run
	// objects. 0 turns a limit off; both off (the default) keeps every
	// run. A pipeline's run_retention setting replaces both.
	RunRetentionCount int64    `toml:"run_retention_count"`
	RunRetentionAge   Duration `toml:"run_retention_age"`
	// TaskExecutionLogMaxBytes caps each task's stored output; past it
	// the log ends with a truncation marker.
	TaskExecutionLogMaxBytes int64 `toml:"task_execution_log_max_bytes"`
	// TaskExecutionStopTimeout is how long a cancelled or timed-out task's
	// container gets between SIGTERM and SIGKILL.
	TaskExecutionStopTimeout Duration `toml:"task_execution_stop_timeout"`
	// MaxConnections caps open API connections; over it a node sheds idle
	// connections and answers only health checks (see api/connlimit.go).
	// 0: min(4096, half the open-file limit). It is always kept below the
	// open-file limit, which raft, the stores and Docker share.
	MaxConnections int `toml:"max_connections"`
	// BodyReadTimeout and BodyMinRate bound a request body: it must arrive
	// within the timeout plus one second per BodyMinRate bytes received.
	BodyReadTimeout Duration `toml:"body_read_timeout"`
	BodyMinRate     int64    `toml:"body_min_rate"`
	// StreamKeepAlive is how often a quiet follow stream (events, framed
	// logs) sends a keep-alive, so a load balancer's idle timeout does
	// not cut it; keep it under that timeout.
	StreamKeepAlive Duration `toml:"stream_keep_alive"`
	// RateLimit is the requests per second each token may make to a
	// node, with bursts of RateBurst. Over it: 429 with Retry-After.
	// 0: no limit.
	RateLimit int `toml:"rate_limit"`
	RateBurst int `toml:"rate_burst"`
	// AnonymousRateLimit and AnonymousRateBurst limit the requests
	// without a valid token (none, unknown, expired) per client address.
	// 0: no limit.
	AnonymousRateLimit int `toml:"anonymous_rate_limit"`
	AnonymousRateBurst int `toml:"anonymous_rate_burst"`
	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's headers; MaxHeaderBytes caps their size (431 over it);
	// IdleTimeout closes a kept-alive connection idle that long. The
	// external-events listener uses them too, its header size and idle
	// timeout capped at 64 KiB and 30 s.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	MaxHeaderBytes    int      `toml:"max_header_bytes"`
	IdleTimeout       Duration `toml:"idle_timeout"`
}

// SecretStoreConfig configures the encrypted secret store.
type SecretStoreConfig struct {
	// EncryptionKey seals every secret value (AES-256-GCM under its
	// SHA-256). Every node needs the same key; at least 32 characters, not
	// a sample. Required outside dev mode; dev mode generates one and keeps
	// it in the data dir.
	EncryptionKey string `toml:"encryption_key"`
	// PreviousEncryptionKeys are keys secrets may still be sealed under:
	// a node opens values sealed under any of them, so the cluster keeps
	// serving while `gofer service rotate-encryption-key` re-seals every
	// value under EncryptionKey. Remove the old key once the rotation
	// reports done (docs/secrets-and-objects.md, "Rotating the key").
	PreviousEncryptionKeys []string `toml:"previous_encryption_keys"`
	// RotationBatchSize bounds how many records one re-seal command
	// carries during a rotation.
	RotationBatchSize int `toml:"rotation_batch_size"`
	// RotationBatchInterval paces a rotation: the pause between re-seal
	// commands (0: none). Meant for tests that must observe a rotation in
	// its middle; production leaves it at 0.
	RotationBatchInterval Duration `toml:"rotation_batch_interval"`
}

// ObjectStoreConfig configures the pipeline and run object stores.
type ObjectStoreConfig struct {
	// MaxObjectBytes caps one object; larger uploads get 413.
	MaxObjectBytes int64 `toml:"max_object_bytes"`
	// PipelineObjectLimit caps each pipeline's objects; storing one more
	// evicts the oldest. 0: no cap.
	PipelineObjectLimit int `toml:"pipeline_object_limit"`
	// RunObjectLimit caps each run's objects; one more is refused.
	// 0: no cap.
	RunObjectLimit int `toml:"run_object_limit"`
	// RunObjectExpiry: the objects of all but each pipeline's newest N
	// finished runs are deleted. 0: run objects never expire.
	RunObjectExpiry int `toml:"run_object_expiry"`
}

// Duration is a time.Duration written as a string ("1s", "4380h").
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a value like 500ms, 30s or 4380h", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText prints the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// DefaultConfig is the configuration before any file, env or flag.
func DefaultConfig() Config {
	return Config{
		Server: ServerConfig{
			DataDir:         "/var/lib/gofer",
			APIAddr:         "0.0.0.0:8080",
			RaftAddr:        "0.0.0.0:8081",
			LogLevel:        "info",
			LogFormat:       "pretty",
			ShutdownTimeout: Duration(15 * time.Second),
		},
		Raft: RaftConfig{
			HeartbeatTimeout:   Duration(time.Second),
			ElectionTimeout:    Duration(time.Second),
			LeaderLeaseTimeout: Duration(500 * time.Millisecond),
			CommitTimeout:      Duration(50 * time.Millisecond),
			SnapshotInterval:   Duration(2 * time.Minute),
			SnapshotThreshold:  8192,
			SnapshotSlot:       Duration(time.Minute),
			SnapshotWriteRate:  64 << 20,
			TrailingLogs:       10240,
			ApplyTimeout:       Duration(10 * time.Second),
			LogStore:           LogStoreBoltDB,
		},
		API: APIConfig{
			MaxRequestBody:              512 << 10,
			EventLogRetention:           Duration(4380 * time.Hour),
			EventPruneInterval:          Duration(time.Hour),
			PipelineVersionRetention:    10,
			GlobalRunConcurrencyLimit:   2000,
			PipelineRunConcurrencyLimit: 200,
			TaskExecutionLogRetention:   50,
			TaskExecutionLogMaxBytes:    4 << 20,
			TaskExecutionStopTimeout:    Duration(30 * time.Second),
			BodyReadTimeout:             Duration(api.DefaultBodyReadTimeout),
			BodyMinRate:                 api.DefaultBodyMinRate,
			StreamKeepAlive:             Duration(api.DefaultStreamKeepAlive),
			RateLimit:                   api.DefaultRateLimit,
			RateBurst:                   api.DefaultRateBurst,
			AnonymousRateLimit:          api.DefaultAnonRateLimit,
			AnonymousRateBurst:          api.DefaultAnonRateBurst,
			ReadHeaderTimeout:           Duration(api.DefaultReadHeaderTimeout),
			MaxHeaderBytes:              api.DefaultMaxHeaderBytes,
			IdleTimeout:                 Duration(api.DefaultIdleTimeout),
		},
		Scheduler: SchedulerConfig{
			Engine: "docker",
			Docker: DockerConfig{Network: "bridge", PullTimeout: Duration(5 * time.Minute)},
			Nomad: NomadConfig{Address: "http://127.0.0.1:4646", CPU: 100, Memory: 256,
				StopGrace: Duration(10 * time.Second), ExtensionPorts: "19500-19599", PlacementTimeout: Duration(5 * time.Minute), LogSettle: Duration(2 * time.Second)},
		},
		Secrets: SecretStoreConfig{RotationBatchSize: 64},
		Objects: ObjectStoreConfig{MaxObjectBytes: 256 << 10, PipelineObjectLimit: 50, RunObjectLimit: 100, RunObjectExpiry: 2},
		Extensions: ExtensionsConfig{InstallStdExtensions: true, StopTimeout: Duration(10 * time.Second), CallExtensions: true,
			TriggerKeyRetention: Duration(7 * 24 * time.Hour)},
		ExternalEvents: ExternalEventsConfig{BindAddress: DefaultExternalEventsAddr},
		Metrics:        MetricsConfig{Access: api.MetricsAccessToken},
	}
}

// DevConfig adjusts cfg for dev mode: loopback only, a dev data folder,
// self-bootstrap. Auth is off in dev mode (the API checks Server.Dev).
func DevConfig(cfg Config) Config {
	cfg.Server.Dev = true
	cfg.Server.Bootstrap = true
	cfg.Server.Join = nil
	if cfg.Server.DataDir == DefaultConfig().Server.DataDir {
		cfg.Server.DataDir = filepath.Join(os.TempDir(), "gofer-dev")
	}
	if cfg.Server.APIAddr == DefaultConfig().Server.APIAddr {
		cfg.Server.APIAddr = "127.0.0.1:8080"
	}
	if cfg.Server.RaftAddr == DefaultConfig().Server.RaftAddr {
		cfg.Server.RaftAddr = "127.0.0.1:8081"
	}
	// A single node elects itself after one heartbeat timeout; keep dev
	// start-up snappy unless the timing was configured explicitly.
	if cfg.Raft == DefaultConfig().Raft {
		cfg.Raft.HeartbeatTimeout = Duration(250 * time.Millisecond)
		cfg.Raft.ElectionTimeout = Duration(250 * time.Millisecond)
		cfg.Raft.LeaderLeaseTimeout = Duration(125 * time.Millisecond)
	}
	return cfg
}

// LoadFile decodes a TOML file over cfg. Unknown keys are errors that
// name the key, so a typo is caught at start instead of ignored.
func LoadFile(cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return DecodeTOML(cfg, data)
}

// DecodeTOML decodes TOML text over cfg.
func DecodeTOML(cfg *Config, data []byte) error {
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return fmt.Errorf("config: unknown key(s) %s", strings.Join(keys, ", "))
	}
	return nil
}

// Validate checks the configuration is usable and safe; errors name the
// setting.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	s := c.Server
	if s.NodeID != "" {
		if err := sdk.ValidateIdentifier(s.NodeID); err != nil {
			add("server.node_id: %v", err)
		}
	}
	if s.DataDir == "" {
		add("server.data_dir is required")
	}
	if _, _, err := net.SplitHostPort(s.APIAddr); err != nil {
		add("server.api_addr %q must be host:port", s.APIAddr)
	}
	if _, _, err := net.SplitHostPort(s.RaftAddr); err != nil {
		add("server.raft_addr %q must be host:port", s.RaftAddr)
	}
	if s.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(s.PprofAddr); err != nil {
			add("server.pprof_addr %q must be host:port", s.PprofAddr)
		}
	}
	c.validateMetrics(add)
	c.validateTLS(add)
	if ee := c.ExternalEvents; ee.Enable {
		if _, _, err := net.SplitHostPort(ee.BindAddress); err != nil {
			add("external_events.bind_address %q must be host:port", ee.BindAddress)
		}
	}
	if s.APIAdvertise != "" {
		if u, err := url.Parse(s.APIAdvertise); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("server.api_advertise %q must be an http(s) URL", s.APIAdvertise)
		}
	}
	if adv := c.RaftAdvertise(); isUnspecified(adv) {
		add("server.raft_addr %q listens on all interfaces; set server.raft_advertise to the address peers dial", s.RaftAddr)
	}
	if isUnspecified(s.APIAddr) && s.APIAdvertise == "" && (s.Bootstrap || len(s.Join) > 0) {
		add("server.api_addr %q listens on all interfaces; set server.api_advertise to the URL peers use", s.APIAddr)
	}
	for _, j := range s.Join {
		if u, err := url.Parse(j); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("server.join entry %q must be an http(s) URL of a member's API", j)
		}
	}
	if s.Bootstrap && len(s.Join) > 0 && !s.Dev {
		add("server.bootstrap and server.join are exclusive: bootstrap forms a new cluster, join enters an existing one")
	}
	if s.Dev {
		for _, addr := range []string{s.APIAddr, s.RaftAddr} {
			if !isLoopback(addr) {
				add("dev mode turns authentication off, so it binds loopback only; %q is not a loopback address", addr)
			}
		}
	}
	switch strings.ToLower(s.LogLevel) {
	case "trace", "debug", "info", "warn", "error":
	default:
		add("server.log_level %q must be trace, debug, info, warn or error", s.LogLevel)
	}
	if s.LogFormat != "pretty" && s.LogFormat != "json" {
		add("server.log_format %q must be pretty or json", s.LogFormat)
	}
	r := c.Raft
	if r.HeartbeatTimeout.D() < 5*time.Millisecond || r.ElectionTimeout.D() < 5*time.Millisecond {
		add("raft.heartbeat_timeout and raft.election_timeout must be at least 5ms")
	}
	if r.LeaderLeaseTimeout.D() > r.HeartbeatTimeout.D() {
		add("raft.leader_lease_timeout (%s) may not exceed raft.heartbeat_timeout (%s)", r.LeaderLeaseTimeout.D(), r.HeartbeatTimeout.D())
	}
	if r.ApplyTimeout.D() <= 0 {
		add("raft.apply_timeout must be positive")
	}
	if !validLogStore(r.LogStore) {
		add("raft.log_store %q must be %s or %s", r.LogStore, LogStoreBoltDB, LogStoreWAL)
	}
	if r.SnapshotInterval.D() < 5*time.Millisecond {
		add("raft.snapshot_interval must be at least 5ms")
	}
	if r.SnapshotThreshold == 0 {
		add("raft.snapshot_threshold must be at least 1")
	}
	if r.SnapshotSlot.D() < 100*time.Millisecond {
		add("raft.snapshot_slot must be at least 100ms (it should exceed twice the time a snapshot takes)")
	}
	if w := r.SnapshotWriteRate; w < 0 || (w > 0 && w < 1<<20) {
		add("raft.snapshot_write_rate (%d) must be 0 (unlimited) or at least 1048576 bytes per second", w)
	}
	if sec := c.Cluster.Secret; sec != "" && len(sec) < 32 {
		add("cluster.secret must be at least 32 characters (it lets nodes join the cluster)")
	}
	if len(s.Join) > 0 && !s.Dev && c.Cluster.Secret == "" {
		add("server.join needs cluster.secret (GOFER_WEB_CLUSTER__SECRET) so the cluster can admit this node")
	}
	if c.API.MaxRequestBody <= 0 {
		add("api.max_request_body must be positive")
	}
	if c.API.MaxConnections < 0 {
		add("api.max_connections must be 0 (automatic) or more")
	}
	if c.API.BodyReadTimeout.D() <= 0 || c.API.BodyMinRate <= 0 {
		add("api.body_read_timeout and api.body_min_rate must be positive")
	}
	if c.API.StreamKeepAlive.D() <= 0 {
		add("api.stream_keep_alive must be positive")
	}
	if c.API.RateLimit < 0 {
		add("api.rate_limit must be 0 (no limit) or more requests per second, got %d", c.API.RateLimit)
	}
	if c.API.RateLimit > 0 && c.API.RateBurst < 1 {
		add("api.rate_burst must be at least 1 when api.rate_limit is set, got %d", c.API.RateBurst)
	}
	if c.API.AnonymousRateLimit < 0 {
		add("api.anonymous_rate_limit must be 0 (no limit) or more requests per second, got %d", c.API.AnonymousRateLimit)
	}
	if c.API.AnonymousRateLimit > 0 && c.API.AnonymousRateBurst < 1 {
		add("api.anonymous_rate_burst must be at least 1 when api.anonymous_rate_limit is set, got %d", c.API.AnonymousRateBurst)
	}
	if c.API.ReadHeaderTimeout.D() <= 0 {
		add("api.read_header_timeout must be positive, got %s", c.API.ReadHeaderTimeout.D())
	}
	if c.API.MaxHeaderBytes < 4096 {
		add("api.max_header_bytes must be at least 4096, got %d", c.API.MaxHeaderBytes)
	}
	if c.API.IdleTimeout.D() <= 0 {
		add("api.idle_timeout must be positive, got %s", c.API.IdleTimeout.D())
	}
	if c.API.EventPruneInterval.D() <= 0 || c.API.EventLogRetention.D() <= 0 {
		add("api.event_log_retention and api.event_prune_interval must be positive")
	}
	if c.API.PipelineVersionRetention < 0 {
		add("api.pipeline_version_retention must be 0 (keep all) or more")
	}
	if c.API.GlobalRunConcurrencyLimit < 0 || c.API.PipelineRunConcurrencyLimit < 0 || c.API.TaskExecutionLogRetention < 0 {
		add("api.global_run_concurrency_limit, api.pipeline_run_concurrency_limit and api.task_execution_log_retention must be 0 (no limit) or more")
	}
	// The pipeline setting's bounds (sdk.MaxRunRetentionCount, about ten
	// years of age): a longer age would put the leader's cut-off before
	// the epoch.
	if c.API.RunRetentionCount < 0 || c.API.RunRetentionCount > sdk.MaxRunRetentionCount {
		add("api.run_retention_count must be between 0 (keep every run) and %d, got %d", sdk.MaxRunRetentionCount, c.API.RunRetentionCount)
	}
	if c.API.RunRetentionAge.D() < 0 || c.API.RunRetentionAge.D() > sdk.MaxRunRetentionAge {
		add("api.run_retention_age must be between 0 (no age limit) and %s, got %s", sdk.MaxRunRetentionAge, c.API.RunRetentionAge.D())
	}
	if c.API.TaskExecutionLogMaxBytes < 1024 {
		add("api.task_execution_log_max_bytes must be at least 1024")
	}
	if c.API.TaskExecutionStopTimeout.D() <= 0 {
		add("api.task_execution_stop_timeout must be positive")
	}
	if key := c.Secrets.EncryptionKey; key != "" {
		if err := seal.CheckKey(key); err != nil {
			add("%v", err)
		}
		for i, prev := range c.Secrets.PreviousEncryptionKeys {
			if err := seal.CheckKey(prev); err != nil {
				add("secret_store.previous_encryption_keys[%d]: %v", i, err)
			}
		}
	} else if len(c.Secrets.PreviousEncryptionKeys) > 0 {
		add("secret_store.previous_encryption_keys needs secret_store.encryption_key: the configured key is the one secrets are rotated to")
	} else if !s.Dev {
		add("secret_store.encryption_key is required (GOFER_WEB_SECRET_STORE__ENCRYPTION_KEY): every node needs the same key of at least 32 characters; generate one with `openssl rand -hex 32`")
	}
	if c.Secrets.RotationBatchSize < 1 || c.Secrets.RotationBatchSize > maxRotationBatch {
		add("secret_store.rotation_batch_size must be between 1 and %d, got %d", maxRotationBatch, c.Secrets.RotationBatchSize)
	}
	if c.Secrets.RotationBatchInterval.D() < 0 {
		add("secret_store.rotation_batch_interval must be 0 or more")
	}
	if o := c.Objects; o.MaxObjectBytes <= 0 || o.MaxObjectBytes > api.MaxObjectBytesLimit {
		add("object_store.max_object_bytes must be between 1 and %d (an object travels in one raft entry), got %d", api.MaxObjectBytesLimit, o.MaxObjectBytes)
	}
	if c.Objects.PipelineObjectLimit < 0 || c.Objects.RunObjectLimit < 0 || c.Objects.RunObjectExpiry < 0 {
		add("object_store.pipeline_object_limit, object_store.run_object_limit and object_store.run_object_expiry must be 0 (no limit) or more")
	}
	switch c.Scheduler.Engine {
	case "docker", "noop":
	case "nomad":
		c.Scheduler.Nomad.validate(add)
	default:
		add("scheduler.engine %q must be docker or nomad (or noop, for benchmarks only)", c.Scheduler.Engine)
	}
	if c.Scheduler.Docker.Network == "" {
		add("scheduler.docker.network must be set (bridge, host, none or a network name)")
	}
	// Extensions (agent/supervisor).
	if ea := s.ExtensionAddress; ea != "" {
		if host, port, err := net.SplitHostPort(ea); err != nil || host == "" || port == "" || strings.Contains(ea, "://") {
			add("server.extension_address %q must be host:port (no scheme), the address extension containers reach the API at", ea)
		} else if isUnspecified(ea) {
			add("server.extension_address %q is not an address a container can dial", ea)
		}
		switch c.Scheduler.Docker.Network {
		case "host", "none":
			if c.Scheduler.Engine == "nomad" {
				// On Nomad extensions run on the host network of a
				// client; extension_address is only their GOFER_HOST.
				break
			}
			add("server.extension_address needs scheduler.docker.network to be a network containers get an address on (bridge or a user-defined network), not %q", c.Scheduler.Docker.Network)
		}
	}
	if c.Extensions.StopTimeout.D() <= 0 {
		add("extensions.stop_timeout must be positive")
	}
	if c.Extensions.TriggerKeyRetention.D() < time.Hour {
		add("extensions.trigger_key_retention must be at least 1h (GitHub redelivers for days)")
	}
	return errors.Join(errs...)
}

// APIURL is the URL peers and clients use for this node's API.
func (c Config) APIURL() string {
	if c.Server.APIAdvertise != "" {
		return strings.TrimRight(c.Server.APIAdvertise, "/")
	}
	if c.TLS.Enabled() {
		return "https://" + c.Server.APIAddr
	}
	return "http://" + c.Server.APIAddr
}

// RaftAdvertise is the raft address peers dial.
func (c Config) RaftAdvertise() string {
	if c.Server.RaftAdvertise != "" {
		return c.Server.RaftAdvertise
	}
	return c.Server.RaftAddr
}

func isUnspecified(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
