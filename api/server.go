package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/internal/metrics"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// Options configure the API server.
type Options struct {
	// Dev disables authentication: every caller acts as an admin. Only
	// allowed when bound to loopback (the agent enforces that).
	Dev bool
	// MaxRequestBody caps request bodies (bytes). The snapshot restore
	// route is exempt.
	MaxRequestBody int64
	// PipelineVersionRetention is how many config versions each pipeline
	// keeps (the live one always stays); 0 keeps all.
	PipelineVersionRetention int
	// Metadata is served at /api/system/metadata.
	Metadata model.Metadata
	// LogStore is this node's raft log store (raft.log_store), told in
	// its health answer so the members list can show every node's.
	LogStore string
	// Now is the leader's clock; tests may replace it.
	Now func() time.Time
	// ForwardHold is how long a request waits for a leader before 503.
	ForwardHold time.Duration
	// LeaderApplyTimeout is how long a leader's handler may wait for a
	// write to apply: a request forwarded to a leader that still leads and
	// is heard from waits at least this long for its answer. Default
	// applyTimeout (30 s), what every node's handlers allow; tests shorten
	// it.
	LeaderApplyTimeout time.Duration
	// LeaderSilence: a forwarded request whose leader this node has not
	// heard from for this long (raft.heartbeat_timeout) gets 503 at once.
	// Default 1 s.
	LeaderSilence time.Duration
	// MaxForwards caps the requests this node forwards to the leader at
	// once (each holds an outgoing connection); more get 503 with
	// Retry-After. Default DefaultMaxForwards.
	MaxForwards int
	// Secrets seals secret values on the leader before apply and opens
	// them for include_secret reads. Nil: this node has no
	// secret_store.encryption_key and the secret routes say so.
	Secrets *seal.Keyring
	// MaxObjectBytes caps one object (default 256 KiB; the raft entry
	// limit bounds it).
	MaxObjectBytes int64
	// PipelineObjectLimit caps each pipeline's object count; a new key at
	// the cap evicts the oldest. 0: no cap.
	PipelineObjectLimit int
	// RunObjectLimit caps each run's object count. 0: no cap.
	RunObjectLimit int
	// MaxConnections caps the API connections Serve keeps open (see
	// connlimit.go); 0: no cap.
	MaxConnections int
	// BodyReadTimeout and BodyMinRate bound how long a request body may
	// take: the timeout plus one second per BodyMinRate bytes received
	// (see guard.go). Defaults: DefaultBodyReadTimeout, DefaultBodyMinRate.
	BodyReadTimeout time.Duration
	BodyMinRate     int64
	// StreamKeepAlive is how often a follow stream (events, framed logs)
	// sends a keep-alive while quiet, so load balancers with idle timeouts
	// keep it open. Default DefaultStreamKeepAlive.
	StreamKeepAlive time.Duration
	// ExtensionLogs opens the output of an extension's container on this
	// node's container engine (any node sharing the engine can serve it,
	// leader or not); nil when the node runs none.
	ExtensionLogs func(ctx context.Context, extensionID string, follow bool) (io.ReadCloser, error)
	// SubscriptionValidator checks subscription settings locally before
	// the extension is asked; nil: BuiltinSubscriptionValidator.
	SubscriptionValidator SubscriptionValidator
	// RateLimit is the requests per second each token (or, without a
	// valid token, each client address) may make to this node, with bursts
	// of RateBurst (ratelimit.go); over it the answer is 429 with
	// Retry-After. 0: no limit.
	RateLimit float64
	RateBurst int
	// AnonRateLimit and AnonRateBurst limit requests without a valid
	// token per client address. 0: no limit.
	AnonRateLimit float64
	AnonRateBurst int
	// HTTP limits of the API listener and, capped lower, the
	// external-events listener (httpServer). Defaults:
	// DefaultReadHeaderTimeout, DefaultMaxHeaderBytes, DefaultIdleTimeout.
	ReadHeaderTimeout time.Duration
	MaxHeaderBytes    int
	IdleTimeout       time.Duration
	// ExtensionCalls reaches the running extensions (the leader's
	// extcall.Client). Nil: no extension is called — subscriptions are
	// validated locally only, and the debug route and external events
	// answer 503.
	ExtensionCalls ExtensionCalls
	// TLS, when set, makes Serve speak TLS with it (the key pair, minimum
	// version); nil: plain HTTP.
	TLS *tls.Config
	// PeerTLS verifies the other members' API when a request is forwarded
	// to the leader (the cluster CA); nil: the system roots.
	PeerTLS *tls.Config
	// Metrics is the node's registry, served at GET /metrics and fed by
	// the request middleware; nil: no metrics (the route answers 404).
	Metrics *metrics.Metrics
	// MetricsAccess is who may read GET /metrics: MetricsAccessToken (the
	// default, "" too), MetricsAccessOpen or MetricsAccessListener.
	MetricsAccess string
}

// DefaultMaxForwards is Options.MaxForwards when unset.
const DefaultMaxForwards = 512

// Server serves the REST API on one node.
type Server struct {
	opts    Options
	cluster Cluster
	logger  hclog.Logger
	echo    *echo.Echo
	forward *forwarder
	// docs are the OpenAPI documents and page, made on first request.
	docs    openAPIDocs
	authz   *authorizer
	tokens  identityCache
	catchUp *catchUp
	// subLocks serializes the extension calls and commits of one
	// subscription (extcalls.go).
	subLocks subscriptionLocks
	// eventSlots caps the external events in flight (external.go).
	eventSlots chan struct{}
	// publicBodies counts requests with a body on public routes.
	publicBodies chan struct{}
	shutdown     chan struct{}
	// knownRoutes are the route templates, the only values of the
	// request metrics' route label.
	knownRoutes map[string]struct{}
	// limiter is the per-token request rate limit; nil: none.
	limiter *rateLimiter
	// anonLimiter limits requests without a valid token per address.
	anonLimiter *rateLimiter
	// audit records mutating requests (audit.go); Serve starts it.
	audit     *auditor
	auditOnce sync.Once
	// httpMu guards httpSrv and stopped: Serve runs in its own goroutine
	// and Shutdown may come before, during or after it starts.
	httpMu  sync.Mutex
	httpSrv *http.Server
	stopped bool
}

// New builds the API server; Serve starts it.
func New(opts Options, cluster Cluster, logger hclog.Logger) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxRequestBody <= 0 {
		opts.MaxRequestBody = 512 << 10
	}
	if opts.MaxObjectBytes <= 0 {
		opts.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if opts.ForwardHold <= 0 {
		opts.ForwardHold = defaultForwardHold
	}
	if opts.LeaderApplyTimeout <= 0 {
		opts.LeaderApplyTimeout = applyTimeout
	}
	if opts.LeaderSilence <= 0 {
		opts.LeaderSilence = time.Second
	}
	if opts.StreamKeepAlive <= 0 {
		opts.StreamKeepAlive = DefaultStreamKeepAlive
	}
	if opts.MaxForwards <= 0 {
		opts.MaxForwards = DefaultMaxForwards
	}
	if opts.BodyReadTimeout <= 0 {
		opts.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if opts.BodyMinRate <= 0 {
		opts.BodyMinRate = DefaultBodyMinRate
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	s := &Server{
		opts:     opts,
		cluster:  cluster,
		logger:   logger.Named("api"),
		authz:    newAuthorizer(),
		shutdown: make(chan struct{}),

		publicBodies: make(chan struct{}, maxPublicBodies),
		eventSlots:   make(chan struct{}, maxEventsInFlight),
		limiter:      newRateLimiter(opts.RateLimit, opts.RateBurst, opts.Now, maxLimiters),
		anonLimiter:  newRateLimiter(opts.AnonRateLimit, opts.AnonRateBurst, opts.Now, maxLimiters),
	}
	s.forward = newForwarder(cluster, s.logger, forwardOptions{
		hold:         opts.ForwardHold,
		applyTimeout: opts.LeaderApplyTimeout,
		silence:      opts.LeaderSilence,
		maxForwards:  opts.MaxForwards,
		tls:          opts.PeerTLS,
	})
	s.catchUp = newCatchUp(cluster, s.forward.transport)
	s.audit = newAuditor(s)
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler
	e.JSONSerializer = plainJSON{}
	e.Use(s.recoverMiddleware, s.requestIDMiddleware, s.logMiddleware)
	s.echo = e
	s.routes()
	return s
}

// Handler is the server as an http.Handler (tests use it directly).
func (s *Server) Handler() http.Handler { return s.guard(s.echo) }

// Serve accepts connections on ln until Shutdown, at most
// Options.MaxConnections at a time.
func (s *Server) Serve(ln net.Listener) error {
	srv := s.httpServer(s.guard(s.echo), false)
	if s.opts.MaxConnections > 0 {
		l := newConnLimiter(ln, s.opts.MaxConnections, s.logger)
		srv.ConnState, srv.ConnContext = l.connState, l.connContext
		ln = l
	}
	if s.opts.TLS != nil {
		// Inside the cap: a connection is counted from its accept, its
		// handshake included (bounded by ReadHeaderTimeout).
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	s.httpMu.Lock()
	if s.stopped {
		s.httpMu.Unlock()
		return ln.Close()
	}
	s.httpSrv = srv
	s.httpMu.Unlock()
	// Audit entries are recorded while the server serves (a handler used
	// without Serve, in tests, queues them and records none).
	s.auditOnce.Do(func() { go s.audit.run() })
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Defaults of the HTTP limits in Options.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultMaxHeaderBytes    = 1 << 20
	DefaultIdleTimeout       = 2 * time.Minute
)

// httpServer makes the http.Server of a listener with the configured
// limits: the one place both listeners get them. The external-events
// listener faces anyone who may send webhooks, without a token: its
// header size and idle timeout are capped lower (externalEventsMaxHeader,
// externalEventsIdle).
func (s *Server) httpServer(h http.Handler, external bool) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		IdleTimeout:       s.opts.IdleTimeout,
	}
	if external {
		srv.MaxHeaderBytes = min(srv.MaxHeaderBytes, externalEventsMaxHeader)
		srv.IdleTimeout = min(srv.IdleTimeout, externalEventsIdle)
	}
	return srv
}

// Shutdown ends long-lived streams and stops the server gracefully.
func (s *Server) Shutdown(ctx context.Context) error {
	select {
	case <-s.shutdown:
	default:
		close(s.shutdown)
	}
	s.httpMu.Lock()
	s.stopped = true
	srv := s.httpSrv
	s.httpMu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// plainJSON is echo's JSON serializer without HTML escaping, so messages
// read "a -> b" rather than "a -\u003e b".
type plainJSON struct{}

func (plainJSON) Serialize(c echo.Context, i any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(i)
}

func (plainJSON) Deserialize(c echo.Context, i any) error {
	return json.NewDecoder(c.Request().Body).Decode(i)
}
