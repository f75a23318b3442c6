package agent

import (
	"os"
	"strings"
)

// TLSConfig is the [tls] section (docs/tls.md).
//
// With Cert and Key the API and the external-events listener serve TLS
// (1.2 or newer) with that key pair, read again on SIGHUP. With CA as
// well, the CA is the cluster's: nodes verify each other's API against it
// (forwarding, joins) and raft traffic runs over mutual TLS — a peer must
// present a certificate the CA signed, or it gets nothing.
type TLSConfig struct {
	// Cert and Key are PEM files: the node's certificate (its chain
	// after it) and its private key.
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// CA is a PEM bundle of the cluster CA.
	CA string `toml:"ca"`
}

// Enabled reports whether the API serves TLS.
func (t TLSConfig) Enabled() bool { return t.Cert != "" || t.Key != "" }

// MutualRaft reports whether raft runs over mutual TLS.
func (t TLSConfig) MutualRaft() bool { return t.CA != "" }

func (c *Config) validateTLS(add func(string, ...any)) {
	t := c.TLS
	if (t.Cert == "") != (t.Key == "") {
		add("tls.cert and tls.key go together: set both (the certificate and its private key) or neither")
	}
	if t.CA != "" && (t.Cert == "" || t.Key == "") {
		add("tls.ca needs tls.cert and tls.key: with a cluster CA raft runs over mutual TLS, so every node presents its certificate")
	}
	for _, f := range []struct{ name, path string }{{"tls.cert", t.Cert}, {"tls.key", t.Key}, {"tls.ca", t.CA}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			add("%s: %v", f.name, err)
		}
	}
	if !t.Enabled() {
		return
	}
	if c.Server.Dev {
		return
	}
	if adv := c.Server.APIAdvertise; adv != "" && !hasScheme(adv, "https") {
		add("server.api_advertise %q must be an https URL: the API serves TLS (tls.cert)", adv)
	}
	for _, j := range c.Server.Join {
		if !hasScheme(j, "https") {
			add("server.join entry %q must be an https URL: members serve TLS (tls.cert)", j)
		}
	}
}

func hasScheme(u, scheme string) bool {
	return strings.HasPrefix(strings.ToLower(u), scheme+"://")
}
