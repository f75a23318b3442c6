package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

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
	// Bounded: a stream that should have been refused must not hang.
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
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

// TestTokenExpiryBounded: expires is a lifetime in seconds from 0 (never)
// to 10 years; values past it, negative ones and ones that would overflow
// a duration are refused with 400 naming the field, and no token is made.
// A token update takes no expiry.
func TestTokenExpiryBounded(t *testing.T) {
	cl, url := devNode(t)
	ctx := context.Background()
	before, err := cl.ListTokens(ctx, client.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"4611686018427387904", "9223372037", "18446744073", "9223372036854775807",
		"18446744073709551616", "-1", "315360001", "1.5", `"3600"`, "true"} {
		status, body := send(t, "POST", url+"/api/tokens", `{"user":"exp","roles":["user"],"expires":`+v+`}`, "")
		if status != 400 || !strings.Contains(body, "expires") {
			t.Errorf("expires=%s: %d %s; want 400 naming expires", v, status, body)
		}
	}
	after, err := cl.ListTokens(ctx, client.Page{Limit: 1000})
	if err != nil || len(after) != len(before) {
		t.Errorf("tokens after refused requests: %d (%v), before %d", len(after), err, len(before))
	}
	for _, v := range []string{"0", "3600", "315360000"} {
		if status, body := send(t, "POST", url+"/api/tokens", `{"user":"exp","roles":["user"],"expires":`+v+`}`, ""); status != 201 {
			t.Errorf("expires=%s: %d %s; want 201", v, status, body)
		}
	}
	tok, err := cl.CreateToken(ctx, "exp2", []string{"user"}, 60, nil)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := send(t, "PATCH", url+"/api/tokens/"+tok.Token.ID, `{"disabled":false,"expires":99999999999}`, ""); status != 400 || !strings.Contains(body, "expires") {
		t.Errorf("PATCH with expires: %d %s; want 400 naming expires", status, body)
	}
}

// TestBodiesValidated: a route that takes no body refuses one that is not
// empty, {} or null; wrong types name the field; nothing is written.
func TestBodiesValidated(t *testing.T) {
	cl, url := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	if _, err := cl.RegisterConfig(ctx, sdk.NewPipeline("bodies", "bodies").Tasks(sdk.NewTask("tsk", "img")).Config()); err != nil {
		t.Fatal(err)
	}
	const p = "/api/namespaces/default/pipelines/bodies"
	if status, body := send(t, "POST", url+p+"/configs/1", `{"x":1}`, ""); status != 400 || !strings.Contains(body, `unknown field \"x\"`) {
		t.Errorf("deploy with a body: %d %s; want 400 naming x", status, body)
	}
	if status, body := send(t, "POST", url+p+"/configs/1", `{}`, ""); status != 201 {
		t.Fatalf("deploy with {}: %d %s", status, body)
	}
	if status, body := send(t, "POST", url+p+"/runs", "", ""); status != 201 {
		t.Fatalf("start a run with no body: %d %s", status, body)
	}
	for _, b := range []string{`{`, `nope`, `[]`, `"x"`, `{"variables":{}}`, `{"variables":"x"}`, `{} {}`, `{"a":1}`, `1`} {
		if status, body := send(t, "POST", url+p+"/runs/1/retry", b, ""); status != 400 {
			t.Errorf("retry with body %s: %d %s; want 400", b, status, body)
		}
	}
	for _, b := range []string{`{"variables":"x"}`, `{"variables":{"A":1}}`, `{"varables":{}}`, `[]`} {
		status, body := send(t, "POST", url+p+"/runs", b, "")
		if status != 400 || !strings.Contains(body, "variables") && !strings.Contains(body, "varables") && b != `[]` {
			t.Errorf("start with body %s: %d %s; want 400 naming the field", b, status, body)
		}
	}
	if list, err := cl.ListRuns(ctx, "bodies", client.Page{}); err != nil || len(list) != 1 {
		t.Errorf("runs after refused requests: %d %v; want 1", len(list), err)
	}
	for _, b := range []string{``, `{}`, `null`, " \n"} {
		if status, body := send(t, "POST", url+p+"/runs/1/retry", b, ""); status != 201 {
			t.Errorf("retry with body %q: %d %s; want 201", b, status, body)
		}
	}
	if status, body := send(t, "POST", url+"/api/namespaces", `{"id":5}`, ""); status != 400 || !strings.Contains(body, "field id must be a string") {
		t.Errorf("namespace id of the wrong type: %d %s; want 400 naming id", status, body)
	}
}

// TestEmptyPatchWritesNothing: PATCH with {} or null answers 200 with the
// object as it is, and changes nothing (modified stays, no event).
func TestEmptyPatchWritesNothing(t *testing.T) {
	cl, url := devNode(t)
	ctx := context.Background()
	if _, err := cl.CreateNamespace(ctx, "patchme", "Patch me", ""); err != nil {
		t.Fatal(err)
	}
	if status, body := send(t, "POST", url+"/api/roles", `{"id":"patchrole","permissions":[{"resources":["events"],"actions":["read"]}]}`, ""); status != 201 {
		t.Fatalf("create role: %d %s", status, body)
	}
	ns0, _ := cl.GetNamespace(ctx, "patchme")
	events0, _ := cl.ListEvents(ctx, client.Page{Limit: 1000})
	time.Sleep(5 * time.Millisecond) // a write would stamp a later modified
	for _, b := range []string{`{}`, `null`} {
		for _, path := range []string{"/api/namespaces/patchme", "/api/roles/patchrole"} {
			status, body := send(t, "PATCH", url+path, b, "")
			if status != 200 || !strings.Contains(body, "patch") {
				t.Errorf("PATCH %s %s: %d %s; want 200 with the object", path, b, status, body)
			}
		}
	}
	ns1, _ := cl.GetNamespace(ctx, "patchme")
	if ns0 == nil || ns1 == nil || ns1.Modified != ns0.Modified {
		t.Errorf("modified changed: %+v -> %+v", ns0, ns1)
	}
	if events1, _ := cl.ListEvents(ctx, client.Page{Limit: 1000}); len(events1) != len(events0) {
		t.Errorf("empty PATCHes emitted %d events", len(events1)-len(events0))
	}
	if status, _ := send(t, "PATCH", url+"/api/namespaces/nosuch", `{}`, ""); status != 404 {
		t.Errorf("empty PATCH of a missing namespace: %d, want 404", status)
	}
}

// TestTaskListPages: a run's tasks honour limit, offset and reverse; with
// none, every task comes back.
func TestTaskListPages(t *testing.T) {
	cl, url := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	cfg := sdk.NewPipeline("paged", "paged").Tasks(sdk.NewTask("aaa", "img"), sdk.NewTask("bbb", "img"), sdk.NewTask("ccc", "img")).Config()
	if _, err := cl.RegisterConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeployConfig(ctx, "paged", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartRun(ctx, "paged", nil); err != nil {
		t.Fatal(err)
	}
	tasks := url + "/api/namespaces/default/pipelines/paged/runs/1/tasks"
	for q, want := range map[string]string{
		"":                            "aaa,bbb,ccc",
		"?limit=2":                    "aaa,bbb",
		"?limit=1&offset=1":           "bbb",
		"?reverse=true":               "ccc,bbb,aaa",
		"?reverse=1&offset=1&limit=1": "bbb",
		"?offset=3":                   "",
	} {
		status, body := send(t, "GET", tasks+q, "", "")
		var got []string
		for _, id := range []string{"aaa", "bbb", "ccc"} {
			if i := strings.Index(body, `"task_id":"`+id+`"`); i >= 0 {
				got = append(got, fmt.Sprintf("%06d%s", i, id))
			}
		}
		sort.Strings(got)
		for i := range got {
			got[i] = got[i][6:]
		}
		if status != 200 || strings.Join(got, ",") != want {
			t.Errorf("tasks%s: %d %v; want %s", q, status, got, want)
		}
	}
	if status, _ := send(t, "GET", tasks+"?limit=x", "", ""); status != 400 {
		t.Errorf("tasks?limit=x: %d, want 400", status)
	}
}

// TestBooleanParamsStrict: every boolean query parameter takes
// true/false/1/0 (strconv.ParseBool) and nothing else.
func TestBooleanParamsStrict(t *testing.T) {
	cl, url := devNode(t, func(c *agent.Config) { c.Scheduler.Engine = "noop" })
	ctx := context.Background()
	cfg := sdk.NewPipeline("bools", "bools").Tasks(sdk.NewTask("tsk", "img")).Config()
	if _, err := cl.RegisterConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeployConfig(ctx, "bools", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartRun(ctx, "bools", nil); err != nil {
		t.Fatal(err)
	}
	const p = "/api/namespaces/default/pipelines/bools"
	for _, tc := range []struct{ path, param string }{
		{"/api/namespaces?consistent=", "consistent"},
		{"/api/namespaces?reverse=", "reverse"},
		{"/api/events/stream?history=", "history"},
		{p + "/runs/1/tasks/tsk/logs?follow=", "follow"},
		{p + "/secrets/kkk?include_secret=", "include_secret"},
	} {
		for _, v := range []string{"maybe", "yes", "2"} {
			status, body := send(t, "GET", url+tc.path+v, "", "")
			if status != 400 || !strings.Contains(body, tc.param) {
				t.Errorf("GET %s%s: %d %.200s; want 400 naming %s", tc.path, v, status, body, tc.param)
			}
		}
	}
	for _, v := range []string{"true", "false", "1", "0"} {
		if status, body := send(t, "GET", url+"/api/namespaces?consistent="+v, "", ""); status != 200 {
			t.Errorf("consistent=%s: %d %s", v, status, body)
		}
	}
}

// TestHeadHealth: HEAD on the health route answers like GET, without a
// body, for load balancers.
func TestHeadHealth(t *testing.T) {
	_, url := devNode(t)
	do := func(method string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, url+"/api/system/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	getResp, getBody := do(http.MethodGet)
	headResp, headBody := do(http.MethodHead)
	if headResp.StatusCode == http.StatusMethodNotAllowed || headResp.StatusCode != getResp.StatusCode || len(headBody) != 0 ||
		headResp.Header.Get("Content-Type") != getResp.Header.Get("Content-Type") {
		t.Errorf("HEAD /api/system/health: %d %q with %d body bytes; GET: %d %q %s; want the same status and headers, no body",
			headResp.StatusCode, headResp.Header.Get("Content-Type"), len(headBody), getResp.StatusCode, getResp.Header.Get("Content-Type"), getBody)
	}
}
