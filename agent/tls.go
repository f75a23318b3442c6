package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/goferhq/gofer/internal/tlsutil"
)

// nodeTLS is what [tls] configures, loaded once at New: the node's
// reloadable key pair and the cluster CA.
type nodeTLS struct {
	cert *tlsutil.Certificate // nil: the API serves plain HTTP
	ca   *x509.CertPool       // nil: no cluster CA
	// caPEM is the CA file's text, passed to extensions
	// (GOFER_EXTENSION_SYSTEM_GOFER_CA).
	caPEM []byte
}

func loadNodeTLS(cfg TLSConfig) (*nodeTLS, error) {
	t := &nodeTLS{}
	if !cfg.Enabled() {
		return t, nil
	}
	var err error
	if t.cert, err = tlsutil.LoadCertificate(cfg.Cert, cfg.Key); err != nil {
		return nil, fmt.Errorf("tls.cert/tls.key: %w", err)
	}
	if cfg.CA != "" {
		if t.ca, err = tlsutil.LoadCAPool(cfg.CA); err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		if t.caPEM, err = os.ReadFile(cfg.CA); err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
	}
	return t, nil
}

// serverConfig is the API's and the external-events listener's: the
// current key pair, TLS 1.2 or newer. nil when the API is plain HTTP.
func (t *nodeTLS) serverConfig() *tls.Config {
	if t.cert == nil {
		return nil
	}
	return &tls.Config{MinVersion: tlsutil.MinVersion, GetCertificate: t.cert.GetCertificate}
}

// peerClientConfig verifies the members' API (forwarding, joins, health)
// against the cluster CA, or the system roots without one. It never
// skips verification.
func (t *nodeTLS) peerClientConfig() *tls.Config {
	return &tls.Config{MinVersion: tlsutil.MinVersion, RootCAs: t.ca}
}

// ReloadTLS reads the API's certificate and key again (SIGHUP): new
// handshakes — API, external events, raft — present the new pair,
// connections already open keep theirs. On an error the old pair stays.
// A node without [tls] has nothing to reload.
func (a *Agent) ReloadTLS() error {
	if a.tls == nil || a.tls.cert == nil {
		return nil
	}
	if err := a.tls.cert.Reload(); err != nil {
		a.logger.Error("tls reload failed; the previous certificate stays in use", "error", err)
		return err
	}
	leaf := a.tls.cert.Current().Leaf
	a.logger.Info("tls certificate reloaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// Raft over mutual TLS: a stream layer whose listener completes a TLS
// handshake that requires a client certificate signed by the cluster CA
// before raft sees the connection, and whose dialer presents the node's
// certificate and verifies the peer's against the CA and its address.

type tlsStreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	logger    hclog.Logger

	// accepted carries connections whose handshake succeeded; handshakes
	// run each in its own goroutine, so a peer that connects and stalls
	// delays nobody else.
	accepted chan net.Conn
	closed   chan struct{}
	once     sync.Once
}

// handshakeTimeout bounds a raft TLS handshake.
const handshakeTimeout = 10 * time.Second

func newTLSStreamLayer(bind string, advertise net.Addr, t *nodeTLS, logger hclog.Logger) (*tlsStreamLayer, error) {
	if t.cert == nil || t.ca == nil {
		return nil, errors.New("raft mutual TLS needs tls.cert, tls.key and tls.ca")
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	s := &tlsStreamLayer{
		ln:        ln,
		advertise: advertise,
		server: &tls.Config{
			MinVersion:     tlsutil.MinVersion,
			GetCertificate: t.cert.GetCertificate,
			ClientAuth:     tls.RequireAndVerifyClientCert,
			ClientCAs:      t.ca,
			// Only a node may speak raft: its certificate is also a
			// server certificate. A client-only certificate from the same
			// CA (gen-certs' client.pem, or any a shared CA issues to
			// users) is refused.
			VerifyConnection: requireNodeCertificate,
		},
		client: &tls.Config{
			MinVersion:           tlsutil.MinVersion,
			GetClientCertificate: t.cert.GetClientCertificate,
			RootCAs:              t.ca,
		},
		logger:   logger,
		accepted: make(chan net.Conn),
		closed:   make(chan struct{}),
	}
	go s.acceptLoop()
	return s, nil
}

// maxPendingHandshakes bounds the raft handshakes in flight: a flood of
// connections to the raft port is refused at once past it instead of
// holding a descriptor each for handshakeTimeout.
const maxPendingHandshakes = 64

// requireNodeCertificate refuses a raft peer whose verified certificate
// is not also for server use (a node's).
func requireNodeCertificate(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no peer certificate")
	}
	for _, u := range cs.PeerCertificates[0].ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny {
			return nil
		}
	}
	return errors.New("the peer's certificate is not a node certificate (no server use): raft accepts only nodes")
}

func (s *tlsStreamLayer) acceptLoop() {
	pending := make(chan struct{}, maxPendingHandshakes)
	backoff := 5 * time.Millisecond
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			// Out of descriptors and the like pass: keep accepting after
			// a pause (closing the listener would cut this node off raft
			// for good).
			s.logger.Warn("raft listener: accept failed; retrying", "error", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.closed:
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case pending <- struct{}{}:
			go func() { defer func() { <-pending }(); s.handshake(raw) }()
		default:
			s.logger.Warn("raft connection refused: too many handshakes in flight", "remote", raw.RemoteAddr().String())
			raw.Close()
		}
	}
}

func (s *tlsStreamLayer) handshake(raw net.Conn) {
	conn := tls.Server(raw, s.server)
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := conn.Handshake(); err != nil {
		s.logger.Warn("raft connection refused: tls handshake failed", "remote", raw.RemoteAddr().String(), "error", err)
		raw.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	select {
	case s.accepted <- conn:
	case <-s.closed:
		conn.Close()
	}
}

// Accept returns the next connection whose handshake succeeded.
func (s *tlsStreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.accepted:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (s *tlsStreamLayer) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.ln.Close()
	})
	return err
}

// Addr is the advertised address.
func (s *tlsStreamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to a peer's raft address and completes the handshake:
// the peer's certificate must be signed by the cluster CA and name the
// dialled host (an IP SAN for an IP address).
func (s *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, err
	}
	cfg := s.client.Clone()
	cfg.ServerName = host
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(address), cfg)
}
