package agent

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSampleConfigDecodesToDefaults(t *testing.T) {
	cfg := DefaultConfig()
	if err := DecodeTOML(&cfg, []byte(SampleConfig)); err != nil {
		t.Fatalf("the sample config does not decode: %v", err)
	}
	if !reflect.DeepEqual(cfg, DefaultConfigComparable()) {
		t.Fatalf("the sample config differs from the defaults:\n got %+v\nwant %+v", cfg, DefaultConfig())
	}
}

// DefaultConfigComparable is DefaultConfig with the nil Join the sample's
// empty list decodes to.
func DefaultConfigComparable() Config {
	c := DefaultConfig()
	c.Server.Join = []string{}
	return c
}

func TestDecodeRejectsUnknownKeys(t *testing.T) {
	cfg := DefaultConfig()
	err := DecodeTOML(&cfg, []byte("[server]\napi_adr = \"127.0.0.1:1\"\n"))
	if err == nil || !strings.Contains(err.Error(), "server.api_adr") {
		t.Fatalf("got %v, want an error naming server.api_adr", err)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	cfg := DefaultConfig()
	if err := DecodeTOML(&cfg, []byte("[server]\napi_addr = \"127.0.0.1:9000\"\n[raft]\nheartbeat_timeout = \"2s\"\n")); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"GOFER_WEB_SERVER__API_ADDR=127.0.0.1:9100",
		"GOFER_WEB_SERVER__JOIN=http://a:1, http://b:2",
		"GOFER_WEB_RAFT__ELECTION_TIMEOUT=3s",
		"GOFER_WEB_API__PIPELINE_VERSION_RETENTION=4",
		"GOFER_WEB_SERVER__BOOTSTRAP=true",
		"GOFER_WEB_SCHEDULER__NOMAD__ADDRESS=https://nomad:4646",
		"GOFER_WEB_SCHEDULER__NOMAD__DATACENTERS=dc1, dc2",
		"GOFER_WEB_SCHEDULER__NOMAD__CPU=500",
		"GOFER_WEB_METRICS__ACCESS=listener",
		"GOFER_WEB_METRICS__LISTEN=127.0.0.1:9090",
		"GOFER_WEB_API__RATE_LIMIT=7",
		"GOFER_WEB_API__IDLE_TIMEOUT=45s",
		"PATH=/usr/bin",
	}
	if err := ApplyEnv(&cfg, env); err != nil {
		t.Fatal(err)
	}
	if cfg.Server.APIAddr != "127.0.0.1:9100" {
		t.Errorf("api_addr %q, want the env value", cfg.Server.APIAddr)
	}
	if cfg.Raft.HeartbeatTimeout.D() != 2*time.Second || cfg.Raft.ElectionTimeout.D() != 3*time.Second {
		t.Errorf("raft timeouts %v/%v", cfg.Raft.HeartbeatTimeout.D(), cfg.Raft.ElectionTimeout.D())
	}
	if len(cfg.Server.Join) != 2 || cfg.Server.Join[1] != "http://b:2" {
		t.Errorf("join %q", cfg.Server.Join)
	}
	if cfg.API.PipelineVersionRetention != 4 || !cfg.Server.Bootstrap {
		t.Errorf("retention %d bootstrap %v", cfg.API.PipelineVersionRetention, cfg.Server.Bootstrap)
	}
	if m := cfg.Metrics; m.Access != "listener" || m.Listen != "127.0.0.1:9090" {
		t.Errorf("metrics %+v", m)
	}
	if n := cfg.Scheduler.Nomad; n.Address != "https://nomad:4646" || !reflect.DeepEqual(n.Datacenters, []string{"dc1", "dc2"}) || n.CPU != 500 {
		t.Errorf("scheduler.nomad %+v", n)
	}
	if cfg.API.RateLimit != 7 || cfg.API.IdleTimeout.D() != 45*time.Second {
		t.Errorf("api.rate_limit %d, api.idle_timeout %s", cfg.API.RateLimit, cfg.API.IdleTimeout.D())
	}
}

func TestEnvErrorsNameTheVariable(t *testing.T) {
	for _, kv := range []string{"GOFER_WEB_SERVER__NOPE=1", "GOFER_WEB_RAFT__HEARTBEAT_TIMEOUT=soon", "GOFER_WEB_SERVER=1", "GOFER_WEB_SERVER__BOOTSTRAP=maybe"} {
		cfg := DefaultConfig()
		err := ApplyEnv(&cfg, []string{kv})
		name, _, _ := strings.Cut(kv, "=")
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v, want an error naming the variable", kv, err)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"dev on loopback", func(c *Config) { *c = DevConfig(*c) }, ""},
		{"dev on all interfaces", func(c *Config) { *c = DevConfig(*c); c.Server.APIAddr = "0.0.0.0:8080" }, "loopback"},
		{"unspecified raft addr needs advertise", func(c *Config) { c.Server.RaftAddr = "0.0.0.0:8081" }, "raft_advertise"},
		{"unspecified raft addr with advertise", func(c *Config) { c.Server.RaftAddr = "0.0.0.0:8081"; c.Server.RaftAdvertise = "10.0.0.1:8081" }, ""},
		{"join needs secret", func(c *Config) { c.Server.Join = []string{"http://10.0.0.1:8080"} }, "cluster.secret"},
		{"short secret", func(c *Config) { c.Cluster.Secret = "short" }, "at least 32"},
		{"bootstrap and join", func(c *Config) {
			c.Server.Bootstrap = true
			c.Server.Join = []string{"http://10.0.0.1:8080"}
			c.Cluster.Secret = strings.Repeat("s", 32)
		}, "exclusive"},
		{"bad node id", func(c *Config) { c.Server.NodeID = "a b" }, "server.node_id"},
		{"lease above heartbeat", func(c *Config) { c.Raft.LeaderLeaseTimeout = Duration(2 * time.Second) }, "leader_lease_timeout"},
		{"bad log level", func(c *Config) { c.Server.LogLevel = "loud" }, "log_level"},
		{"wal log store", func(c *Config) { c.Raft.LogStore = "wal" }, ""},
		{"unknown log store", func(c *Config) { c.Raft.LogStore = "rocksdb" }, "raft.log_store"},
		{"no encryption key outside dev mode", func(c *Config) { c.Secrets.EncryptionKey = "" }, "secret_store.encryption_key is required"},
		{"dev mode generates its key", func(c *Config) { *c = DevConfig(*c); c.Secrets.EncryptionKey = "" }, ""},
		{"sample encryption key", func(c *Config) { c.Secrets.EncryptionKey = "changemechangemechangemechangeme" }, "well-known"},
		{"short encryption key", func(c *Config) { c.Secrets.EncryptionKey = "0123456789" }, "at least 32"},
		{"previous key", func(c *Config) { c.Secrets.PreviousEncryptionKeys = []string{"9b2e4c6a8d0f1e3c5a7b9d1f3e5c7a90"} }, ""},
		{"short previous key", func(c *Config) { c.Secrets.PreviousEncryptionKeys = []string{"short"} }, "previous_encryption_keys[0]"},
		{"previous key without a key", func(c *Config) {
			*c = DevConfig(*c)
			c.Secrets.EncryptionKey = ""
			c.Secrets.PreviousEncryptionKeys = []string{"9b2e4c6a8d0f1e3c5a7b9d1f3e5c7a90"}
		}, "previous_encryption_keys needs"},
		{"rotation batch of 0", func(c *Config) { c.Secrets.RotationBatchSize = 0 }, "rotation_batch_size"},
		{"negative rotation pacing", func(c *Config) { c.Secrets.RotationBatchInterval = Duration(-time.Second) }, "rotation_batch_interval"},
		{"object too large for raft", func(c *Config) { c.Objects.MaxObjectBytes = 1 << 20 }, "object_store.max_object_bytes"},
		{"metrics open", func(c *Config) { c.Metrics.Access = "open" }, ""},
		{"metrics listener", func(c *Config) { c.Metrics.Access = "listener"; c.Metrics.Listen = "127.0.0.1:9090" }, ""},
		{"metrics unknown access", func(c *Config) { c.Metrics.Access = "public" }, "metrics.access"},
		{"metrics empty access", func(c *Config) { c.Metrics.Access = "" }, "metrics.access"},
		{"metrics listener without listen", func(c *Config) { c.Metrics.Access = "listener" }, "metrics.listen"},
		{"metrics listen without listener", func(c *Config) { c.Metrics.Listen = "127.0.0.1:9090" }, "metrics.listen"},
		{"snapshot slot too short", func(c *Config) { c.Raft.SnapshotSlot = Duration(10 * time.Millisecond) }, "raft.snapshot_slot"},
		{"snapshot threshold 0", func(c *Config) { c.Raft.SnapshotThreshold = 0 }, "raft.snapshot_threshold"},
		{"negative snapshot write rate", func(c *Config) { c.Raft.SnapshotWriteRate = -1 }, "raft.snapshot_write_rate"},
		{"tiny snapshot write rate", func(c *Config) { c.Raft.SnapshotWriteRate = 1000 }, "raft.snapshot_write_rate"},
		{"unlimited snapshot write rate", func(c *Config) { c.Raft.SnapshotWriteRate = 0 }, ""},
		{"unknown engine", func(c *Config) { c.Scheduler.Engine = "k8s" }, "scheduler.engine"},
		{"nomad defaults", func(c *Config) { c.Scheduler.Engine = "nomad" }, ""},
		{"nomad settings unchecked with docker", func(c *Config) { c.Scheduler.Nomad.Address = "" }, ""},
		{"nomad without address", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.Address = "" }, "scheduler.nomad.address is required"},
		{"nomad address without scheme", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.Address = "10.0.0.1:4646" }, "scheduler.nomad.address"},
		{"nomad empty datacenter", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.Datacenters = []string{"dc1", " "} }, "scheduler.nomad.datacenters[1]"},
		{"nomad cpu", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.CPU = 0 }, "scheduler.nomad.cpu"},
		{"nomad memory", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.Memory = 5 }, "scheduler.nomad.memory"},
		{"nomad stop grace", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.StopGrace = 0 }, "scheduler.nomad.stop_grace"},
		{"nomad placement timeout", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.PlacementTimeout = 0 }, "scheduler.nomad.placement_timeout"},
		{"nomad log settle", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.LogSettle = Duration(2 * time.Minute) }, "scheduler.nomad.log_settle"},
		{"nomad client cert without key", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.ClientCert = "/dev/null" }, "client_key go together"},
		{"nomad missing ca file", func(c *Config) {
			c.Scheduler.Engine = "nomad"
			c.Scheduler.Nomad.Address = "https://nomad:4646"
			c.Scheduler.Nomad.CACert = "/nonexistent/ca.pem"
		}, "scheduler.nomad.ca_cert"},
		{"tls cert without key", func(c *Config) { c.TLS.Cert = "/etc/hosts" }, "tls.cert and tls.key go together"},
		{"tls ca without pair", func(c *Config) { c.TLS.CA = "/etc/hosts" }, "tls.ca needs tls.cert and tls.key"},
		{"tls missing file", func(c *Config) { c.TLS.Cert, c.TLS.Key = "/nonexistent/c.pem", "/etc/hosts" }, "tls.cert: stat /nonexistent"},
		{"tls http advertise", func(c *Config) {
			c.TLS.Cert, c.TLS.Key = "/etc/hosts", "/etc/hosts"
			c.Server.APIAdvertise = "http://10.0.0.1:8080"
		}, "must be an https URL"},
		{"nomad tls over http", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.TLSSkipVerify = true }, "need an https:// address"},
		{"nomad and extension address on the host network", func(c *Config) {
			c.Scheduler.Engine, c.Scheduler.Docker.Network = "nomad", "host"
			c.Server.ExtensionAddress = "10.0.0.1:8080"
		}, ""},
		{"docker extension address on the host network", func(c *Config) {
			c.Scheduler.Docker.Network = "host"
			c.Server.ExtensionAddress = "10.0.0.1:8080"
		}, "needs scheduler.docker.network"},
		{"nomad extension ports reversed", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.ExtensionPorts = "19600-19500" }, "scheduler.nomad.extension_ports"},
		{"nomad extension ports one port", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.ExtensionPorts = "19500-19500" }, ""},
		{"nomad extension ports not a range", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.ExtensionPorts = "19500" }, "scheduler.nomad.extension_ports"},
		{"rate limit off", func(c *Config) { c.API.RateLimit = 0; c.API.RateBurst = 0 }, ""},
		{"negative rate limit", func(c *Config) { c.API.RateLimit = -1 }, "api.rate_limit"},
		{"rate limit without burst", func(c *Config) { c.API.RateBurst = 0 }, "api.rate_burst"},
		{"negative anonymous rate limit", func(c *Config) { c.API.AnonymousRateLimit = -1 }, "api.anonymous_rate_limit"},
		{"anonymous rate limit without burst", func(c *Config) { c.API.AnonymousRateBurst = 0 }, "api.anonymous_rate_burst"},
		{"no header timeout", func(c *Config) { c.API.ReadHeaderTimeout = 0 }, "api.read_header_timeout"},
		{"tiny header limit", func(c *Config) { c.API.MaxHeaderBytes = 100 }, "api.max_header_bytes"},
		{"no idle timeout", func(c *Config) { c.API.IdleTimeout = 0 }, "api.idle_timeout"},
		{"run retention age past the pipeline setting's maximum", func(c *Config) { c.API.RunRetentionAge = Duration(876000 * time.Hour) }, "api.run_retention_age"},
		{"run retention age at the maximum", func(c *Config) { c.API.RunRetentionAge = Duration(87600 * time.Hour) }, ""},
		{"run retention count past the maximum", func(c *Config) { c.API.RunRetentionCount = 1_000_001 }, "api.run_retention_count"},
		{"run retention count at the maximum", func(c *Config) { c.API.RunRetentionCount = 1_000_000 }, ""},
		{"nomad extension ports too high", func(c *Config) { c.Scheduler.Engine = "nomad"; c.Scheduler.Nomad.ExtensionPorts = "65000-70000" }, "scheduler.nomad.extension_ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Server.RaftAddr = "127.0.0.1:8081"
			cfg.Secrets.EncryptionKey = "3f9c1e7a5b2d8046c1e9a7f3b5d2c8e0"
			tt.mutate(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// FuzzDecodeTOML feeds arbitrary text to the server config decoder and
// validator: neither may panic, whatever the bytes.
func FuzzDecodeTOML(f *testing.F) {
	f.Add([]byte(SampleConfig))
	f.Add([]byte("[server]\njoin = [\"http://a:1\"]\n[raft]\nheartbeat_timeout = \"5ms\"\n"))
	f.Add([]byte("[api]\nmax_request_body = -1\n"))
	f.Add([]byte("[[server]]\n"))
	f.Add([]byte("server.dev = true\nserver.api_addr = \"[::1]:1\""))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := DefaultConfig()
		if err := DecodeTOML(&cfg, data); err != nil {
			return
		}
		_ = cfg.Validate()
		_ = cfg.APIURL()
		_ = cfg.RaftAdvertise()
	})
}
