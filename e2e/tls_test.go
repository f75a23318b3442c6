package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
)

// tlsDir runs `gofer service gen-certs` into a fresh directory.
func tlsDir(t *testing.T, nodes int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	out, err := runCLI(t, nil, "service", "gen-certs", dir, "--hosts", "127.0.0.1,localhost", "--nodes", fmt.Sprint(nodes))
	if err != nil {
		t.Fatalf("gen-certs: %v\n%s", err, out)
	}
	return dir
}

func caConfig(t *testing.T, caFile string) *tls.Config {
	t.Helper()
	cfg, err := client.TLSConfig(caFile, false)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		t.Fatal(err)
	}
}

// newTLSCluster starts three nodes serving the API over TLS with
// certificates from gen-certs, raft over mutual TLS with its CA, and the
// external-events listener (its addresses, in node order) over TLS too.
func newTLSCluster(t *testing.T, certs string) (*Cluster, []string) {
	t.Helper()
	c := &Cluster{t: t}
	var events []string
	ca := filepath.Join(certs, "ca.pem")
	for i := 1; i <= 3; i++ {
		n := NewNode(t, fmt.Sprintf("node%d", i))
		n.URL = "https://" + n.APIAddr
		n.TLS = caConfig(t, ca)
		// Each node's own copy, so a test can rotate one.
		cert, key := filepath.Join(certs, fmt.Sprintf("live-%d.pem", i)), filepath.Join(certs, fmt.Sprintf("live-%d-key.pem", i))
		copyFile(t, filepath.Join(certs, fmt.Sprintf("node-%d.pem", i)), cert)
		copyFile(t, filepath.Join(certs, fmt.Sprintf("node-%d-key.pem", i)), key)
		ev := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		events = append(events, ev)
		n.Env = append(n.Env, "GOFER_WEB_TLS__CERT="+cert, "GOFER_WEB_TLS__KEY="+key, "GOFER_WEB_TLS__CA="+ca,
			"GOFER_WEB_EXTERNAL_EVENTS__ENABLE=true", "GOFER_WEB_EXTERNAL_EVENTS__BIND_ADDRESS="+ev)
		if i == 1 {
			n.Args = append(n.Args, "--bootstrap")
		} else {
			n.Args = append(n.Args, "--join", c.Nodes[0].URL)
		}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		n.Start()
	}
	c.WaitForMembers(3)
	tok, err := c.Client().BootstrapToken(context.Background())
	if err != nil {
		t.Fatalf("bootstrap token: %v", err)
	}
	c.Token = tok.Secret
	c.WaitForMembers(3)
	return c, events
}

// peerSerial is the serial of the certificate addr presents.
func peerSerial(addr string, cfg *tls.Config) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func certSerial(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// A three-node cluster with a TLS API and raft over mutual TLS: it elects a
// leader, joins over https, forwards writes to the leader over https and
// replicates them; the CLI verifies the CA; what lacks the right CA or
// certificate is refused; SIGHUP rotates a node's certificate.
func TestTLSCluster(t *testing.T) {
	certs := tlsDir(t, 3)
	c, events := newTLSCluster(t, certs)
	ctx := context.Background()
	leader := c.Leader()

	// A write through a follower is forwarded to the leader over https and
	// replicated to every node.
	follower := c.Followers()[0]
	fc := follower.Client(c.Token)
	if _, err := fc.CreateNamespace(ctx, "tls-ns", "tls", ""); err != nil {
		t.Fatalf("create through follower %s: %v", follower.Name, err)
	}
	index := fc.LastIndex()
	for _, n := range c.Nodes {
		if _, err := n.Client(c.Token).AtLeast(index).GetNamespace(ctx, "tls-ns"); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
	}

	ca := filepath.Join(certs, "ca.pem")
	url := leader.URL
	// The CLI: verified against --ca-cert (and GOFER_CA_CERT).
	if out, err := runCLI(t, nil, "-a", url, "--token", c.Token, "--ca-cert", ca, "namespace", "list"); err != nil || !strings.Contains(out, "tls-ns") {
		t.Fatalf("CLI with --ca-cert: %v\n%s", err, out)
	}
	if out, err := runCLI(t, []string{"GOFER_CA_CERT=" + ca}, "-a", url, "--token", c.Token, "namespace", "list"); err != nil || !strings.Contains(out, "tls-ns") {
		t.Fatalf("CLI with GOFER_CA_CERT: %v\n%s", err, out)
	}
	// Without the CA the system roots do not know it: refused.
	if out, err := runCLI(t, nil, "-a", url, "--token", c.Token, "namespace", "list"); err == nil || !strings.Contains(out, "certificate") {
		t.Fatalf("CLI without the CA: err %v\n%s", err, out)
	}
	// Another CA: refused.
	other := tlsDir(t, 1)
	if out, err := runCLI(t, nil, "-a", url, "--token", c.Token, "--ca-cert", filepath.Join(other, "ca.pem"), "namespace", "list"); err == nil || !strings.Contains(out, "certificate") {
		t.Fatalf("CLI with another CA: err %v\n%s", err, out)
	}
	// The explicit opt-out works, with a warning.
	if out, err := runCLI(t, nil, "-a", url, "--token", c.Token, "--insecure-skip-verify", "namespace", "list"); err != nil ||
		!strings.Contains(out, "warning: --insecure-skip-verify") || !strings.Contains(out, "tls-ns") {
		t.Fatalf("CLI with --insecure-skip-verify: %v\n%s", err, out)
	}

	// Plain HTTP to the TLS port gets no API answer.
	resp, err := http.Get("http://" + leader.APIAddr + "/api/system/health")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "node_id") {
			t.Fatalf("plain HTTP to the TLS port: %d %s", resp.StatusCode, body)
		}
	}

	// External events: https verified against the CA; a follower passes
	// the event on to the leader (over https), which answers 404 for an
	// extension that does not exist. Plain HTTP gets no answer from it.
	var fi int
	for i, n := range c.Nodes {
		if n == follower {
			fi = i
		}
	}
	evClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: caConfig(t, ca)}}
	resp, err = evClient.Post("https://"+events[fi]+"/api/external/ghost", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("external event over https: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "ghost") {
		t.Fatalf("external event for a missing extension: %d %s", resp.StatusCode, body)
	}
	if resp, err := http.Post("http://"+events[fi]+"/api/external/ghost", "application/json", strings.NewReader("{}")); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), "ghost") {
			t.Fatalf("plain HTTP to the external-events listener: %d %s", resp.StatusCode, b)
		}
	}

	// Raft: a client with the other CA's certificate, and one with no
	// certificate, get nothing from a raft port.
	otherPair, err := tls.LoadX509KeyPair(filepath.Join(other, "node-1.pem"), filepath.Join(other, "node-1-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	clusterCA := caConfig(t, ca)
	for name, cfg := range map[string]*tls.Config{
		"another CA's certificate": {RootCAs: clusterCA.RootCAs, Certificates: []tls.Certificate{otherPair}},
		"no certificate":           {RootCAs: clusterCA.RootCAs},
	} {
		conn, err := tls.Dial("tcp", leader.RaftAddr, cfg)
		if err != nil {
			continue // refused in the handshake
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write([]byte{0}); err == nil {
			if _, err := conn.Read(make([]byte, 1)); err == nil {
				t.Errorf("raft port answered a client with %s", name)
			}
		}
		conn.Close()
	}

	// Rotation: new certificates from the same CA, swapped in on disk,
	// served after SIGHUP; the cluster keeps working.
	rotated := filepath.Join(t.TempDir(), "rotated")
	if err := os.MkdirAll(rotated, 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(t, ca, filepath.Join(rotated, "ca.pem"))
	copyFile(t, filepath.Join(certs, "ca-key.pem"), filepath.Join(rotated, "ca-key.pem"))
	if out, err := runCLI(t, nil, "service", "gen-certs", rotated, "--hosts", "127.0.0.1", "--nodes", "1"); err != nil {
		t.Fatalf("gen-certs with the CA: %v\n%s", err, out)
	}
	target := c.Nodes[1]
	before, err := peerSerial(target.APIAddr, clusterCA)
	if err != nil {
		t.Fatal(err)
	}
	want := certSerial(t, filepath.Join(rotated, "node-1.pem"))
	if before == want {
		t.Fatal("the rotated certificate is the old one")
	}
	copyFile(t, filepath.Join(rotated, "node-1-key.pem"), filepath.Join(certs, "live-2-key.pem"))
	copyFile(t, filepath.Join(rotated, "node-1.pem"), filepath.Join(certs, "live-2.pem"))
	if got, _ := peerSerial(target.APIAddr, clusterCA); got != before {
		t.Fatalf("the certificate changed before SIGHUP: %s", got)
	}
	if err := syscall.Kill(target.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, func() error {
		got, err := peerSerial(target.APIAddr, clusterCA)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("serves %s, want %s", got, want)
		}
		return nil
	})
	if !target.Running() {
		t.Fatal("SIGHUP stopped the node")
	}
	if _, err := c.Client().CreateNamespace(ctx, "after-rotation", "after", ""); err != nil {
		t.Fatalf("write after rotation: %v", err)
	}
	c.WaitForMembers(3)
}

// A supervised extension of a TLS cluster gets https hosts and the
// cluster CA, and reaches Gofer with them: its ticks start runs.
func TestTLSExtensionReachesGofer(t *testing.T) {
	ensureImages(t)
	c, _ := newTLSCluster(t, tlsDir(t, 3))
	ctx := context.Background()
	health, err := c.Nodes[0].Health()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeContainers(t, health.ClusterID) })
	admin := c.Client()
	const p = "tls-ticks"
	cfg := &sdk.PipelineConfig{ID: p, Name: p, Tasks: []*sdk.TaskConfig{{ID: "quick", Image: "gofer/busybox:latest", Command: []string{"true"}}}}
	if _, err := admin.RegisterConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DeployConfig(ctx, p, 1); err != nil {
		t.Fatal(err)
	}
	ext, _ := superviseBuiltinExtension(t, c, "interval", map[string]string{"MIN_INTERVAL": "1s"})
	info, ok := supInspect(t, ext.name)
	if !ok {
		t.Fatalf("no container %s", ext.name)
	}
	if hosts := supEnv(info, "GOFER_EXTENSION_SYSTEM_GOFER_HOSTS"); !strings.HasPrefix(hosts, "https://") {
		t.Errorf("GOFER_HOSTS = %q, want https URLs", hosts)
	}
	if ca := supEnv(info, "GOFER_EXTENSION_SYSTEM_GOFER_CA"); !strings.Contains(ca, "BEGIN CERTIFICATE") {
		t.Errorf("GOFER_CA = %q, want the cluster CA", ca)
	}
	if _, err := admin.Subscribe(ctx, p, "interval", "tick", map[string]string{"every": "1s"}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	WaitFor(t, 60*time.Second, func() error {
		runs, err := admin.ListRuns(ctx, p, client.Page{Limit: 10})
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			return fmt.Errorf("no run started by the extension yet")
		}
		return nil
	})
}
