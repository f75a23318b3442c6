package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// TestFollowerRefusalsAuditedAndLimited: the refusals a follower answers
// itself — a token no node could know (401 before forwarding) and its own
// per-address 429s — are audited (the follower passes them to the leader),
// and a disabled token the follower forwards (it knows the token, so the
// leader decides) counts against the client's address on the leader, keyed
// by the address the follower reports: past the anonymous burst the
// leader answers 429 instead of 401 forever.
func TestFollowerRefusalsAuditedAndLimited(t *testing.T) {
	c := NewCluster(t, 3, "GOFER_WEB_API__ANONYMOUS_RATE_LIMIT=1", "GOFER_WEB_API__ANONYMOUS_RATE_BURST=3")
	ctx := context.Background()
	admin := c.Client()
	follower := c.Followers()[0]

	// A follower's own answers: 401s for a malformed token, then its own
	// 429s once the address's burst (3) is spent.
	want := map[string]int{} // request id → status
	saw429 := false
	for i := 0; i < 20 && !saw429; i++ {
		resp, err := authzSend("POST", follower.URL+"/api/namespaces", "Bearer not-a-token", `{"id":"nope","name":"n"}`)
		if err != nil {
			t.Fatal(err)
		}
		if resp.status != 401 && resp.status != 429 {
			t.Fatalf("malformed token on a follower: %d %s; want 401 or 429", resp.status, authzClip(resp.body))
		}
		want[resp.header.Get("X-Request-Id")] = resp.status
		saw429 = saw429 || resp.status == 429
	}
	if !saw429 {
		t.Fatal("the follower never limited a flood of malformed tokens (anonymous burst 3)")
	}

	// A disabled token through the follower: forwarded, refused by the
	// leader, and limited there by the client's address.
	tok, err := admin.CreateToken(ctx, "disabled-through-follower", []string{"admin"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SetTokenDisabled(ctx, tok.Token.ID, true); err != nil {
		t.Fatal(err)
	}
	var last authzResp
	for i := 0; i < 20 && last.status != 429; i++ {
		if last, err = authzSend("POST", follower.URL+"/api/namespaces", "Bearer "+tok.Secret, `{"id":"nope","name":"n"}`); err != nil {
			t.Fatal(err)
		}
		if last.status != 401 && last.status != 429 {
			t.Fatalf("disabled token through a follower: %d %s; want 401 or 429", last.status, authzClip(last.body))
		}
	}
	if last.status != 429 || last.header.Get("Retry-After") == "" {
		t.Fatalf("20 disabled-token writes through a follower: last answer %d (Retry-After %q); want 429 from the leader's per-address limit (burst 3)",
			last.status, last.header.Get("Retry-After"))
	}
	if by := last.header.Get("X-Gofer-Node"); by == follower.Name {
		t.Errorf("the 429 came from the follower (%s); want the leader's", by)
	}

	// Every answer the follower gave itself is in the audit log.
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, err := admin.ListEventsOfKind(ctx, client.Page{Limit: 1000}, model.EventAudit)
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]*model.Event{}
		for _, e := range evs {
			found[e.Details.String("request_id")] = e
		}
		missing := 0
		for id, status := range want {
			e := found[id]
			if e == nil {
				missing++
				continue
			}
			if n, _ := e.Details.Int("status"); int(n) != status || e.Details.String("outcome") != "refused" || e.Details.String("route") != "/api/namespaces" {
				t.Fatalf("audit of the follower's %d: %+v; want status %d, outcome refused, route /api/namespaces", status, e.Details, status)
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d answers the follower gave itself have no audit event after 30 s", missing, len(want))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
