package extension

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// serveInBackground runs serve and returns the address it listens on and
// its result. subsAtListen is how many subscriptions the extension had when
// the listener opened.
func serveInBackground(t *testing.T, ctx context.Context, cfg SystemConfig, ext *recExt) (addr string, subsAtListen int, done chan error) {
	t.Helper()
	listening := make(chan struct{})
	done = make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, ext, func(a net.Addr) {
			addr = a.String()
			subs, _, _, _ := ext.snapshot()
			subsAtListen = len(subs)
			close(listening)
		}, fastRetry(), WithLogger(testLogger(t)))
	}()
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("serve ended before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not listen")
	}
	return addr, subsAtListen, done
}

// At boot the stored subscriptions are passed to Subscribe before the
// extension listens, so Gofer's health check passes only once the
// extension is up to date. A stored subscription the extension refuses is
// skipped, not fatal; a disabled one is not restored.
func TestRestoreBeforeServing(t *testing.T) {
	g, ts := newFakeGofer(t)
	g.listStatus = []int{http.StatusServiceUnavailable} // Gofer not ready at first
	g.subscriptions = []StoredSubscription{
		{NamespaceID: "ns", PipelineID: "a", ExtensionID: "interval", SubscriptionID: "s1", Settings: map[string]string{"every": "1m"}, Status: "active"},
		{NamespaceID: "ns", PipelineID: "b", ExtensionID: "interval", SubscriptionID: "broken", Settings: map[string]string{"every": "1s"}, Status: "active"},
		{NamespaceID: "ns2", PipelineID: "c", ExtensionID: "interval", SubscriptionID: "s3", Status: "active"},
		// Disabled: Gofer refuses its runs; it is subscribed again when enabled.
		{NamespaceID: "ns2", PipelineID: "d", ExtensionID: "interval", SubscriptionID: "paused", Settings: map[string]string{"every": "1m"}, Status: "disabled"},
	}
	ext := &recExt{refuse: map[string]error{"broken": errors.New("every: under the minimum")}}
	addr, atListen, done := serveInBackground(t, context.Background(), testConfig(ts.URL), ext)

	if atListen != 2 {
		t.Fatalf("%d subscriptions restored when the extension started listening, want 2", atListen)
	}
	subs, _, _, _ := ext.snapshot()
	want := []Subscription{
		{NamespaceID: "ns", PipelineID: "a", ID: "s1", Params: map[string]string{"every": "1m"}},
		{NamespaceID: "ns2", PipelineID: "c", ID: "s3", Params: map[string]string{}},
	}
	if !reflect.DeepEqual(subs, want) {
		t.Fatalf("restored %+v\nwant %+v", subs, want)
	}
	if ext.inits != 1 || ext.gofer == nil || ext.gofer.ExtensionID() != "interval" {
		t.Fatalf("init not called with the client")
	}

	base := "http://" + addr
	resp, err := http.Get(base + "/api/health")
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()

	// Gofer's shutdown call stops the extension and the server.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/shutdown", nil)
	req.Header.Set("Authorization", bearer)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("shutdown: %v %v", resp, err)
	}
	resp.Body.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after shutdown")
	}
	if _, _, _, n := ext.snapshot(); n != 1 {
		t.Fatalf("%d shutdowns, want 1", n)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still listening after shutdown")
	}
}

// A signal (the context ending) tells the extension to shut down once.
func TestServeStopsOnSignal(t *testing.T) {
	_, ts := newFakeGofer(t)
	ext := &recExt{}
	ctx, cancel := context.WithCancel(context.Background())
	_, _, done := serveInBackground(t, ctx, testConfig(ts.URL), ext)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return")
	}
	if _, _, _, n := ext.snapshot(); n != 1 {
		t.Fatalf("%d shutdowns, want 1", n)
	}
}

// Without Gofer's list the extension does not start: serving with no
// subscriptions would silently drop every pipeline's schedule.
func TestServeFailsWhenRestoreFails(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"message":"extension not found"}`, http.StatusNotFound)
	}))
	defer ts.Close()
	ext := &recExt{}
	err := serve(context.Background(), testConfig(ts.URL), ext, func(net.Addr) { t.Error("listened without restoring") },
		fastRetry(), WithLogger(testLogger(t)))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("serve = %v, want the 404", err)
	}
}

type failingInit struct{ recExt }

func (*failingInit) Init(context.Context, *Client) error {
	return errors.New("MIN_INTERVAL: not a duration")
}

func TestServeFailsWhenInitFails(t *testing.T) {
	err := Serve(context.Background(), testConfig("http://127.0.0.1:1"), &failingInit{})
	if !errors.Is(err, ErrInit) {
		t.Fatalf("serve = %v, want ErrInit", err)
	}
}

// With USE_TLS the extension serves HTTPS with the given certificate.
func TestServeTLS(t *testing.T) {
	_, ts := newFakeGofer(t)
	cert, key := selfSigned(t)
	cfg := testConfig(ts.URL)
	cfg.UseTLS, cfg.TLSCert, cfg.TLSKey = true, cert, key
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, _, done := serveInBackground(t, ctx, cfg, &recExt{})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(cert))
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
	}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/api/info", nil)
	req.Header.Set("Authorization", bearer)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("info over TLS = %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + addr + "/api/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusNoContent {
			t.Fatal("plain HTTP answered on a TLS extension")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A signal while Gofer is still unreachable at boot is a clean stop, and
// the extension is told to shut down.
func TestSignalDuringRestore(t *testing.T) {
	g, ts := newFakeGofer(t)
	for range 1000 {
		g.listStatus = append(g.listStatus, http.StatusServiceUnavailable)
	}
	ext := &recExt{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, testConfig(ts.URL), ext, func(net.Addr) { t.Error("listened without restoring") },
			WithRetry(time.Minute, time.Millisecond, 5*time.Millisecond))
	}()
	waitFor(t, 10*time.Second, "a list call", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.listCalls > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve = %v, want nil", err)
	}
	if _, _, _, n := ext.snapshot(); n != 1 {
		t.Fatalf("%d shutdowns, want 1", n)
	}
}

func TestClientWithoutHosts(t *testing.T) {
	c := NewClient(SystemConfig{ID: "x", Secret: "s"})
	if _, err := c.StartRun(context.Background(), "ns", "p", nil, "k"); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
}

// Run reads everything from the environment: the Gofer host without a
// scheme, the bind address under upstream's server's spelling.
func TestRunReadsTheEnvironment(t *testing.T) {
	g, ts := newFakeGofer(t)
	g.subscriptions = []StoredSubscription{{NamespaceID: "ns", PipelineID: "p", SubscriptionID: "s", Settings: map[string]string{"every": "1m"}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv(EnvID, "interval")
	t.Setenv(EnvSecret, testSecret)
	t.Setenv(EnvUseTLS, "false")
	t.Setenv(EnvLogLevel, "debug")
	t.Setenv(EnvGoferHost, strings.TrimPrefix(ts.URL, "http://"))
	t.Setenv(EnvBindAddressAlt, addr)

	ext := &recExt{}
	done := make(chan error, 1)
	go func() { done <- Run(ext) }()
	waitFor(t, 10*time.Second, "health", func() bool {
		resp, err := http.Get("http://" + addr + "/api/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNoContent
	})
	if subs, _, _, _ := ext.snapshot(); len(subs) != 1 || subs[0].ID != "s" {
		t.Fatalf("restored %+v", subs)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/shutdown", nil)
	req.Header.Set("Authorization", bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
}
