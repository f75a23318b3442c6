package extension

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Extension is what an extension author implements. The SDK calls its
// methods one at a time, never concurrently with each other.
type Extension interface {
	// Init is called once, before anything else, with the client for
	// Gofer's API; keep it to start runs. An error stops the extension.
	Init(ctx context.Context, gofer *Client) error
	// Info documents the extension's install settings and subscription
	// parameters (GET /api/info).
	Info() Documentation
	// Subscribe starts serving a pipeline's subscription. It is called
	// for each new subscription and, at boot, for each subscription Gofer
	// has stored; the same subscription may come again and should then be
	// a no-op. An error refuses it (400 with the error's text, or the
	// status of an *Error).
	Subscribe(ctx context.Context, sub Subscription) error
	// Unsubscribe stops serving a subscription; Params is nil. An unknown
	// subscription should not be an error.
	Unsubscribe(ctx context.Context, sub Subscription) error
	// Shutdown stops everything the extension started; the process exits
	// after it returns. It is called once: when Gofer asks, on SIGTERM, or
	// when serving fails after Init succeeded.
	Shutdown(ctx context.Context)
}

// EventHandler is implemented by extensions that take external events
// (webhooks Gofer receives on their behalf). Without it, Gofer's
// POST /api/external-event is answered 400.
type EventHandler interface {
	ExternalEvent(ctx context.Context, ev Event) error
}

// Debugger is implemented by extensions with state worth showing on
// GET /api/debug. Don't put secrets in it.
type Debugger interface {
	Debug(ctx context.Context) string
}

// ErrInit wraps an error from the extension's Init.
var ErrInit = errors.New("extension init failed")

// How long the extension gets to shut down on a signal, and the HTTP
// server's timeouts.
const (
	shutdownTimeout   = 10 * time.Second
	readHeaderTimeout = 10 * time.Second
	// readTimeout covers the largest external event on a slow link.
	readTimeout  = 2 * time.Minute
	writeTimeout = 2 * time.Minute
	idleTimeout  = 2 * time.Minute
)

// Run is the main function of an extension binary: it reads the
// environment Gofer set, restores the subscriptions Gofer has stored, then
// serves Gofer's calls until Gofer calls POST /api/shutdown or the process
// gets SIGTERM or SIGINT. It returns nil after a clean shutdown.
//
//	func main() {
//		if err := extension.Run(&myExtension{}); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
func Run(ext Extension) error {
	cfg, err := LoadSystemConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel})).With("extension", cfg.ID)
	return Serve(ctx, cfg, ext, WithLogger(log))
}

// Serve is Run with the configuration and the context given: it calls
// Init, restores the stored subscriptions (retrying while Gofer is
// unreachable; a subscription the extension refuses is logged and
// skipped), and only then listens on cfg.BindAddress, so Gofer's health
// check passes once the extension is up to date. It returns when ctx ends
// (after telling the extension to shut down) or after Gofer's
// POST /api/shutdown.
func Serve(ctx context.Context, cfg SystemConfig, ext Extension, opts ...ClientOption) error {
	return serve(ctx, cfg, ext, nil, opts...)
}

// serve is Serve; listening, when set, learns the address it listens on
// (tests bind port 0).
func serve(ctx context.Context, cfg SystemConfig, ext Extension, listening func(net.Addr), opts ...ClientOption) error {
	client := NewClient(cfg, opts...)
	log := client.log
	s := newServer(cfg, ext, log)
	var tlsConfig *tls.Config
	if cfg.UseTLS {
		cert, err := tls.X509KeyPair([]byte(cfg.TLSCert), []byte(cfg.TLSKey))
		if err != nil {
			return fmt.Errorf("%w: %s and %s: %v", ErrConfig, EnvTLSCert, EnvTLSKey, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	if err := ext.Init(ctx, client); err != nil {
		return fmt.Errorf("%w: %w", ErrInit, err)
	}
	// From here on the extension may have started work: every way out
	// tells it to stop.
	stopExtension := func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		s.shutdownExtension(sctx)
	}
	if err := s.restore(ctx, client); err != nil {
		stopExtension()
		if ctx.Err() != nil {
			return nil // stopped while booting: a clean stop
		}
		return err
	}

	ln, err := net.Listen("tcp", cfg.BindAddress)
	if err != nil {
		stopExtension()
		return fmt.Errorf("listen on %s: %w", cfg.BindAddress, err)
	}
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	if listening != nil {
		listening(ln.Addr())
	}
	log.Info("extension serving", "bind_address", ln.Addr().String(), "tls", cfg.UseTLS)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		stopExtension()
		return fmt.Errorf("serve: %w", err)
	case <-s.shutdownCalled:
		log.Info("gofer asked the extension to shut down")
	case <-ctx.Done():
		log.Info("extension stopping on signal")
		stopExtension()
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// restore asks Gofer for the extension's stored subscriptions and passes
// each to Subscribe: Gofer does not send them again to a restarted
// extension.
func (s *server) restore(ctx context.Context, client *Client) error {
	stored, err := client.Subscriptions(ctx)
	if err != nil {
		return fmt.Errorf("restore subscriptions: %w", err)
	}
	restored := 0
	for _, st := range stored {
		if st.Status == "disabled" {
			// Gofer refuses a disabled subscription's runs and sends a
			// subscribe when it is enabled again.
			continue
		}
		sub := Subscription{NamespaceID: st.NamespaceID, PipelineID: st.PipelineID, ID: st.SubscriptionID, Params: st.Settings}
		if sub.Params == nil {
			sub.Params = map[string]string{}
		}
		err := s.within(ctx, func(ctx context.Context) error { return s.ext.Subscribe(ctx, sub) })
		var waiting *waitError
		if errors.As(err, &waiting) {
			return fmt.Errorf("restore subscriptions: %w", waiting.err)
		}
		if err != nil {
			s.log.Error("stored subscription refused; skipped", "namespace", sub.NamespaceID,
				"pipeline", sub.PipelineID, "subscription", sub.ID, "error", err)
			continue
		}
		restored++
	}
	s.log.Info("subscriptions restored", "restored", restored, "stored", len(stored))
	return nil
}
