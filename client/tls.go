package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// TLSConfig builds the configuration for https nodes. Verification is on:
// with caFile the nodes' certificates must chain to the CAs in it (the
// cluster CA of docs/tls.md), without it to the system roots.
// insecureSkipVerify turns verification off — anyone between the client
// and the node can then read the token — and is meant only for a test
// cluster.
func TLSConfig(caFile string, insecureSkipVerify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecureSkipVerify}
	if caFile == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("CA certificate " + caFile + " holds no PEM certificate")
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// WithTLS sets how the client verifies https nodes (TLSConfig). It applies
// to the client's own transport, not to one given by WithHTTPClient.
func WithTLS(cfg *tls.Config) Option {
	return func(c *Client) {
		if t, ok := c.http.Transport.(*http.Transport); ok && c.ownTransport {
			t.TLSClientConfig = cfg
		}
	}
}
