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
		evs, err := f.admin.ListEventsOfKind(ctx, client.Page{Limit: 5000}, model.EventAudit)
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

	all, err := f.admin.ListEventsOfKind(ctx, client.Page{Limit: 5000}, model.EventAudit)
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
