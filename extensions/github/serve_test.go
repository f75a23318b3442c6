package github

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goferhq/gofer/sdk/go/extension"
)

// TestGithubThroughTheSDK runs the extension behind the SDK's server
// against an httptest fake of Gofer's API: it restores its subscription
// at boot, and Gofer's POST /api/external-event (the body as upstream
// sends it, an array of byte values) starts one run for a signed
// delivery, none for a redelivery, and is refused with 401 for an
// unsigned or tampered one.
func TestGithubThroughTheSDK(t *testing.T) {
	var (
		mu   sync.Mutex
		keys []string
	)
	gofer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer ext-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/extensions/github/subscriptions":
			io.WriteString(w, `{"subscriptions":[{"namespace_id":"default","pipeline_id":"build","extension_id":"github",
				"subscription_id":"pushes","settings":{"repository":"acme/widget","events":"push"},"status":"active"}]}`)
		case r.Method == http.MethodPost && r.URL.Path == "/api/namespaces/default/pipelines/build/runs":
			mu.Lock()
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"run":{"namespace_id":"default","pipeline_id":"build","run_id":1,"variables":[]}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer gofer.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	ext := New(Options{Setting: func(k string) string {
		if k == SettingWebhookSecret {
			return secret
		}
		return ""
	}})
	go func() {
		served <- extension.Serve(ctx, extension.SystemConfig{ID: "github", Secret: "ext-secret", GoferHosts: []string{gofer.URL}, BindAddress: addr}, ext)
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	giveUp := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/api/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(giveUp) {
			t.Fatalf("the extension never served: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	send := func(body, sig, id string) int {
		t.Helper()
		bytes := make([]string, len(body))
		for i := range len(body) {
			bytes[i] = fmt.Sprint(body[i])
		}
		headers := map[string]string{HeaderDelivery: id, HeaderEvent: "push"}
		if sig != "" {
			headers[HeaderSignature] = sig
		}
		h, _ := json.Marshal(headers)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/external-event",
			strings.NewReader(`{"headers":`+string(h)+`,"body":[`+strings.Join(bytes, ",")+`]}`))
		req.Header.Set("Authorization", "Bearer ext-secret")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	signed := sign([]byte(pushBody), secret)
	for _, c := range []struct {
		name, body, sig, id string
		want                int
	}{
		{"unsigned", pushBody, "", "d-1", 401},
		{"tampered", strings.Replace(pushBody, "abc123", "abc124", 1), signed, "d-1", 401},
		{"signed", pushBody, signed, "d-1", 204},
		{"redelivered", pushBody, signed, "d-1", 204},
	} {
		if got := send(c.body, c.sig, c.id); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 1 || keys[0] != "github:d-1" {
		t.Fatalf("run starts with keys %v, want one github:d-1", keys)
	}
}
