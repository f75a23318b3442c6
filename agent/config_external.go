package agent

// ExternalEventsConfig is the external-events listener: webhooks for
// extensions (docs/extensions.md, "External events"). It has an address of
// its own so that it can be exposed to a webhook sender while the API is
// not, and it is off unless enabled: it takes requests without a token.
type ExternalEventsConfig struct {
	Enable bool `toml:"enable"`
	// BindAddress is the host:port it listens on.
	BindAddress string `toml:"bind_address"`
	// MaxConnections caps the listener's open connections (0: 64). At
	// the cap it sheds idle connections first; then new ones get 503.
	MaxConnections int `toml:"max_connections"`
}

// DefaultExternalEventsAddr is external_events.bind_address by default:
// upstream's 8081 is raft's port here, and extensions serve on 8082.
const DefaultExternalEventsAddr = "0.0.0.0:8083"
