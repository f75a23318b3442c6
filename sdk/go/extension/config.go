package extension

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// The environment Gofer gives an extension container (upstream's names).
const (
	EnvID        = "GOFER_EXTENSION_SYSTEM_ID"
	EnvSecret    = "GOFER_EXTENSION_SYSTEM_SECRET"
	EnvUseTLS    = "GOFER_EXTENSION_SYSTEM_USE_TLS"
	EnvTLSCert   = "GOFER_EXTENSION_SYSTEM_TLS_CERT"
	EnvTLSKey    = "GOFER_EXTENSION_SYSTEM_TLS_KEY"
	EnvLogLevel  = "GOFER_EXTENSION_SYSTEM_LOG_LEVEL"
	EnvGoferHost = "GOFER_EXTENSION_SYSTEM_GOFER_HOST"
	// EnvGoferHosts is Gofer's addition: every member's API, comma
	// separated. Preferred when set; upstream images read only
	// EnvGoferHost, which stays one host:port.
	EnvGoferHosts  = "GOFER_EXTENSION_SYSTEM_GOFER_HOSTS"
	EnvBindAddress = "GOFER_EXTENSION_SYSTEM_BINDADDRESS"
	// EnvGoferCA is Gofer's addition: PEM text of the CA that signed
	// Gofer's API certificates, set when the API serves TLS with a
	// cluster CA. The SDK verifies Gofer against it (and only it); host:port
	// entries of the host variables are then reached over https.
	EnvGoferCA = "GOFER_EXTENSION_SYSTEM_GOFER_CA"
	// EnvBindAddressAlt is the spelling upstream's server sets; upstream's
	// Go SDK read only EnvBindAddress. Either is accepted.
	EnvBindAddressAlt = "GOFER_EXTENSION_SYSTEM_BIND_ADDRESS"
)

// Defaults for the optional variables.
const (
	DefaultGoferHost   = "localhost:8080"
	DefaultBindAddress = "0.0.0.0:8082"
)

// ErrConfig is wrapped by every error about the extension's environment;
// the message names the variable.
var ErrConfig = errors.New("extension environment")

// SystemConfig is the extension's system configuration, read from the
// environment Gofer sets.
type SystemConfig struct {
	// ID is the extension's id, as installed.
	ID string
	// Secret is both the extension's Gofer API token and the bearer Gofer
	// presents on every call to the extension.
	Secret string
	// UseTLS makes the extension serve HTTPS with TLSCert/TLSKey and call
	// Gofer over https.
	UseTLS bool
	// TLSCert and TLSKey are PEM text.
	TLSCert, TLSKey string
	// LogLevel is the level of the logger the SDK hands the extension.
	LogLevel slog.Level
	// GoferHosts are the base URLs of Gofer's API, from EnvGoferHosts
	// when set (every member, so the SDK fails over), else EnvGoferHost.
	// Either holds host:port (no scheme, as upstream), or a
	// comma-separated list of them; the SDK tries them in turn.
	GoferHosts []string
	// BindAddress is the host:port the extension listens on.
	BindAddress string
	// GoferCA is PEM text of the CA Gofer's API certificates chain to
	// (EnvGoferCA); empty: the system roots.
	GoferCA string
}

// LoadSystemConfig reads the extension's environment from the process.
func LoadSystemConfig() (SystemConfig, error) { return ParseSystemConfig(os.Getenv) }

// ParseSystemConfig reads the extension's environment through getenv
// (os.Getenv in a real extension). Every error wraps ErrConfig and names
// the variable.
func ParseSystemConfig(getenv func(string) string) (SystemConfig, error) {
	c := SystemConfig{ID: getenv(EnvID), Secret: getenv(EnvSecret)}
	if c.ID == "" {
		return c, missing(EnvID)
	}
	if c.Secret == "" {
		return c, missing(EnvSecret)
	}

	useTLS := strings.TrimSpace(getenv(EnvUseTLS))
	if useTLS == "" {
		return c, fmt.Errorf("%w: %s is required (true or false)", ErrConfig, EnvUseTLS)
	}
	b, err := strconv.ParseBool(useTLS)
	if err != nil {
		return c, fmt.Errorf("%w: %s must be true or false, not %q", ErrConfig, EnvUseTLS, useTLS)
	}
	c.UseTLS = b
	c.TLSCert, c.TLSKey = getenv(EnvTLSCert), getenv(EnvTLSKey)
	if c.UseTLS {
		if c.TLSCert == "" {
			return c, fmt.Errorf("%w: %s is required when %s is true", ErrConfig, EnvTLSCert, EnvUseTLS)
		}
		if c.TLSKey == "" {
			return c, fmt.Errorf("%w: %s is required when %s is true", ErrConfig, EnvTLSKey, EnvUseTLS)
		}
		if _, err := tls.X509KeyPair([]byte(c.TLSCert), []byte(c.TLSKey)); err != nil {
			return c, fmt.Errorf("%w: %s and %s are not a PEM certificate and its key: %v", ErrConfig, EnvTLSCert, EnvTLSKey, err)
		}
	}

	if c.GoferCA = getenv(EnvGoferCA); c.GoferCA != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(c.GoferCA)) {
			return c, fmt.Errorf("%w: %s holds no PEM certificate", ErrConfig, EnvGoferCA)
		}
	}

	if c.LogLevel, err = parseLevel(getenv(EnvLogLevel)); err != nil {
		return c, err
	}

	hostsVar := EnvGoferHosts
	hosts := getenv(EnvGoferHosts)
	if strings.TrimSpace(hosts) == "" {
		hostsVar, hosts = EnvGoferHost, getenv(EnvGoferHost)
	}
	if strings.TrimSpace(hosts) == "" {
		hosts = DefaultGoferHost
	}
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimRight(strings.TrimSpace(h), "/")
		if h == "" {
			continue
		}
		base, err := hostURL(h, c.UseTLS || c.GoferCA != "")
		if err != nil {
			return c, fmt.Errorf("%w: %s: %v", ErrConfig, hostsVar, err)
		}
		c.GoferHosts = append(c.GoferHosts, base)
	}
	if len(c.GoferHosts) == 0 {
		return c, fmt.Errorf("%w: %s holds no address", ErrConfig, hostsVar)
	}

	bind, alt := strings.TrimSpace(getenv(EnvBindAddress)), strings.TrimSpace(getenv(EnvBindAddressAlt))
	switch {
	case bind != "" && alt != "" && bind != alt:
		return c, fmt.Errorf("%w: %s (%q) and %s (%q) disagree; set one", ErrConfig, EnvBindAddress, bind, EnvBindAddressAlt, alt)
	case bind != "":
		c.BindAddress = bind
	case alt != "":
		c.BindAddress = alt
	default:
		c.BindAddress = DefaultBindAddress
	}
	if _, _, err := net.SplitHostPort(c.BindAddress); err != nil {
		name := EnvBindAddress
		if bind == "" && alt != "" {
			name = EnvBindAddressAlt
		}
		return c, fmt.Errorf("%w: %s must be host:port, not %q", ErrConfig, name, c.BindAddress)
	}
	return c, nil
}

func missing(name string) error { return fmt.Errorf("%w: %s is required", ErrConfig, name) }

// hostURL turns a Gofer host (host:port, or a URL) into a base URL. A
// scheme is accepted because upstream's Rust SDK defaulted to one.
func hostURL(h string, useTLS bool) (string, error) {
	if strings.Contains(h, "://") {
		u, err := url.Parse(h)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return "", fmt.Errorf("%q must be host:port or an http(s) URL without a path", h)
		}
		return u.Scheme + "://" + u.Host, nil
	}
	if _, _, err := net.SplitHostPort(h); err != nil {
		return "", fmt.Errorf("%q must be host:port", h)
	}
	if useTLS {
		return "https://" + h, nil
	}
	return "http://" + h, nil
}

// parseLevel reads a log level. Upstream's server passes its own level
// (tracing's names), upstream's Go SDK knew zerolog's: both are accepted.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "trace", "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal", "panic":
		return slog.LevelError, nil
	case "off":
		return slog.LevelError + 4, nil
	}
	return 0, fmt.Errorf("%w: %s must be one of trace, debug, info, warn, error, off; not %q", ErrConfig, EnvLogLevel, s)
}

// Config returns an install setting of the extension. Gofer passes each
// setting to the container as an environment variable named by its key;
// Config reads the upper-cased key first (as upstream's Go SDK does) and
// the key as given when that is unset.
func Config(key string) string {
	if v, ok := os.LookupEnv(strings.ToUpper(key)); ok {
		return v
	}
	return os.Getenv(key)
}
