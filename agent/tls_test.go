package agent

import (
	"crypto/tls"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/goferhq/gofer/internal/tlsutil"
)

func genBundle(t *testing.T, name string) *tlsutil.Bundle {
	t.Helper()
	b, err := tlsutil.GenerateBundle(filepath.Join(t.TempDir(), name), tlsutil.GenOptions{Hosts: []string{"127.0.0.1"}, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nodeTLSFor(t *testing.T, b *tlsutil.Bundle, i int) *nodeTLS {
	t.Helper()
	nt, err := loadNodeTLS(TLSConfig{Cert: b.Nodes[i], Key: b.NodeKeys[i], CA: b.CA})
	if err != nil {
		t.Fatal(err)
	}
	return nt
}

// A raft peer must complete a mutual TLS handshake with a certificate the
// cluster CA signed; anything else never reaches raft (Accept).
func TestRaftStreamLayerRefusesPeersWithoutAClusterCertificate(t *testing.T) {
	cluster, other := genBundle(t, "cluster"), genBundle(t, "other")
	logger := hclog.NewNullLogger()
	server, err := newTLSStreamLayer("127.0.0.1:0", nil, nodeTLSFor(t, cluster, 0), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	addr := server.ln.Addr().String()

	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := server.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()

	// 1. Plain TCP speaking raft's framing: the handshake fails, the
	// connection is closed without an answer.
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = plain.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := plain.Write([]byte{0, 1, 2, 3, 4, 5, 6, 7}); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadAll(plain); err == nil && len(n) > 0 && n[0] != 0x15 { // 0x15: a TLS alert
		t.Fatalf("plain TCP got %d bytes that are not a TLS alert", len(n))
	}
	plain.Close()

	// 2. A peer whose certificate another CA signed.
	stranger, err := newTLSStreamLayer("127.0.0.1:0", nil, nodeTLSFor(t, other, 0), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if c, err := stranger.Dial(raft.ServerAddress(addr), 5*time.Second); err == nil {
		// TLS 1.3: the client may finish before the server rejects its
		// certificate; the rejection shows on the first read.
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a peer with another CA's certificate got data")
		}
		c.Close()
	}

	// 3. A TLS client that trusts the cluster CA but presents no
	// certificate.
	pool, err := tlsutil.LoadCAPool(cluster.CA)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err == nil {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client without a certificate got data")
		}
		c.Close()
	}

	// 4. A client-only certificate the cluster CA signed (gen-certs'
	// client.pem): not a node, so not a raft peer.
	userCert, err := tls.LoadX509KeyPair(cluster.Client, cluster.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{userCert}}); err == nil {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client-only certificate got data")
		}
		c.Close()
	}

	// 5. The cluster's own peer: the first (and only) connection raft sees.
	peer, err := newTLSStreamLayer("127.0.0.1:0", nil, nodeTLSFor(t, cluster, 1), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := peer.Dial(raft.ServerAddress(addr), 5*time.Second)
	if err != nil {
		t.Fatalf("cluster peer: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("raft")); err != nil {
		t.Fatal(err)
	}
	got := <-accepted
	buf := make([]byte, 4)
	if _, err := io.ReadFull(got, buf); err != nil || string(buf) != "raft" {
		t.Fatalf("first accepted connection read %q, %v; want the cluster peer's", buf, err)
	}
	select {
	case extra := <-accepted:
		t.Fatalf("a refused peer reached raft: %v", extra.RemoteAddr())
	default:
	}
}

// A dialler checks the peer's certificate names the address it dials.
func TestRaftStreamLayerVerifiesThePeerAddress(t *testing.T) {
	b, err := tlsutil.GenerateBundle(filepath.Join(t.TempDir(), "c"), tlsutil.GenOptions{Hosts: []string{"10.9.9.9"}, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	server, err := newTLSStreamLayer("127.0.0.1:0", nil, nodeTLSFor(t, b, 0), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	peer, err := newTLSStreamLayer("127.0.0.1:0", nil, nodeTLSFor(t, b, 1), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if c, err := peer.Dial(raft.ServerAddress(server.ln.Addr().String()), 5*time.Second); err == nil {
		c.Close()
		t.Fatal("dialled 127.0.0.1 and accepted a certificate for 10.9.9.9 only")
	}
}
