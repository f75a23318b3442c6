package tlsutil_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/goferhq/gofer/internal/tlsutil"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerateBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	b, err := tlsutil.GenerateBundle(dir, tlsutil.GenOptions{Hosts: []string{"127.0.0.1", "localhost", "node1.internal"}, Nodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Nodes) != 3 || len(b.NodeKeys) != 3 {
		t.Fatalf("nodes %v keys %v, want 3 each", b.Nodes, b.NodeKeys)
	}
	for _, key := range append([]string{b.CAKey, b.ClientKey}, b.NodeKeys...) {
		st, err := os.Stat(key)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", key, st.Mode().Perm())
		}
	}
	pool, err := tlsutil.LoadCAPool(b.CA)
	if err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, b.CA)
	if !ca.IsCA || ca.NotAfter.Sub(ca.NotBefore) != tlsutil.CAValidity {
		t.Errorf("CA: IsCA %v validity %s", ca.IsCA, ca.NotAfter.Sub(ca.NotBefore))
	}
	for i, path := range b.Nodes {
		c := readCert(t, path)
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "node1.internal", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("node %d, usage %v: %v", i+1, usage, err)
			}
		}
		if err := c.VerifyHostname("127.0.0.1"); err != nil {
			t.Errorf("node %d: %v", i+1, err)
		}
		if err := c.VerifyHostname("localhost"); err != nil {
			t.Errorf("node %d: %v", i+1, err)
		}
		if err := c.VerifyHostname("10.0.0.9"); err == nil {
			t.Errorf("node %d is valid for 10.0.0.9, which --hosts did not name", i+1)
		}
		if _, err := tlsutil.LoadCertificate(path, b.NodeKeys[i]); err != nil {
			t.Errorf("node %d key pair: %v", i+1, err)
		}
	}
	cl := readCert(t, b.Client)
	if _, err := cl.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client: %v", err)
	}
	if slices.Contains(cl.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Error("the client certificate allows server use")
	}
	if _, err := tlsutil.GenerateBundle(dir, tlsutil.GenOptions{Hosts: []string{"127.0.0.1"}, Nodes: 1}); err == nil {
		t.Error("a second bundle overwrote the first")
	}
}

func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	a, err := tlsutil.GenerateBundle(filepath.Join(dir, "a"), tlsutil.GenOptions{Hosts: []string{"127.0.0.1"}, Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tlsutil.GenerateBundle(filepath.Join(dir, "b"), tlsutil.GenOptions{Hosts: []string{"127.0.0.1"}, Nodes: 1,
		Now: func() time.Time { return time.Now().Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem")
	cp := func(src, dst string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cp(a.Nodes[0], certFile)
	cp(a.NodeKeys[0], keyFile)
	c, err := tlsutil.LoadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	first := c.Current().Leaf.SerialNumber
	if first.Cmp(readCert(t, a.Nodes[0]).SerialNumber) != 0 {
		t.Fatal("loaded a different certificate")
	}
	// Only the certificate replaced: the pair does not match, the old one stays.
	cp(b.Nodes[0], certFile)
	if err := c.Reload(); err == nil {
		t.Fatal("a certificate without its key loaded")
	}
	if c.Current().Leaf.SerialNumber.Cmp(first) != 0 {
		t.Fatal("a failed reload replaced the certificate")
	}
	cp(b.NodeKeys[0], keyFile)
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	got, _ := c.GetCertificate(nil)
	if got.Leaf.SerialNumber.Cmp(readCert(t, b.Nodes[0]).SerialNumber) != 0 {
		t.Fatal("reload did not swap the certificate")
	}
}

// A directory that holds the CA gets new certificates from that CA.
func TestGenerateBundleReusesTheCA(t *testing.T) {
	dir := t.TempDir()
	first, err := tlsutil.GenerateBundle(filepath.Join(dir, "a"), tlsutil.GenOptions{Hosts: []string{"127.0.0.1"}, Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(dir, "b")
	if err := os.MkdirAll(next, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{first.CA, first.CAKey} {
		data, _ := os.ReadFile(f)
		if err := os.WriteFile(filepath.Join(next, filepath.Base(f)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	second, err := tlsutil.GenerateBundle(next, tlsutil.GenOptions{Hosts: []string{"127.0.0.1"}, Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsutil.LoadCAPool(first.CA)
	if err != nil {
		t.Fatal(err)
	}
	c := readCert(t, second.Nodes[0])
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("a certificate from the reused CA: %v", err)
	}
	if c.SerialNumber.Cmp(readCert(t, first.Nodes[0]).SerialNumber) == 0 {
		t.Fatal("the same certificate again")
	}
}
