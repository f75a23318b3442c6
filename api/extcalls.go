package api

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/extcall"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
)

// ExtensionCalls is how the API reaches running extensions (on the
// leader: the extension supervisor runs them there). *extcall.Client
// implements it; tests fake it. Errors are extcall's: *NotRunningError,
// *Error (the extension's own answer), *UnreachableError.
type ExtensionCalls interface {
	Subscribe(ctx context.Context, extensionID string, sub extcall.Subscription) error
	Unsubscribe(ctx context.Context, extensionID string, ref extcall.SubscriptionRef) error
	Debug(ctx context.Context, extensionID string) (string, error)
	ExternalEvent(ctx context.Context, extensionID string, ev extcall.Event) error
}

// unsubscribeTimeout bounds a best-effort DELETE /api/subscribe made after
// the cluster already committed (a delete, a disable, a failed create).
const unsubscribeTimeout = 30 * time.Second

// callKind is what a call to an extension was for: it decides how the
// extension's own refusal reaches the caller.
type callKind int

const (
	// callSubscribe: the extension's 4xx refuses the caller's settings
	// (400 naming them).
	callSubscribe callKind = iota
	// callDebug: the caller is not to blame for any answer (502).
	callDebug
	// callEvent: an external event; the extension judges the sender (a
	// bad signature is its 401), so its 4xx and message pass through.
	callEvent
)

// extensionCallError maps a failed call to extension id to the caller's
// answer. The detail of a call that got no answer (the extension's
// internal address) is logged, never answered: external events come from
// anyone.
func (s *Server) extensionCallError(id string, err error, kind callKind) error {
	var nr *extcall.NotRunningError
	var ee *extcall.Error
	var ue *extcall.UnreachableError
	switch {
	case errors.As(err, &nr):
		return unavailable(5, "extension %q is not running yet (it is starting, or the leadership just moved); retry shortly", id)
	case errors.As(err, &ee) && ee.Status >= 400 && ee.Status < 500 && kind == callEvent:
		return newError(ee.Status, codeForStatus(ee.Status), "extension %q refused the event: %s", id, ee.Message)
	case errors.As(err, &ee) && (ee.Status == http.StatusUnauthorized || ee.Status == http.StatusForbidden):
		// Not the caller's fault: the extension does not take the secret
		// Gofer holds for it (a reinstall rotated it under a container
		// still running the old one).
		return newError(http.StatusBadGateway, CodeBadGateway, "extension %q refused Gofer's credentials (%d: %s); it may still run with a secret from before a reinstall", id, ee.Status, ee.Message)
	case errors.As(err, &ee) && ee.Status >= 400 && ee.Status < 500 && kind == callSubscribe:
		return badRequest("settings: extension %q refused the subscription: %s", id, ee.Message)
	case errors.As(err, &ee):
		return newError(http.StatusBadGateway, CodeBadGateway, "extension %q answered %d: %s", id, ee.Status, ee.Message)
	case errors.As(err, &ue):
		s.logger.Warn("extension call got no answer", "extension", id, "error", ue.Err)
		return unavailable(5, "extension %q is not reachable (it may be starting or overloaded); retry shortly", id)
	}
	return err
}

// codeForStatus is the error code of a 4xx an extension answered.
func codeForStatus(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusConflict:
		return CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodePayloadTooLarge
	}
	return CodeBadRequest
}

// resolveSettings resolves the secret markers of a subscription's
// settings for the extension's subscribe call (they are stored as given).
// It runs on the leader, which holds the encryption key; the caller must
// have been allowed the markers (checkSecretMarkers). Object markers are
// refused: a subscription has no run, and its settings are not a task's.
func (s *Server) resolveSettings(ns, pipeline string, settings map[string]string) (out map[string]string, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		out, err = s.resolveSettingsIn(tx, ns, pipeline, settings)
		return err
	})
	return out, err
}

// resolveSettingsIn is resolveSettings within a read transaction.
func (s *Server) resolveSettingsIn(tx *bbolt.Tx, ns, pipeline string, settings map[string]string) (map[string]string, error) {
	names := markerNames(settings)
	if len(names) == 0 {
		return settings, nil
	}
	out := make(map[string]string, len(settings))
	for k, v := range settings {
		out[k] = v
	}
	uses := make([]store.MarkerUse, 0, len(names))
	for _, name := range names {
		kind, key, _ := sdk.ParseMarker(settings[name])
		if kind != "pipeline_secret" && kind != "global_secret" {
			return nil, badRequest("settings.%s: %s markers are not resolved in subscription settings (only pipeline_secret and global_secret)", name, kind)
		}
		uses = append(uses, store.MarkerUse{Task: "settings", Variable: name, Kind: kind, Key: key})
	}
	// Every secret that is not there at once, each with its fix.
	missing, err := store.MissingValues(tx, ns, pipeline, 0, uses)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, missingValues(http.StatusBadRequest, CodeBadRequest, "settings", missing)
	}
	for _, name := range names {
		kind, key, _ := sdk.ParseMarker(settings[name])
		v, _, err := store.OpenSecretMarker(tx, s.opts.Secrets, ns, pipeline, kind, key)
		if err != nil {
			return nil, badRequest("settings.%s: %s", name, err)
		}
		out[name] = string(v)
	}
	return out, nil
}

// subscriptionLocks serializes the extension call and the commit of one
// subscription, so two requests for it cannot interleave (one's failed
// commit unsubscribing what the other just committed).
type subscriptionLocks struct {
	mu    sync.Mutex
	locks map[string]*refMutex
	// unsubscribing counts the unsubscribes still in flight (tests wait
	// for them).
	unsubscribing sync.WaitGroup
}

type refMutex struct {
	sync.Mutex
	refs int
}

// lock takes key's lock; the returned func releases it.
func (l *subscriptionLocks) lock(key string) func() {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*refMutex{}
	}
	m, ok := l.locks[key]
	if !ok {
		m = &refMutex{}
		l.locks[key] = m
	}
	m.refs++
	l.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		l.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
}

// unsubscribeLater tells the extension to drop a subscription the cluster
// no longer has active, without holding up the caller: best effort (an
// extension that is down restores its subscriptions from the cluster when
// it starts), bounded by unsubscribeTimeout. It takes over unlock, the
// subscription's lock, and releases it once the call ended, so a
// subscribe that follows cannot overtake it.
func (s *Server) unsubscribeLater(extensionID string, ref extcall.SubscriptionRef, unlock func()) {
	s.subLocks.unsubscribing.Add(1)
	go func() {
		defer s.subLocks.unsubscribing.Done()
		defer unlock()
		ctx, cancel := context.WithTimeout(context.Background(), unsubscribeTimeout)
		defer cancel()
		if err := s.opts.ExtensionCalls.Unsubscribe(ctx, extensionID, ref); err != nil {
			s.logger.Warn("could not tell the extension to drop a subscription", "extension", extensionID,
				"namespace", ref.NamespaceID, "pipeline", ref.PipelineID, "subscription", ref.SubscriptionID, "error", err)
		}
	}()
}

// debugExtension answers the running extension's GET /api/debug as
// {"info": …} (upstream's route; admins only, on the leader).
func (s *Server) debugExtension(c echo.Context) error {
	id, err := extensionParam(c)
	if err != nil {
		return err
	}
	if _, err := s.installedExtension(id); err != nil {
		return err
	}
	if s.opts.ExtensionCalls == nil {
		return unavailable(5, "extension %q is not running: this cluster runs no extensions", id)
	}
	info, err := s.opts.ExtensionCalls.Debug(c.Request().Context(), id)
	if err != nil {
		return s.extensionCallError(id, err, callDebug)
	}
	return c.JSON(http.StatusOK, debugAnswer{Info: info})
}

// debugAnswer is the answer of GET /api/extensions/:extension/debug, the
// extension's own GET /api/debug answer.
type debugAnswer struct {
	Info string `json:"info"`
}
