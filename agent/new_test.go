package agent

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/store/model"
)

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestFailedStartReleasesRaft: when New fails after raft started (here the
// API address is taken), raft is shut down and its transport closed
// before the stores close: the raft port is free again and a second New
// on the same data dir starts.
func TestFailedStartReleasesRaft(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Server.DataDir = t.TempDir()
	cfg.Server.RaftAddr = freeTCPAddr(t)
	cfg = DevConfig(cfg)
	cfg.Extensions.InstallStdExtensions = false
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.APIAddr = taken.Addr().String()
	if _, err := New(cfg, model.Metadata{Semver: "test"}, hclog.NewNullLogger()); err == nil {
		t.Fatal("New succeeded on a taken API address")
	}
	taken.Close()
	ln, err := net.Listen("tcp", cfg.Server.RaftAddr)
	if err != nil {
		t.Fatalf("raft address still bound after a failed start: %v", err)
	}
	ln.Close()
	a, err := New(cfg, model.Metadata{Semver: "test"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	a.raft.Shutdown().Error()
	a.transport.Close()
	if err := a.closeStores(); err != nil {
		t.Fatal(err)
	}
	a.apiLn.Close()
	a.stopExternalEvents(t.Context())
}

// TestFailedRaftStartReleasesItsPort: when raft itself fails to start
// after its transport listens (here a snapshot that cannot be restored),
// New closes the transport: server.raft_addr is free again.
func TestFailedRaftStartReleasesItsPort(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Server.DataDir = t.TempDir()
	cfg.Server.RaftAddr = freeTCPAddr(t)
	cfg.Server.APIAddr = freeTCPAddr(t)
	cfg = DevConfig(cfg)
	cfg.Extensions.InstallStdExtensions = false
	snap := filepath.Join(cfg.Server.DataDir, "snapshots", "1-10-1700000000000")
	if err := os.MkdirAll(snap, 0o700); err != nil {
		t.Fatal(err)
	}
	meta := `{"Version":1,"ID":"1-10-1700000000000","Index":10,"Term":1,"Configuration":{"Servers":null},"ConfigurationIndex":1,"Size":4,"CRC":"AAAAAAAAAAA="}`
	if err := os.WriteFile(filepath.Join(snap, "meta.json"), []byte(meta), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snap, "state.bin"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, model.Metadata{Semver: "test"}, hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), "start raft") {
		t.Fatalf("New with a snapshot that cannot be restored: %v; want raft's start to fail", err)
	}
	ln, err := net.Listen("tcp", cfg.Server.RaftAddr)
	if err != nil {
		t.Fatalf("raft address still bound after raft failed to start: %v", err)
	}
	ln.Close()
}
