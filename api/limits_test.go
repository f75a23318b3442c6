package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// authNode runs a real single-node agent with authentication on and
// returns its URL and the bootstrapped admin token's secret.
func authNode(t *testing.T, mutate ...func(*agent.Config)) (url, admin string) {
	t.Helper()
	cfg := agent.DefaultConfig()
	cfg.Server.DataDir = t.TempDir()
	cfg.Server.APIAddr = freeAddr(t)
	cfg.Server.RaftAddr = freeAddr(t)
	cfg.Server.Bootstrap = true
	cfg.Cluster.Secret = "api-test-cluster-secret-0123456789"
	cfg.Secrets.EncryptionKey = "api-test-encryption-key-9876543210ab"
	cfg.Scheduler.Engine = "noop"
	cfg.Extensions.InstallStdExtensions = false
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := agent.New(cfg, model.Metadata{Semver: "test"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	url = "http://" + cfg.Server.APIAddr
	cl, err := client.New([]string{url})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		tok, err := cl.BootstrapToken(ctx)
		if err == nil {
			return url, tok.Secret
		}
		if time.Now().After(deadline) {
			t.Fatalf("bootstrap never succeeded: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends one API request with the token (none when empty).
func call(t *testing.T, method, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("gofer-api-version", "v0")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// untilLimited sends requests until one is refused with 429 (the limit
// is 1/s with a burst of 2: a handful of requests reach it) and returns it.
func untilLimited(t *testing.T, method, url, token string) (*http.Response, []byte) {
	t.Helper()
	for i := 0; i < 50; i++ {
		resp, b := call(t, method, url, token)
		if resp.StatusCode == http.StatusTooManyRequests {
			return resp, b
		}
	}
	t.Fatalf("%s %s: no 429 in 50 requests at a limit of 1/s", method, url)
	return nil, nil
}

func checkLimited(t *testing.T, what string, resp *http.Response, b []byte) {
	t.Helper()
	var body struct {
		RequestID string `json:"request_id"`
		Code      string `json:"code"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s: 429 body %q is not the error JSON: %v", what, b, err)
	}
	if body.Code != "rate_limited" || body.RequestID == "" || body.RequestID != resp.Header.Get("X-Request-Id") || body.Message == "" {
		t.Errorf("%s: 429 body %+v; want code rate_limited, the request id and a message", what, body)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Errorf("%s: Retry-After %q; want whole seconds, 1 or 2 at 1 request/s", what, resp.Header.Get("Retry-After"))
	}
}

// Each token has its own budget; requests without a valid token count
// against the client's address; over it the answer is 429 with
// Retry-After and the error body; the health check is not limited.
func TestRateLimitPerToken(t *testing.T) {
	url, admin := authNode(t, func(c *agent.Config) {
		c.API.RateLimit, c.API.RateBurst = 1, 2
		c.API.AnonymousRateLimit, c.API.AnonymousRateBurst = 1, 2
	})
	ctx := context.Background()
	cl, _ := client.New([]string{url}, client.WithToken(admin))
	other, err := cl.CreateToken(ctx, "other", []string{"admin"}, 0, nil)
	if err != nil {
		// The admin's own budget may be spent by now: the client waits
		// out the 429 within its retry budget.
		t.Fatal(err)
	}

	resp, b := untilLimited(t, http.MethodGet, url+"/api/namespaces", admin)
	checkLimited(t, "admin token", resp, b)
	if resp, _ := call(t, http.MethodGet, url+"/api/namespaces", other.Secret); resp.StatusCode != http.StatusOK {
		t.Errorf("another token right after the first was limited: %d; want 200", resp.StatusCode)
	}

	// Unknown tokens: 401 until the address's budget is spent, then 429.
	bad := "gofer_" + strings.Repeat("A", 43)
	resp, b = untilLimited(t, http.MethodGet, url+"/api/namespaces", bad)
	checkLimited(t, "unknown token", resp, b)

	for i := 0; i < 10; i++ {
		if resp, _ := call(t, http.MethodGet, url+"/api/system/health", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("health check %d: %d; want 200 (never limited)", i, resp.StatusCode)
		}
	}

	// The client waits out a 429 within its retry budget.
	if _, err := cl.ListNamespaces(ctx, client.Page{}); err != nil {
		t.Errorf("client call while limited: %v; want it to wait for Retry-After and succeed", err)
	}
	// ... and gives up at once when the wait does not fit in it.
	short, _ := client.New([]string{url}, client.WithToken(admin), client.WithRetryFor(100*time.Millisecond))
	untilLimited(t, http.MethodGet, url+"/api/namespaces", admin)
	_, err = short.ListNamespaces(ctx, client.Page{})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests || apiErr.RetryAfter < time.Second {
		t.Errorf("client with a 100ms retry budget while limited: %v; want the 429 with its Retry-After", err)
	}
}

// Headers over api.max_header_bytes get 431.
func TestHeaderTooLarge(t *testing.T) {
	url, _ := authNode(t, func(c *agent.Config) { c.API.MaxHeaderBytes = 8 << 10 })
	req, _ := http.NewRequest(http.MethodGet, url+"/api/system/health", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers at max_header_bytes 8 KiB: %d; want 431", resp.StatusCode)
	}
	if resp, _ := call(t, http.MethodGet, url+"/api/system/health", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("a normal request after: %d", resp.StatusCode)
	}
}

// A client that sends its headers slowly is cut off after
// api.read_header_timeout, however it keeps trickling bytes.
func TestSlowHeadersCut(t *testing.T) {
	url, _ := authNode(t, func(c *agent.Config) { c.API.ReadHeaderTimeout = agent.Duration(300 * time.Millisecond) })
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /api/system/health HTTP/1.1\r\nHost: gofer\r\n"); err != nil {
		t.Fatal(err)
	}
	// Trickle a header line every 50ms for up to 5 s, half the default
	// timeout: the server must close the connection at the configured one.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(conn)
		for {
			if _, err := r.ReadByte(); err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-closed:
			var ne net.Error
			if _, err := conn.Read(make([]byte, 1)); errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the connection was never closed")
			}
			return
		case <-tick.C:
			if _, err := io.WriteString(conn, "X-Slow-"+strconv.Itoa(i)+": y\r\n"); err != nil {
				return // closed by the server
			}
		}
	}
}
