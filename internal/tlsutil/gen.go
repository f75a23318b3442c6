// Package tlsutil holds Gofer's TLS plumbing that is not tied to one
// listener: generating a test cluster's certificates (gen-certs), loading
// a CA bundle, and a certificate that can be swapped while connections
// keep using it (reload on SIGHUP).
package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Validity of generated certificates: the CA outlives the certificates it
// signs, so reissuing node certificates never needs a new CA.
const (
	CAValidity   = 5 * 365 * 24 * time.Hour
	LeafValidity = 365 * 24 * time.Hour
)

// GenOptions says what GenerateBundle writes.
type GenOptions struct {
	// Hosts are the SANs of every node certificate: IP addresses become IP
	// SANs, anything else a DNS name.
	Hosts []string
	// Nodes is how many node certificates (node-1 … node-N).
	Nodes int
	// Now is the certificates' start (default time.Now); they are valid
	// from an hour before it, for clocks that lag.
	Now func() time.Time
}

// Bundle names the files GenerateBundle wrote.
type Bundle struct {
	CA, CAKey       string
	Nodes, NodeKeys []string
	Client          string
	ClientKey       string
}

// GenerateBundle writes into dir a CA (ca.pem, ca-key.pem), node
// certificates node-N.pem/node-N-key.pem (server and client use, with the
// given SANs, so one certificate serves the API, raft's mutual TLS and
// outgoing calls) and a client certificate (client.pem, client-key.pem).
// Keys are ECDSA P-256 and written 0600. When dir already holds ca.pem
// and ca-key.pem, that CA signs the new certificates (rotation: new node
// certificates the cluster already trusts). Other existing files are not
// overwritten: the call fails naming the first one.
func GenerateBundle(dir string, opts GenOptions) (*Bundle, error) {
	if opts.Nodes < 1 {
		return nil, errors.New("at least one node certificate is needed")
	}
	if len(opts.Hosts) == 0 {
		return nil, errors.New("at least one host (IP address or DNS name) is needed")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	b := &Bundle{CA: filepath.Join(dir, "ca.pem"), CAKey: filepath.Join(dir, "ca-key.pem"),
		Client: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem")}
	for i := 1; i <= opts.Nodes; i++ {
		b.Nodes = append(b.Nodes, filepath.Join(dir, "node-"+strconv.Itoa(i)+".pem"))
		b.NodeKeys = append(b.NodeKeys, filepath.Join(dir, "node-"+strconv.Itoa(i)+"-key.pem"))
	}
	reuseCA := exists(b.CA) && exists(b.CAKey)
	all := append([]string{b.Client, b.ClientKey}, append(b.Nodes, b.NodeKeys...)...)
	if !reuseCA {
		all = append(all, b.CA, b.CAKey)
	}
	for _, f := range all {
		if _, err := os.Stat(f); err == nil {
			return nil, fmt.Errorf("%s exists; choose an empty directory", f)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	start := now().Add(-time.Hour)
	var caKey *ecdsa.PrivateKey
	var caCert *x509.Certificate
	var err error
	if reuseCA {
		if caKey, caCert, err = loadCA(b.CA, b.CAKey); err != nil {
			return nil, err
		}
	} else {
		var caDER []byte
		if caKey, caCert, caDER, err = newCA(start); err != nil {
			return nil, err
		}
		if err := writeCert(b.CA, caDER); err != nil {
			return nil, err
		}
		if err := writeKey(b.CAKey, caKey); err != nil {
			return nil, err
		}
	}
	for i := range opts.Nodes {
		der, key, err := issue(caCert, caKey, start, fmt.Sprintf("gofer node-%d", i+1), opts.Hosts,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
		if err != nil {
			return nil, err
		}
		if err := writeCert(b.Nodes[i], der); err != nil {
			return nil, err
		}
		if err := writeKey(b.NodeKeys[i], key); err != nil {
			return nil, err
		}
	}
	der, key, err := issue(caCert, caKey, start, "gofer client", nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	if err != nil {
		return nil, err
	}
	if err := writeCert(b.Client, der); err != nil {
		return nil, err
	}
	if err := writeKey(b.ClientKey, key); err != nil {
		return nil, err
	}
	return b, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// loadCA reads the CA a previous GenerateBundle wrote.
func loadCA(certFile, keyFile string) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("load CA %s with key %s: %w", certFile, keyFile, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("CA key %s is not an ECDSA key", keyFile)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certFile)
	}
	return key, cert, nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func newCA(start time.Time) (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "gofer cluster CA", Organization: []string{"Gofer"}},
		NotBefore:             start,
		NotAfter:              start.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, der, err
}

func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, start time.Time, cn string, hosts []string,
	usage []x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Gofer"}},
		NotBefore:    start,
		NotAfter:     start.Add(LeafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	return der, key, err
}

func writeCert(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
