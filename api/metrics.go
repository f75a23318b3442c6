package api

import (
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Metrics access modes (Options.MetricsAccess, [metrics] access).
const (
	// MetricsAccessToken: GET /metrics needs a valid token of any role
	// (the default: series name pipelines and extensions).
	MetricsAccessToken = "token"
	// MetricsAccessOpen: GET /metrics needs no token.
	MetricsAccessOpen = "open"
	// MetricsAccessListener: the API does not serve /metrics (404); the
	// agent serves it, unauthenticated, on [metrics] listen only.
	MetricsAccessListener = "listener"
)

// metricsAccess is the /metrics route's access for the configured mode.
// In listener mode the route only answers 404, to anyone.
func metricsAccess(mode string) access {
	if mode == MetricsAccessOpen || mode == MetricsAccessListener {
		return access{public: true}
	}
	return access{authenticated: true}
}

// serveMetrics answers GET /metrics from the node's registry.
func (s *Server) serveMetrics(c echo.Context) error {
	if s.opts.MetricsAccess == MetricsAccessListener {
		return notFound("metrics are served on this node's metrics listener ([metrics] listen), not on the API")
	}
	if s.opts.Metrics == nil {
		return notFound("this node keeps no metrics")
	}
	s.opts.Metrics.Handler().ServeHTTP(c.Response(), c.Request())
	return nil
}

// observeRequest records a served request under its route template (echo's
// matched path, ":ns" and all) so the label set is bounded by the route
// table; anything else (a 404 for an unknown path) is "other".
func (s *Server) observeRequest(c echo.Context, start time.Time) {
	if s.opts.Metrics == nil {
		return
	}
	route := c.Path()
	if _, ok := s.knownRoutes[route]; !ok {
		route = "other"
	}
	method := c.Request().Method
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
	default:
		method = "other"
	}
	s.opts.Metrics.ObserveRequest(route, method, c.Response().Status, time.Since(start))
}

// triggerLateness records how late a trigger's run starts: the interval
// and cron keys carry their tick's scheduled time
// (interval|cron:<ns>/<pipeline>/<sub>:<unix seconds>); other keys
// (github:) carry none and are not observed.
func (s *Server) triggerLateness(key string, now time.Time) {
	if s.opts.Metrics == nil {
		return
	}
	kind, rest, ok := strings.Cut(key, ":")
	if !ok || (kind != "cron" && kind != "interval") {
		return
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return
	}
	at, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil || at <= 0 {
		return
	}
	s.opts.Metrics.ObserveTriggerLateness(kind, now.Sub(time.Unix(at, 0)))
}
