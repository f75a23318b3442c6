package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// auditSent is one request the audit test made and the entry it expects.
type auditSent struct {
	method, route, path string
	status              int
	tokenID, requestID  string
}

// TestAuditEveryMutatingRoute: every mutating route of the authorization
// table (every route but GET and HEAD), called by the admin and with no
// token, leaves an audit event with the caller's token id, the route's
// template, the namespace and other path parameters, the status, the
// outcome and the request id; and no audit event holds a token secret, a
// secret's value or the cluster's keys.
func TestAuditEveryMutatingRoute(t *testing.T) {
	f := authzSetup(t)
	ctx := context.Background()

	// Values that must never be recorded.
	canary := "audit-canary-secret-" + f.uniq("v")
	tok, err := f.admin.CreateToken(ctx, "audit-canary", []string{"admin"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := authzSend("POST", f.url+"/api/namespaces/default/pipelines/"+authzPipe+"/secrets", "Bearer "+f.secrets["admin"],
		fmt.Sprintf(`{"key":"audit-canary","content":%q}`, canary)); err != nil || resp.status != 201 {
		t.Fatalf("store the canary secret: %v %+v", err, resp)
	}
	never := []string{canary, tok.Secret, testSecret, testEncryptionKey}
	for _, s := range f.secrets {
		never = append(never, s)
	}

	var sent []auditSent
	for _, c := range authzCases() {
		if c.method == http.MethodGet || c.method == http.MethodHead {
			continue
		}
		for _, caller := range []struct{ auth, tokenID string }{{"Bearer " + f.secrets["admin"], f.ids["admin"]}, {"", ""}} {
			path, body := c.req(t, f)
			resp, err := authzSend(c.method, f.url+path, caller.auth, body)
			if err != nil {
				t.Fatalf("%s %s: %v", c.method, path, err)
			}
			id := resp.header.Get("X-Request-Id")
			if id == "" {
				t.Fatalf("%s %s: no X-Request-Id", c.method, path)
			}
			sent = append(sent, auditSent{method: c.method, route: c.path, path: path, status: resp.status, tokenID: caller.tokenID, requestID: id})
		}
	}

	// Audit entries are recorded in batches, a moment after the answers.
	byID := map[string]*model.Event{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, err := f.admin.ListEventsOfKind(ctx, client.Page{Limit: 1000}, model.EventAudit)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Kind != model.EventAudit {
				t.Fatalf("?kind=audit listed a %s event", e.Kind)
			}
			byID[e.Details.String("request_id")] = e
		}
		missing := 0
		for _, s := range sent {
			if byID[s.requestID] == nil {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d audited requests have no audit event after 30 s", missing, len(sent))
		}
		time.Sleep(200 * time.Millisecond)
	}

	nsOf := regexp.MustCompile(`^/api/namespaces/([^/?]+)`)
	for _, s := range sent {
		e := byID[s.requestID]
		d := e.Details
		what := s.method + " " + s.path
		if d.String("route") != s.route || d.String("method") != s.method {
			t.Errorf("%s: audit route %q %q; want %q %q", what, d.String("method"), d.String("route"), s.method, s.route)
		}
		if n, _ := d.Int("status"); int(n) != s.status {
			t.Errorf("%s: audit status %d; want %d", what, n, s.status)
		}
		wantOutcome := "ok"
		switch {
		case s.status >= 500:
			wantOutcome = "failed"
		case s.status >= 400:
			wantOutcome = "refused"
		}
		if d.String("outcome") != wantOutcome {
			t.Errorf("%s: outcome %q; want %q (status %d)", what, d.String("outcome"), wantOutcome, s.status)
		}
		if d.String("token_id") != s.tokenID {
			t.Errorf("%s: token_id %q; want %q", what, d.String("token_id"), s.tokenID)
		}
		wantNS := ""
		if strings.Contains(s.route, ":ns") {
			if m := nsOf.FindStringSubmatch(s.path); m != nil {
				wantNS = m[1]
			}
		}
		if d.String("namespace") != wantNS {
			t.Errorf("%s: namespace %q; want %q", what, d.String("namespace"), wantNS)
		}
		if strings.Contains(s.route, "/:") && strings.Count(s.route, "/:") > strings.Count(s.route, "/:ns") && d.String("resource") == "" {
			t.Errorf("%s: no resource for a route with parameters", what)
		}
		if !e.ClusterWide() {
			t.Errorf("%s: audit event in namespace %q; want cluster-wide (admins only)", what, e.NamespaceID)
		}
	}

	all, err := f.admin.ListEventsOfKind(ctx, client.Page{Limit: 1000}, model.EventAudit)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(all)
	for _, v := range never {
		if v != "" && strings.Contains(string(raw), v) {
			t.Errorf("an audit event holds a secret value (%d characters, starting %q)", len(v), v[:min(8, len(v))])
		}
	}
	if strings.Contains(string(raw), "gofer_") {
		t.Error("an audit event holds something shaped like a token secret (gofer_…)")
	}
}

// TestLimitAndAuditThroughAFollower: writes a follower forwards are
// counted once, on the leader, as their token (not as the follower: two
// tokens each get their own burst through the same follower), the leader's
// 429 reaches the client with Retry-After, and each forwarded write is
// audited once, by the leader, as its token.
func TestLimitAndAuditThroughAFollower(t *testing.T) {
	c := NewCluster(t, 3, "GOFER_WEB_API__RATE_LIMIT=1", "GOFER_WEB_API__RATE_BURST=4")
	ctx := context.Background()
	// The admin's own budget is small: its client waits out 429s.
	admin := c.Client()
	var secrets, ids []string
	for _, user := range []string{"alice", "bob"} {
		tok, err := admin.CreateToken(ctx, user, []string{"admin"}, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		secrets, ids = append(secrets, tok.Secret), append(ids, tok.Token.ID)
	}
	follower := c.Followers()[0]
	var sent []auditSent
	write := func(i int, name string) authzResp {
		resp, err := authzSend("POST", follower.URL+"/api/namespaces", "Bearer "+secrets[i], fmt.Sprintf(`{"id":%q,"name":"n"}`, name))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, auditSent{method: "POST", route: "/api/namespaces", status: resp.status, tokenID: ids[i], requestID: resp.header.Get("X-Request-Id")})
		return resp
	}
	// Each token's burst (4) through the same follower; a few may be
	// paced by the refill, none refused while within the burst.
	for i := range 2 {
		for j := range 4 {
			if resp := write(i, fmt.Sprintf("ns-%d-%d", i, j)); resp.status != 201 {
				t.Fatalf("token %d write %d through the follower: %d %s; want 201 (each token has its own burst)", i, j, resp.status, authzClip(resp.body))
			}
		}
	}
	var limited authzResp
	for j := 0; j < 50 && limited.status != 429; j++ {
		limited = write(0, fmt.Sprintf("ns-more-%d", j))
	}
	if limited.status != 429 || limited.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit through the follower: %d, Retry-After %q; want 429 with Retry-After", limited.status, limited.header.Get("Retry-After"))
	}
	if err := errsCheckErrorBody(limited.status, limited.header, limited.body); err != nil || !strings.Contains(string(limited.body), `"rate_limited"`) {
		t.Errorf("429 body %s: %v; want the error body with code rate_limited", limited.body, err)
	}

	count := map[string]int{}
	byID := map[string]*model.Event{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, err := admin.ListEventsOfKind(ctx, client.Page{Limit: 1000}, model.EventAudit)
		if err != nil {
			t.Fatal(err)
		}
		clear(count)
		for _, e := range evs {
			count[e.Details.String("request_id")]++
			byID[e.Details.String("request_id")] = e
		}
		done := true
		for _, s := range sent {
			if s.status != 429 && count[s.requestID] == 0 {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("forwarded writes were not audited within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, s := range sent {
		if s.status == 429 && count[s.requestID] == 0 {
			continue // 429s are sampled
		}
		e := byID[s.requestID]
		if count[s.requestID] != 1 || e.Details.String("token_id") != s.tokenID {
			t.Errorf("request %s (%d): %d audit events, token_id %q; want 1, %q", s.requestID, s.status, count[s.requestID], e.Details.String("token_id"), s.tokenID)
		}
	}
}
