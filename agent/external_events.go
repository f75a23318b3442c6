package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/goferhq/gofer/api"
)

// External events: a listener of its own (external_events.bind_address)
// serving the API's ExternalEventsHandler — webhooks for extensions,
// without authentication (the extension verifies them), passed to the
// extension on the leader.

// externalEventsMaxHeader bounds an event's request headers (a webhook's
// are a few KiB; the API allows 1 MiB for its own).
const externalEventsMaxHeader = 64 << 10

// listenExternalEvents opens the listener when enabled (at New, so a port
// already in use fails the start).
func (a *Agent) listenExternalEvents() error {
	ee := a.cfg.ExternalEvents
	if !ee.Enable {
		return nil
	}
	ln, err := net.Listen("tcp", ee.BindAddress)
	if err != nil {
		return fmt.Errorf("listen on external_events.bind_address %s: %w", ee.BindAddress, err)
	}
	a.eventsSrv = &http.Server{
		Handler:           a.api.ExternalEventsHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    externalEventsMaxHeader,
		IdleTimeout:       2 * time.Minute,
	}
	a.eventsLn = ln
	return nil
}

// serveExternalEvents serves the listener until stopExternalEvents.
func (a *Agent) serveExternalEvents() {
	if a.eventsSrv == nil {
		return
	}
	a.logger.Info("serving external events without authentication", "addr", "http://"+a.eventsLn.Addr().String()+"/api/external/<extension>")
	go func() {
		if err := a.eventsSrv.Serve(a.eventsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("external events listener failed", "error", err)
		}
	}()
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
