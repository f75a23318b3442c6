package extension

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Body limits of the routes Gofer calls.
const (
	// MaxEventBody bounds an external event's body (GitHub's webhook limit
	// is 25 MB).
	MaxEventBody = 25 << 20
	// maxEventRequest bounds the POST /api/external-event request: the
	// body bytes may arrive as a JSON array of numbers, up to four
	// characters a byte, plus the headers.
	maxEventRequest = 4*MaxEventBody + 1<<20
	// maxRequest bounds every other request.
	maxRequest = 1 << 20
)

// server answers Gofer's calls to the extension. Calls into the extension
// are made one at a time (sem), so an extension's handlers need no lock
// among themselves; its own goroutines (tickers) still need one.
type server struct {
	cfg SystemConfig
	ext Extension
	log *slog.Logger
	// secretSum is the SHA-256 of the secret: comparing digests in
	// constant time hides the secret's length as well as its bytes.
	secretSum [32]byte
	// sem holds one token: whoever has it may call into the extension.
	sem chan struct{}
	// stopping is set once the extension has been told to shut down.
	stopping     atomic.Bool
	shutdownOnce sync.Once
	// Body limits (the constants; tests lower them).
	maxEvent, maxEventRequest, maxRequest int64
	// shutdownCalled is closed (once, by calledOnce) after Gofer's
	// POST /api/shutdown has been handled, to stop the HTTP server.
	shutdownCalled chan struct{}
	calledOnce     sync.Once
}

func newServer(cfg SystemConfig, ext Extension, log *slog.Logger) *server {
	s := &server{
		cfg:             cfg,
		ext:             ext,
		log:             log,
		secretSum:       sha256.Sum256([]byte(cfg.Secret)),
		sem:             make(chan struct{}, 1),
		maxEvent:        MaxEventBody,
		maxEventRequest: maxEventRequest,
		maxRequest:      maxRequest,
		shutdownCalled:  make(chan struct{}),
	}
	s.sem <- struct{}{}
	return s
}

// enter takes the right to call into the extension, or gives up when ctx
// ends. leave gives it back.
func (s *server) enter(ctx context.Context) error {
	select {
	case <-s.sem:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *server) leave() { s.sem <- struct{}{} }

// shutdownExtension tells the extension to stop, once, whoever asks first
// (Gofer's POST /api/shutdown or a signal).
func (s *server) shutdownExtension(ctx context.Context) {
	s.shutdownOnce.Do(func() {
		s.stopping.Store(true)
		err := s.within(ctx, func(ctx context.Context) error { s.ext.Shutdown(ctx); return nil })
		if err != nil {
			// Calling in now would break one-call-at-a-time; the
			// process is stopping anyway.
			s.log.Warn("extension not told to shut down: a call is still in progress", "error", err)
		}
	})
}

// handler is the extension's HTTP API.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/info", s.info)
	mux.HandleFunc("GET /api/debug", s.debug)
	mux.HandleFunc("POST /api/subscribe", s.subscribe)
	mux.HandleFunc("DELETE /api/subscribe", s.unsubscribe)
	mux.HandleFunc("POST /api/shutdown", s.shutdown)
	mux.HandleFunc("POST /api/external-event", s.externalEvent)
	return s.authenticate(mux)
}

// authenticate requires Gofer's bearer on every route but health, before
// any body is read: no header or not a Bearer → 400, a wrong secret → 401
// (upstream's rules).
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/health" {
			next.ServeHTTP(w, r)
			return
		}
		h := r.Header.Get("Authorization")
		if h == "" {
			s.fail(w, http.StatusBadRequest, "Authorization header not found but required")
			return
		}
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			s.fail(w, http.StatusBadRequest, "Authorization header malformed; should start with 'Bearer '")
			return
		}
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], s.secretSum[:]) != 1 {
			s.fail(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) info(w http.ResponseWriter, r *http.Request) {
	var doc Documentation
	if !s.call(w, r, func(context.Context) error { doc = s.ext.Info(); return nil }) {
		return
	}
	if doc.ConfigParams == nil {
		doc.ConfigParams = []Param{}
	}
	if doc.PipelineSubscriptionParams == nil {
		doc.PipelineSubscriptionParams = []Param{}
	}
	s.reply(w, http.StatusOK, infoResponse{ExtensionID: s.cfg.ID, Documentation: doc})
}

func (s *server) debug(w http.ResponseWriter, r *http.Request) {
	d, ok := s.ext.(Debugger)
	if !ok {
		s.reply(w, http.StatusOK, debugResponse{})
		return
	}
	var info string
	if !s.call(w, r, func(ctx context.Context) error { info = d.Debug(ctx); return nil }) {
		return
	}
	s.reply(w, http.StatusOK, debugResponse{Info: info})
}

// subscriptionRequest reads a subscribe or unsubscribe body; false when
// it answered an error.
func (s *server) subscriptionRequest(w http.ResponseWriter, r *http.Request) (subscribeRequest, bool) {
	var req subscribeRequest
	if !s.decode(w, r, s.maxRequest, &req) {
		return req, false
	}
	if field := missingField(req.NamespaceID, req.PipelineID, req.PipelineSubscriptionID); field != "" {
		s.fail(w, http.StatusBadRequest, field+" is required")
		return req, false
	}
	return req, true
}

func (s *server) subscribe(w http.ResponseWriter, r *http.Request) {
	req, ok := s.subscriptionRequest(w, r)
	if !ok {
		return
	}
	if req.Params == nil {
		req.Params = map[string]string{}
	}
	s.do(w, r, func(ctx context.Context) error {
		return s.ext.Subscribe(ctx, Subscription{
			NamespaceID: req.NamespaceID, PipelineID: req.PipelineID, ID: req.PipelineSubscriptionID, Params: req.Params,
		})
	})
}

func (s *server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	req, ok := s.subscriptionRequest(w, r)
	if !ok {
		return
	}
	s.do(w, r, func(ctx context.Context) error {
		return s.ext.Unsubscribe(ctx, Subscription{
			NamespaceID: req.NamespaceID, PipelineID: req.PipelineID, ID: req.PipelineSubscriptionID,
		})
	})
}

func (s *server) externalEvent(w http.ResponseWriter, r *http.Request) {
	var req externalEventRequest
	if !s.decode(w, r, s.maxEventRequest, &req) {
		return
	}
	body, err := decodeEventBody(req.Body, int(s.maxEvent))
	if errors.Is(err, ErrEventBodyTooLarge) {
		s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("external event body over %d bytes", s.maxEvent))
		return
	} else if err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	h, ok := s.ext.(EventHandler)
	if !ok {
		s.fail(w, http.StatusBadRequest, "extension "+s.cfg.ID+" takes no external events")
		return
	}
	if req.Headers == nil {
		req.Headers = map[string]string{}
	}
	s.do(w, r, func(ctx context.Context) error {
		return h.ExternalEvent(ctx, Event{Headers: req.Headers, Body: body})
	})
}

func (s *server) shutdown(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, s.maxRequest))
	s.shutdownExtension(r.Context())
	w.WriteHeader(http.StatusNoContent)
	s.calledOnce.Do(func() { close(s.shutdownCalled) })
}

// do calls fn inside the extension and answers 204, or the error.
func (s *server) do(w http.ResponseWriter, r *http.Request, fn func(context.Context) error) {
	if s.stopping.Load() {
		s.fail(w, http.StatusServiceUnavailable, "extension "+s.cfg.ID+" is shutting down")
		return
	}
	if s.call(w, r, fn) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// call runs fn inside the extension for r, one call at a time; on false
// it has answered (503 when r ended while waiting, or fn's error).
func (s *server) call(w http.ResponseWriter, r *http.Request, fn func(context.Context) error) bool {
	err := s.within(r.Context(), fn)
	var waiting *waitError
	switch {
	case errors.As(err, &waiting):
		s.fail(w, http.StatusServiceUnavailable, "gave up waiting for the call in progress: "+waiting.err.Error())
		return false
	case err != nil:
		s.fail(w, statusOf(err), err.Error())
		return false
	}
	return true
}

// waitError is a call that never got into the extension.
type waitError struct{ err error }

func (e *waitError) Error() string { return e.err.Error() }

// within runs fn holding the right to call into the extension. The right
// is given back even if fn panics (net/http recovers a handler's panic),
// so one bad call cannot wedge every later one.
func (s *server) within(ctx context.Context, fn func(context.Context) error) error {
	if err := s.enter(ctx); err != nil {
		return &waitError{err}
	}
	defer s.leave()
	return fn(ctx)
}

// decode reads a JSON body of at most limit bytes into v; on false it has
// answered (400 naming the problem, 413 over the limit). Unknown fields are
// ignored so that a newer Gofer can add some.
func (s *server) decode(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", limit))
		return false
	case err != nil:
		s.fail(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return false
	}
	if err := json.Unmarshal(data, v); err != nil {
		s.fail(w, http.StatusBadRequest, "could not parse request body: "+err.Error())
		return false
	}
	return true
}

func missingField(namespace, pipeline, subscription string) string {
	switch {
	case namespace == "":
		return "namespace_id"
	case pipeline == "":
		return "pipeline_id"
	case subscription == "":
		return "pipeline_subscription_id"
	}
	return ""
}

func (s *server) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("could not write a reply", "error", err)
	}
}

func (s *server) fail(w http.ResponseWriter, status int, msg string) {
	code := strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	s.reply(w, status, errorResponse{ErrorCode: code, Message: msg})
}
