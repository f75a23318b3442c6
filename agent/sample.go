package agent

// SampleConfig is what `gofer service init-config` prints: every setting
// with its default and what it does.
const SampleConfig = `# Gofer server configuration (TOML).
#
# Sources, later winning: built-in defaults, this file, environment variables
# named GOFER_WEB_<SECTION>__<KEY> (e.g. GOFER_WEB_SERVER__API_ADDR), flags of
# 'gofer service start'. Durations are strings like "500ms", "30s", "4380h".
#
# A three-node cluster: start one node with bootstrap = true, then start the
# others with join = ["http://<first-node>:8080"] and the same cluster.secret.

[server]
# Raft server id of this node. Empty: generated once and kept in data_dir/node-id.
node_id = ""
# Where raft's log, snapshots and the state database live.
data_dir = "/var/lib/gofer"
# HTTP API listen address, and the URL other nodes and clients use to reach it.
api_addr = "0.0.0.0:8080"
api_advertise = ""               # e.g. "http://10.0.0.11:8080"; required with 0.0.0.0
# Raft listen address, and the address peers dial.
raft_addr = "0.0.0.0:8081"
raft_advertise = ""              # e.g. "10.0.0.11:8081"; required with 0.0.0.0
# Form a brand-new cluster with this node as its only member (first start only).
bootstrap = false
# Or join an existing cluster through any member's API (retried until it works).
join = []                        # e.g. ["http://10.0.0.11:8080", "http://10.0.0.12:8080"]
# Dev mode: one self-bootstrapped node on 127.0.0.1, authentication OFF.
dev = false
log_level = "info"               # trace, debug, info, warn, error
log_format = "pretty"            # pretty or json
shutdown_timeout = "15s"
# Serve Go's profiler at http://<pprof_addr>/debug/pprof/ (no auth: loopback only). Empty: off.
pprof_addr = ""

[raft]
# Followers start an election after heartbeat_timeout..2x without the leader.
heartbeat_timeout = "1s"
election_timeout = "1s"
leader_lease_timeout = "500ms"
commit_timeout = "50ms"
# A node snapshots (and compacts its log) once threshold entries were added, checked
# every interval, in its own turn: voters take turns of snapshot_slot (same on every
# node), the leader only past 2x threshold; after two cycles of waiting, at once.
snapshot_interval = "2m0s"
snapshot_threshold = 8192
snapshot_slot = "1m0s"
# Bytes per second a snapshot is written at (0: unlimited); 64 MiB/s.
snapshot_write_rate = 67108864
# Entries kept after a snapshot so slow followers can catch up without one.
trailing_logs = 10240
apply_timeout = "10s"
# Where raft keeps its log: "boltdb" (raft.db) or "wal" (raft-wal, wal/; one
# fsync per write). A data dir keeps the store it was created with; see
# docs/production.md "Choosing a log store" to switch.
log_store = "boltdb"

[cluster]
# Shared secret a node presents when it joins with --join. At least 32
# characters; set the same value on every node. Generate one with:
#   head -c 32 /dev/urandom | base64
secret = ""

[api]
# Request bodies above this many bytes get 413.
max_request_body = 524288
# Events older than this are pruned by the leader every event_prune_interval.
event_log_retention = "4380h0m0s"
event_prune_interval = "1h0m0s"
# Config versions kept per pipeline (the live one is never pruned); 0 keeps all.
pipeline_version_retention = 10
# Running runs allowed at once across the cluster, and per pipeline whose config
# sets no parallelism; runs over a limit wait in order. 0: no limit.
global_run_concurrency_limit = 2000
pipeline_run_concurrency_limit = 200
# Each pipeline's newest runs keep their task logs; older runs' logs are deleted.
task_execution_log_retention = 50
# Run retention: each pipeline's finished runs beyond its newest run_retention_count,
# and those that ended more than run_retention_age ago, are deleted with their task
# logs and run objects. 0 turns a limit off; a pipeline's run_retention replaces both.
run_retention_count = 0
run_retention_age = "0s"
# Bytes of output kept per task; past it the log ends with a truncation marker.
task_execution_log_max_bytes = 4194304
# A cancelled or timed-out task's container gets this long after SIGTERM before SIGKILL.
task_execution_stop_timeout = "30s"
# Open API connections allowed; over it idle ones are shed and new ones may only
# ask for health. 0: min(4096, half the open-file limit).
max_connections = 0
# A request body must arrive within body_read_timeout plus one second per
# body_min_rate bytes received (bytes per second); slower clients are cut off.
body_read_timeout = "10s"
body_min_rate = 32768
# Requests per second each token may make to a node, in bursts of up to
# rate_burst. Over it: 429 with Retry-After. 0: no limit.
rate_limit = 100
rate_burst = 200
# The same for requests without a valid token, per client address.
anonymous_rate_limit = 1000
anonymous_rate_burst = 2000
# Headers must arrive within read_header_timeout and fit in max_header_bytes
# (431 over it); kept-alive connections idle for idle_timeout are closed.
read_header_timeout = "10s"
max_header_bytes = 1048576
idle_timeout = "2m0s"

[scheduler]
# "docker" or "nomad" (docs/nomad.md). ("noop" runs nothing and exists only for
# control-plane benchmarks.)
engine = "docker"

[scheduler.docker]
# Every node must reach the same Docker engine: the leader that recovers a run
# after a failover must see the containers the previous leader started.
host = ""                        # DOCKER_HOST override, e.g. "tcp://10.0.0.5:2376"
network = "bridge"               # bridge, host, none, or a user-defined network
pull_timeout = "5m0s"

[scheduler.nomad]
# Used with engine = "nomad": each task attempt is a Nomad batch job with one
# docker task (docs/nomad.md). Every node must reach the same Nomad cluster.
address = "http://127.0.0.1:4646"
region = ""                      # empty: the agent's region
namespace = ""                   # empty: "default"
# datacenters = ["dc1"]          # absent: any ("*")
token = ""                       # ACL token; prefer GOFER_WEB_SCHEDULER__NOMAD__TOKEN
ca_cert = ""                     # PEM files, for an https:// address
client_cert = ""
client_key = ""
tls_server_name = ""
tls_skip_verify = false
cpu = 100                        # MHz a task reserves unless its pipeline says
memory = 256                     # MB a task reserves unless its pipeline says
stop_grace = "10s"               # the task's kill_timeout, when Nomad itself stops a task
# Host ports extensions listen on: each extension's job reserves one on the
# client it runs on (docs/nomad.md, "Extensions on Nomad").
extension_ports = "19500-19599"
placement_timeout = "5m"         # a job no node can run (or a full cluster) fails the attempt after this
log_settle = "2s"                # logs are still read this long after a task ends (raise on loaded Nomad clients)

[secret_store]
# Seals every secret (AES-256-GCM) before it enters raft. Required outside dev
# mode; the SAME key on every node; at least 32 characters, never a sample.
# Generate one with:  openssl rand -hex 32
# Keep it out of this file if you can: GOFER_WEB_SECRET_STORE__ENCRYPTION_KEY.
encryption_key = ""
# Keys secrets may still be sealed under while a rotation re-seals them under
# encryption_key (gofer service rotate-encryption-key). Drop the old key once
# the rotation is done. Env: GOFER_WEB_SECRET_STORE__PREVIOUS_ENCRYPTION_KEYS
# (comma-separated).
# previous_encryption_keys = ["<the old key>"]
# Records one re-seal command of a rotation carries (1-512).
rotation_batch_size = 64
# Pause between re-seal commands; only tests that observe a rotation's middle
# need one.
rotation_batch_interval = "0s"

[object_store]
# Largest object in bytes (an object travels in one raft entry; at most 327680).
max_object_bytes = 262144
# Objects kept per pipeline; storing one more evicts the oldest. 0: no limit.
pipeline_object_limit = 50
# Objects allowed per run; one more is refused. 0: no limit.
run_object_limit = 100
# Run objects are deleted once a pipeline has this many newer runs. 0: never.
run_object_expiry = 2

[external_events]
# A listener of its own for webhooks to extensions (POST /api/external/<extension>),
# without authentication: the extension verifies what it gets. Off by default.
enable = false
bind_address = "0.0.0.0:8083"

[metrics]
# Who may read GET /metrics (docs/metrics.md): "token" (any valid token, the
# default), "open" (no token) or "listener" (only on listen below, without a
# token; the API's /metrics answers 404). Env: GOFER_WEB_METRICS__ACCESS.
access = "token"
# host:port of the metrics listener; only with access = "listener".
# listen = "127.0.0.1:9090"

[tls]
# The API's (and external events') certificate and key, PEM files: set both
# and the API serves https only (TLS 1.2+); SIGHUP reads them again. With ca,
# the cluster CA, members verify each other against it and raft runs over
# mutual TLS. "gofer service gen-certs DIR" writes a test set (docs/tls.md).
# Env: GOFER_WEB_TLS__CERT, GOFER_WEB_TLS__KEY, GOFER_WEB_TLS__CA.
cert = ""
key = ""
ca = ""
`
