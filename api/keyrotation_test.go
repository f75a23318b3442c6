package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/client"
)

// TestRotateEncryptionKeyInputs: the rotation routes refuse bad bodies
// with a clear error and no write, and report the node's keys.
func TestRotateEncryptionKeyInputs(t *testing.T) {
	const key, previous = "4d7a1c9e3b5f8a2d6c0e4b8f1a3d5c7e", "8e2c4a6f0b1d3e5a7c9f2b4d6e8a0c1f"
	cl, url := devNode(t, func(c *agent.Config) {
		c.Scheduler.Engine = "noop"
		c.Secrets.EncryptionKey, c.Secrets.PreviousEncryptionKeys = key, []string{previous}
	})
	ctx := context.Background()
	send := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("gofer-api-version", "v0")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const rotate = "/api/system/encryption-key/rotate"
	for _, tc := range []struct {
		body   string
		status int
		names  string
	}{
		{`{"abort":"yes"}`, 400, "abort"},
		{`{"colour":"red"}`, 400, "colour"},
		{`{"abort":false,"pad":"` + strings.Repeat("x", 2<<10) + `"}`, 413, ""},
		{`{"abort":true}`, 409, "no encryption key rotation is running"},
	} {
		status, body := send(http.MethodPost, rotate, tc.body)
		if status != tc.status || !strings.Contains(body, tc.names) {
			t.Errorf("POST %s %.40s: %d %.200s; want %d naming %q", rotate, tc.body, status, body, tc.status, tc.names)
		}
	}
	st, err := cl.EncryptionKeyRotation(ctx)
	if err != nil || st.Rotation != nil || len(st.NodeKeyChecks) != 2 {
		t.Fatalf("status after refused requests: %+v %v; want no rotation and two keys", st, err)
	}
	// The first secret is sealed under the configured key: nothing to rotate.
	if _, err := cl.PutSecret(ctx, client.SecretScope{}, "ggg", "value-1234", []string{".*"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RotateEncryptionKey(ctx, false); !client.IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "nothing to rotate") {
		t.Fatalf("rotate with everything under the configured key: %v, want 409", err)
	}
	st, err = cl.EncryptionKeyRotation(ctx)
	if err != nil || st.KeyCheck != st.NodeKeyChecks[0] || st.Total.Secrets != 1 || st.Remaining.Sum() != 0 {
		t.Fatalf("status: %+v %v", st, err)
	}
}
