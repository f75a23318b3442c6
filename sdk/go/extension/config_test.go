package extension

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// base is the smallest valid environment.
func base(extra map[string]string) map[string]string {
	m := map[string]string{EnvID: "interval", EnvSecret: "tok", EnvUseTLS: "false"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestParseSystemConfigDefaults(t *testing.T) {
	c, err := ParseSystemConfig(env(base(nil)))
	if err != nil {
		t.Fatal(err)
	}
	want := SystemConfig{ID: "interval", Secret: "tok", LogLevel: slog.LevelInfo,
		GoferHosts: []string{"http://localhost:8080"}, BindAddress: "0.0.0.0:8082"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
}

// Every error wraps ErrConfig and names the variable at fault.
func TestParseSystemConfigErrorsNameTheVariable(t *testing.T) {
	cert, key := selfSigned(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no id", map[string]string{EnvSecret: "tok", EnvUseTLS: "false"}, EnvID},
		{"no secret", map[string]string{EnvID: "x", EnvUseTLS: "false"}, EnvSecret},
		{"no use_tls", map[string]string{EnvID: "x", EnvSecret: "tok"}, EnvUseTLS},
		{"bad use_tls", base(map[string]string{EnvUseTLS: "yes please"}), EnvUseTLS},
		{"tls without cert", base(map[string]string{EnvUseTLS: "true", EnvTLSKey: key}), EnvTLSCert},
		{"tls without key", base(map[string]string{EnvUseTLS: "true", EnvTLSCert: cert}), EnvTLSKey},
		{"tls bad pem", base(map[string]string{EnvUseTLS: "true", EnvTLSCert: "x", EnvTLSKey: "y"}), EnvTLSCert},
		{"bad log level", base(map[string]string{EnvLogLevel: "loud"}), EnvLogLevel},
		{"gofer host with path", base(map[string]string{EnvGoferHost: "http://gofer:8080/api"}), EnvGoferHost},
		{"gofer host without port", base(map[string]string{EnvGoferHost: "gofer"}), EnvGoferHost},
		{"bad gofer hosts", base(map[string]string{EnvGoferHosts: "10.0.0.1:8080,gofer", EnvGoferHost: "10.0.0.1:8080"}), EnvGoferHosts},
		{"bad bindaddress", base(map[string]string{EnvBindAddress: "8082"}), EnvBindAddress},
		{"bad bind_address", base(map[string]string{EnvBindAddressAlt: "8082"}), EnvBindAddressAlt},
		{"bind addresses disagree", base(map[string]string{EnvBindAddress: "0.0.0.0:1", EnvBindAddressAlt: "0.0.0.0:2"}), EnvBindAddressAlt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSystemConfig(env(tc.env))
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %q does not name %s", err, tc.want)
			}
		})
	}
}

func TestParseSystemConfigValues(t *testing.T) {
	cert, key := selfSigned(t)
	for _, tc := range []struct {
		name  string
		env   map[string]string
		check func(SystemConfig) bool
	}{
		// Upstream's Go SDK reads BINDADDRESS, upstream's server sets
		// BIND_ADDRESS: either works, both when they agree.
		{"bindaddress", base(map[string]string{EnvBindAddress: "127.0.0.1:9001"}),
			func(c SystemConfig) bool { return c.BindAddress == "127.0.0.1:9001" }},
		{"bind_address", base(map[string]string{EnvBindAddressAlt: "127.0.0.1:9002"}),
			func(c SystemConfig) bool { return c.BindAddress == "127.0.0.1:9002" }},
		{"both agree", base(map[string]string{EnvBindAddress: "127.0.0.1:9003", EnvBindAddressAlt: "127.0.0.1:9003"}),
			func(c SystemConfig) bool { return c.BindAddress == "127.0.0.1:9003" }},
		{"host list", base(map[string]string{EnvGoferHost: "10.0.0.1:8080, 10.0.0.2:8080,"}),
			func(c SystemConfig) bool {
				return reflect.DeepEqual(c.GoferHosts, []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080"})
			}},
		// GOFER_HOSTS (every member) wins over GOFER_HOST (one member,
		// what upstream images read).
		{"gofer hosts preferred", base(map[string]string{EnvGoferHost: "10.0.0.9:8080", EnvGoferHosts: "10.0.0.1:8080,10.0.0.2:8080"}),
			func(c SystemConfig) bool {
				return reflect.DeepEqual(c.GoferHosts, []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080"})
			}},
		{"blank gofer hosts falls back", base(map[string]string{EnvGoferHost: "10.0.0.9:8080", EnvGoferHosts: " "}),
			func(c SystemConfig) bool { return reflect.DeepEqual(c.GoferHosts, []string{"http://10.0.0.9:8080"}) }},
		{"host with scheme", base(map[string]string{EnvGoferHost: "https://gofer.example:443/"}),
			func(c SystemConfig) bool {
				return reflect.DeepEqual(c.GoferHosts, []string{"https://gofer.example:443"})
			}},
		{"tls makes https", base(map[string]string{EnvUseTLS: "true", EnvTLSCert: cert, EnvTLSKey: key, EnvGoferHost: "172.17.0.1:8080"}),
			func(c SystemConfig) bool {
				return c.UseTLS && reflect.DeepEqual(c.GoferHosts, []string{"https://172.17.0.1:8080"})
			}},
		{"trace is debug", base(map[string]string{EnvLogLevel: "TRACE"}),
			func(c SystemConfig) bool { return c.LogLevel == slog.LevelDebug }},
		{"warn", base(map[string]string{EnvLogLevel: "warn"}),
			func(c SystemConfig) bool { return c.LogLevel == slog.LevelWarn }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseSystemConfig(env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

// Install settings arrive as env vars named by their keys; Config reads the
// upper-cased key first, as upstream's Go SDK does, then the key as given.
func TestConfigReadsInstallSettings(t *testing.T) {
	t.Setenv("MIN_INTERVAL", "5m")
	t.Setenv("lower_only", "x")
	if got := Config("min_interval"); got != "5m" {
		t.Fatalf("Config(min_interval) = %q", got)
	}
	if got := Config("MIN_INTERVAL"); got != "5m" {
		t.Fatalf("Config(MIN_INTERVAL) = %q", got)
	}
	if got := Config("lower_only"); got != "x" {
		t.Fatalf("Config(lower_only) = %q", got)
	}
	if got := Config("unset_setting"); got != "" {
		t.Fatalf("Config(unset_setting) = %q", got)
	}
}

// selfSigned returns a PEM certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "extension"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}
