package agent

import (
	"net"

	"github.com/goferhq/gofer/api"
)

// MetricsConfig is who may read this node's metrics (docs/metrics.md).
type MetricsConfig struct {
	// Access: "token" (the default: GET /metrics on the API with a valid
	// token of any role), "open" (the API route without a token) or
	// "listener" (only on Listen, without a token; the API route 404s).
	// Token is the default because series name namespaces, pipelines and
	// extensions; "listener" keeps them off the API's port for a scraper
	// on a private network.
	Access string `toml:"access"`
	// Listen is the host:port of the metrics listener, required with
	// access = "listener" and refused otherwise.
	Listen string `toml:"listen"`
}

// validateMetrics checks the [metrics] section.
func (c *Config) validateMetrics(add func(format string, args ...any)) {
	m := c.Metrics
	switch m.Access {
	case api.MetricsAccessToken, api.MetricsAccessOpen:
		if m.Listen != "" {
			add("metrics.listen %q needs metrics.access = \"listener\" (access is %q)", m.Listen, m.Access)
		}
	case api.MetricsAccessListener:
		if _, _, err := net.SplitHostPort(m.Listen); err != nil {
			add("metrics.listen %q must be host:port (metrics.access = \"listener\")", m.Listen)
		}
	default:
		add("metrics.access %q must be token, open or listener", m.Access)
	}
}
