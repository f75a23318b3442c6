package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/goferhq/gofer/api"
)

// External events: a listener of its own (external_events.bind_address)
// serving the API's ExternalEventsHandler — webhooks for extensions,
// without authentication (the extension verifies them), passed to the
// extension on the leader.

// listenExternalEvents opens the listener when enabled (at New, so a port
// already in use fails the start).
func (a *Agent) listenExternalEvents() error {
	ee := a.cfg.ExternalEvents
	if !ee.Enable {
		return nil
	}
	if ee.MaxConnections < 0 {
		return fmt.Errorf("external_events.max_connections must be 0 (the default, %d) or more, got %d",
			api.DefaultExternalEventsMaxConnections, ee.MaxConnections)
	}
	ln, err := net.Listen("tcp", ee.BindAddress)
	if err != nil {
		return fmt.Errorf("listen on external_events.bind_address %s: %w", ee.BindAddress, err)
	}
	// The API's connection cap, at a cap of its own: a flood of
	// webhook connections cannot take the descriptors raft and the
	// API need.
	a.eventsSrv, a.eventsLn = a.api.ExternalEventsServer(ln, ee.MaxConnections)
	if cfg := a.tls.serverConfig(); cfg != nil {
		// The API's key pair, reloaded with it ([tls]).
		a.eventsLn = tls.NewListener(a.eventsLn, cfg)
	}
	return nil
}

// serveExternalEvents serves the listener until stopExternalEvents.
func (a *Agent) serveExternalEvents() {
	if a.eventsSrv == nil {
		return
	}
	a.logger.Info("serving external events without authentication", "addr", a.eventsScheme()+"://"+a.eventsLn.Addr().String()+"/api/external/<extension>")
	go func() {
		if err := a.eventsSrv.Serve(a.eventsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("external events listener failed", "error", err)
		}
	}()
}

func (a *Agent) eventsScheme() string {
	if a.cfg.TLS.Enabled() {
		return "https"
	}
	return "http"
}

// stopExternalEvents stops taking events and waits for those in flight
// until ctx ends.
func (a *Agent) stopExternalEvents(ctx context.Context) {
	if a.eventsSrv == nil {
		return
	}
	if err := a.eventsSrv.Shutdown(ctx); err != nil {
		a.logger.Warn("external events listener shutdown", "error", err)
	}
}

// ExternalEventsAddr is where the external-events listener listens ("" when
// disabled); tests use it with bind_address port 0.
func (a *Agent) ExternalEventsAddr() string {
	if a.eventsLn == nil {
		return ""
	}
	return a.eventsLn.Addr().String()
}

// extensionCalls is the API's way to the running extensions; nil when
// extensions.call_extensions is off.
func (a *Agent) extensionCalls() api.ExtensionCalls {
	if !a.cfg.Extensions.CallExtensions {
		return nil
	}
	return a.extCalls
}
