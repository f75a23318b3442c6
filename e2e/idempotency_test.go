package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/goferhq/gofer/client"
)

// TestIdempotencyKeyMismatchThroughFollower: a write sent to a follower
// is forwarded to the leader, which binds the Idempotency-Key to the
// request. The same key and request replays the first outcome; the same
// key with another body answers 422 naming the header, and nothing of it
// is written.
func TestIdempotencyKeyMismatchThroughFollower(t *testing.T) {
	c := NewCluster(t, 3)
	follower := c.Followers()[0]
	var header http.Header
	post := func(body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, follower.URL+"/api/namespaces", strings.NewReader(body))
		req.Header.Set("gofer-api-version", "v0")
		req.Header.Set("Authorization", "Bearer "+c.Token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "e2e-key-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		header = resp.Header
		return resp.StatusCode, string(b)
	}
	if status, body := post(`{"id":"idem-one"}`); status != 201 {
		t.Fatalf("first request: %d %s", status, body)
	}
	if status, body := post(`{"id":"idem-one"}`); status != 201 || !strings.Contains(body, "idem-one") {
		t.Errorf("the same request again: %d %s; want the first outcome (201)", status, body)
	}
	status, body := post(`{"id":"idem-two"}`)
	if status != 422 || !strings.Contains(body, "Idempotency-Key") {
		t.Errorf("the key with another body: %d %s; want 422 naming Idempotency-Key", status, body)
	}
	if err := errsCheckErrorBody(status, header, []byte(body)); err != nil && status == 422 {
		t.Error(err)
	}
	admin := c.Leader().Client(c.Token)
	if _, err := admin.GetNamespace(context.Background(), "idem-two"); !client.IsStatus(err, 404) {
		t.Errorf("namespace of the refused request: %v; want 404", err)
	}
}
