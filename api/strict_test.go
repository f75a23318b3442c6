package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
)

// send makes one request with the version header and, when key is not
// empty, an Idempotency-Key; it returns the status and the body.
func send(t *testing.T, method, url, body, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("gofer-api-version", "v0")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestIdempotencyKeyBoundToRequest: the same Idempotency-Key with a
// different request answers 422 naming the header and writes nothing; the
// same request (JSON whitespace and key order aside) replays the first
// outcome. Run starts, which keep their own key per pipeline, too.
func TestIdempotencyKeyBoundToRequest(t *testing.T) {
	cl, url := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"id":"once","name":"Once"}`, 201},
		{`{ "name" : "Once",  "id":"once" }`, 201},
		{`{"id":"twice","name":"Once"}`, 422},
	} {
		status, body := send(t, "POST", url+"/api/namespaces", tc.body, "k-ns")
		if status != tc.status {
			t.Errorf("POST %s: %d %s; want %d", tc.body, status, body, tc.status)
		}
		if status == 422 && !strings.Contains(body, "Idempotency-Key") {
			t.Errorf("422 does not name the header: %s", body)
		}
	}
	if _, err := cl.GetNamespace(ctx, "twice"); !client.IsStatus(err, 404) {
		t.Errorf("namespace of the refused request: %v; want 404", err)
	}
	// The same key on another route is another request.
	if status, body := send(t, "PATCH", url+"/api/namespaces/once", `{"name":"x"}`, "k-ns"); status != 422 {
		t.Errorf("the key on another route: %d %s; want 422", status, body)
	}

	cfg := sdk.NewPipeline("idem", "idem").Tasks(sdk.NewTask("tsk", "img")).Config()
	if _, err := cl.RegisterConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeployConfig(ctx, "idem", 1); err != nil {
		t.Fatal(err)
	}
	runs := url + "/api/namespaces/default/pipelines/idem/runs"
	if status, body := send(t, "POST", runs, `{"variables":{"A":"1"}}`, "k-run"); status != 201 {
		t.Fatalf("start run: %d %s", status, body)
	}
	if status, body := send(t, "POST", runs, `{"variables":{"A":"1"}}`, "k-run"); status/100 != 2 || !strings.Contains(body, `"run_id":1`) {
		t.Errorf("same start again: %d %s; want run 1 again", status, body)
	}
	for _, req := range []struct{ method, url, body string }{
		{"POST", runs, `{"variables":{"A":"2"}}`},
		{"POST", runs + "/1/retry", ``},
	} {
		if status, body := send(t, req.method, req.url, req.body, "k-run"); status != 422 || !strings.Contains(body, "Idempotency-Key") {
			t.Errorf("%s %s %s with a used key: %d %s; want 422 naming Idempotency-Key", req.method, req.url, req.body, status, body)
		}
	}
	if list, err := cl.ListRuns(ctx, "idem", client.Page{}); err != nil || len(list) != 1 {
		t.Errorf("runs after refused requests: %d %v; want 1", len(list), err)
	}
}
