package extension

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// With GOFER_EXTENSION_SYSTEM_GOFER_CA, host:port entries are reached
// over https and Gofer's certificate is verified against that CA; without
// it the same server's certificate is refused.
func TestGoferCAVerifiesGofer(t *testing.T) {
	g := &fakeGofer{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/extensions/{id}/subscriptions", g.list)
	ts := httptest.NewTLSServer(mux)
	t.Cleanup(ts.Close)
	host := strings.TrimPrefix(ts.URL, "https://")
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}))

	env := map[string]string{EnvID: "interval", EnvSecret: testSecret, EnvUseTLS: "false", EnvGoferHosts: host, EnvGoferCA: ca}
	cfg, err := ParseSystemConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GoferHosts[0] != ts.URL {
		t.Fatalf("hosts %v, want %s", cfg.GoferHosts, ts.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := NewClient(cfg, fastRetry()).Subscriptions(ctx); err != nil {
		t.Fatalf("with the CA: %v", err)
	}

	delete(env, EnvGoferCA)
	env[EnvGoferHosts] = ts.URL
	cfg, err = ParseSystemConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(cfg, WithRetry(0, time.Millisecond, time.Millisecond)).Subscriptions(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v", err)
	}

	env[EnvGoferCA] = "not pem"
	if _, err := ParseSystemConfig(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), EnvGoferCA) {
		t.Fatalf("bad CA: %v", err)
	}
}
