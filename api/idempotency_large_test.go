package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/goferhq/gofer/agent"
	"github.com/goferhq/gofer/client"
)

// A body too large to buffer for hashing (over 1 MiB: a raised
// api.max_request_body) is bound to its Idempotency-Key as well: the same
// key with a different body is a 422 and changes nothing; the same body
// again replays the first outcome.
func TestIdempotencyKeyBoundToLargeBody(t *testing.T) {
	cl, url := devNode(t, func(c *agent.Config) { c.API.MaxRequestBody = 4 << 20 })
	pad := strings.Repeat(" ", 3<<19) // 1.5 MiB of JSON whitespace
	first := `{"id":"big-one","name":"Big"` + pad + `}`
	other := `{"id":"big-two","name":"Big"` + pad + `}`
	if status, body := send(t, "POST", url+"/api/namespaces", first, "k-big"); status != 201 {
		t.Fatalf("first create: %d %s", status, body)
	}
	if status, body := send(t, "POST", url+"/api/namespaces", other, "k-big"); status != 422 || !strings.Contains(body, "Idempotency-Key") {
		t.Errorf("the key with another large body: %d %.200s; want 422 naming Idempotency-Key", status, body)
	}
	if status, body := send(t, "POST", url+"/api/namespaces", first, "k-big"); status != 201 || !strings.Contains(body, "big-one") {
		t.Errorf("the same create again: %d %.200s; want the first outcome", status, body)
	}
	if _, err := cl.GetNamespace(context.Background(), "big-two"); !client.IsStatus(err, 404) {
		t.Errorf("namespace of the refused request: %v; want 404", err)
	}
}
