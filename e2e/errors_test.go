package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// The error statuses the API promises, each with its JSON body
// {request_id, code, message}, and the CLI's one-line errors.

// errsCodes is the error code each status carries.
var errsCodes = map[int]string{
	400: "bad_request",
	401: "unauthorized",
	403: "forbidden",
	404: "not_found",
	405: "method_not_allowed",
	409: "conflict",
	413: "payload_too_large",
	500: "internal",
	503: "unavailable",
}

// errsBody is the error body every error response carries.
type errsBody struct {
	RequestID string `json:"request_id"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// errsCheckErrorBody checks that an error answer is JSON with a request
// id (the one in X-Request-Id), the code for its status and a message.
func errsCheckErrorBody(status int, header http.Header, raw []byte) error {
	_, err := errsParseBody(status, header, raw)
	return err
}

func errsParseBody(status int, header http.Header, raw []byte) (errsBody, error) {
	var b errsBody
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return b, fmt.Errorf("%d error has Content-Type %q, want application/json; body %q", status, ct, authzClip(raw))
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return b, fmt.Errorf("%d error body is not JSON (%v): %q", status, err, authzClip(raw))
	}
	var missing []string
	if b.RequestID == "" {
		missing = append(missing, "request_id")
	}
	if b.Code == "" {
		missing = append(missing, "code")
	}
	if strings.TrimSpace(b.Message) == "" {
		missing = append(missing, "message")
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("%d error body lacks %s: %s", status, strings.Join(missing, ", "), authzClip(raw))
	}
	if want, ok := errsCodes[status]; ok && b.Code != want {
		return b, fmt.Errorf("%d error has code %q, want %q", status, b.Code, want)
	}
	if id := header.Get("X-Request-Id"); id != "" && id != b.RequestID {
		return b, fmt.Errorf("%d error body has request_id %q but X-Request-Id is %q", status, b.RequestID, id)
	}
	return b, nil
}

// errsRequest is one raw request; unlike rawRequest it can leave out the
// version header and stream a body without a Content-Length.
type errsRequest struct {
	method, url string
	token       string
	body        string
	noVersion   bool
	chunked     bool
}

func errsDo(r errsRequest) (authzResp, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var body io.Reader = strings.NewReader(r.body)
	if r.chunked {
		// Hiding the reader's length makes net/http send it chunked.
		body = io.MultiReader(strings.NewReader(r.body))
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return authzResp{}, err
	}
	if !r.noVersion {
		req.Header.Set("gofer-api-version", "v0")
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return authzResp{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return authzResp{status: resp.StatusCode, header: resp.Header, body: raw}, err
}

// errsExpect sends r and checks the status, the error body and that the
// message contains every one of mentions.
func errsExpect(t *testing.T, r errsRequest, status int, mentions ...string) errsBody {
	t.Helper()
	resp, err := errsDo(r)
	if err != nil {
		t.Errorf("%s %s: %v", r.method, r.url, err)
		return errsBody{}
	}
	if resp.status != status {
		t.Errorf("%s %s: got %d, want %d; body %s", r.method, r.url, resp.status, status, authzClip(resp.body))
		return errsBody{}
	}
	b, err := errsParseBody(resp.status, resp.header, resp.body)
	if err != nil {
		t.Errorf("%s %s: %v", r.method, r.url, err)
		return b
	}
	for _, m := range mentions {
		if !strings.Contains(b.Message, m) {
			t.Errorf("%s %s: %d message %q does not mention %q", r.method, r.url, status, b.Message, m)
		}
	}
	return b
}

// errsConfigBody is a registration body for a config with these tasks.
func errsConfigBody(t *testing.T, id string, tasks []*sdk.TaskConfig) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"config": &sdk.PipelineConfig{ID: id, Name: id, Tasks: tasks}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func errsDeps(parents ...string) map[string]sdk.RequiredParentStatus {
	m := map[string]sdk.RequiredParentStatus{}
	for _, p := range parents {
		m[p] = sdk.RequiredParentStatusSuccess
	}
	return m
}

// TestErrResponses checks 400, 401, 403, 404, 409 and 413 on one node.
func TestErrResponses(t *testing.T) {
	c := NewCluster(t, 1)
	url, admin := c.Nodes[0].URL, c.Token
	ctx := context.Background()
	cl := c.Nodes[0].Client(admin)
	userTok, err := cl.CreateToken(ctx, "errs-user", []string{model.RoleUser}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// errs-live: version 1 live, version 2 registered.
	for _, v := range []int64{1, 2} {
		cfg, err := cl.RegisterConfig(ctx, &sdk.PipelineConfig{ID: "errs-live", Name: "live", Tasks: []*sdk.TaskConfig{{ID: "only-task", Image: "alpine:3"}}})
		if err != nil || cfg.Version != v {
			t.Fatalf("register errs-live: %+v %v", cfg, err)
		}
	}
	if _, err := cl.DeployConfig(ctx, "errs-live", 1); err != nil {
		t.Fatal(err)
	}
	const pipes = "/api/namespaces/default/pipelines"

	t.Run("400 missing or wrong version header", func(t *testing.T) {
		for _, path := range []string{"/api/namespaces", "/api/system/metadata", "/api/tokens/whoami"} {
			errsExpect(t, errsRequest{method: "GET", url: url + path, token: admin, noVersion: true}, 400, "gofer-api-version")
		}
		errsExpect(t, errsRequest{method: "POST", url: url + "/api/namespaces", token: admin, noVersion: true, body: `{"id":"errs-noversion"}`}, 400, "gofer-api-version")
		req, _ := http.NewRequest("GET", url+"/api/namespaces", nil)
		req.Header.Set("gofer-api-version", "v9")
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("gofer-api-version v9: got %d, want 400", resp.StatusCode)
		} else if err := errsCheckErrorBody(resp.StatusCode, resp.Header, raw); err != nil {
			t.Error(err)
		}
	})

	t.Run("400 invalid id", func(t *testing.T) {
		for _, r := range []errsRequest{
			{method: "POST", url: url + "/api/namespaces", body: `{"id":"a b"}`},
			{method: "POST", url: url + "/api/roles", body: `{"id":"a b","permissions":[{"resources":["events"],"actions":["read"]}]}`},
			{method: "POST", url: url + pipes + "/a%20b/configs", body: errsConfigBody(t, "a b", []*sdk.TaskConfig{{ID: "step", Image: "alpine:3"}})},
			{method: "GET", url: url + "/api/namespaces/a%20b"},
			{method: "PATCH", url: url + "/api/namespaces/a%20b", body: `{"description":"x"}`},
			{method: "DELETE", url: url + "/api/namespaces/a%20b"},
			{method: "GET", url: url + "/api/namespaces/a%20b/pipelines"},
			{method: "GET", url: url + pipes + "/a%20b"},
			{method: "GET", url: url + pipes + "/a%20b/configs/1"},
			{method: "GET", url: url + "/api/roles/a%20b"},
			{method: "PATCH", url: url + "/api/roles/a%20b", body: `{"description":"x"}`},
			{method: "DELETE", url: url + "/api/roles/a%20b"},
			{method: "DELETE", url: url + "/api/cluster/members/a%20b"},
		} {
			r.token = admin
			t.Run(r.method+" "+strings.TrimPrefix(r.url, url), func(t *testing.T) {
				errsExpect(t, r, 400, `"a b"`)
			})
		}
		// A task id breaks the same rule.
		errsExpect(t, errsRequest{method: "POST", url: url + pipes + "/errs-badtask/configs", token: admin,
			body: errsConfigBody(t, "errs-badtask", []*sdk.TaskConfig{{ID: "a b", Image: "alpine:3"}})}, 400, `"a b"`)
	})

	t.Run("400 invalid DAG names the task", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			tasks    []*sdk.TaskConfig
			mentions []string
		}{
			{"cycle", []*sdk.TaskConfig{
				{ID: "fetch", Image: "alpine:3"},
				{ID: "build", Image: "alpine:3", DependsOn: errsDeps("fetch", "publish")},
				{ID: "publish", Image: "alpine:3", DependsOn: errsDeps("build")},
			}, []string{"cycle", "build", "publish"}},
			{"self dependency", []*sdk.TaskConfig{
				{ID: "loner", Image: "alpine:3", DependsOn: errsDeps("loner")},
			}, []string{"cycle", `"loner"`}},
			{"unknown dependency", []*sdk.TaskConfig{
				{ID: "fetch", Image: "alpine:3"},
				{ID: "build", Image: "alpine:3", DependsOn: errsDeps("fetch", "ghost-task")},
			}, []string{"unknown dependency", `"build"`, "ghost-task"}},
			{"duplicate task", []*sdk.TaskConfig{
				{ID: "twice", Image: "alpine:3"},
				{ID: "other", Image: "alpine:3"},
				{ID: "twice", Image: "busybox"},
			}, []string{"duplicate", `"twice"`}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				errsExpect(t, errsRequest{method: "POST", url: url + pipes + "/errs-dag/configs", token: admin,
					body: errsConfigBody(t, "errs-dag", tc.tasks)}, 400, tc.mentions...)
			})
		}
		// Nothing was created by the refused registrations.
		errsExpect(t, errsRequest{method: "GET", url: url + pipes + "/errs-dag", token: admin}, 404, "errs-dag")
	})

	t.Run("400 unknown JSON field", func(t *testing.T) {
		errsExpect(t, errsRequest{method: "POST", url: url + "/api/namespaces", token: admin, body: `{"id":"errs-typo","nmae":"Typo"}`}, 400, "nmae")
		errsExpect(t, errsRequest{method: "POST", url: url + pipes + "/errs-typo/configs", token: admin,
			body: `{"config":{"id":"errs-typo","name":"typo","tasks":[{"id":"only-task","imagee":"alpine:3"}]}}`}, 400, "imagee")
		errsExpect(t, errsRequest{method: "PATCH", url: url + "/api/tokens/" + userTok.Token.ID, token: admin, body: `{"disabeld":true}`}, 400, "disabeld")
		errsExpect(t, errsRequest{method: "GET", url: url + "/api/namespaces/errs-typo", token: admin}, 404)
	})

	t.Run("401", func(t *testing.T) {
		errsExpect(t, errsRequest{method: "GET", url: url + "/api/namespaces"}, 401, "Authorization")
		errsExpect(t, errsRequest{method: "GET", url: url + "/api/namespaces", token: "gofer_not-a-real-token"}, 401)
		errsExpect(t, errsRequest{method: "POST", url: url + "/api/namespaces", body: `{"id":"errs-anon"}`}, 401)
	})

	t.Run("403", func(t *testing.T) {
		errsExpect(t, errsRequest{method: "POST", url: url + "/api/namespaces", token: userTok.Secret, body: `{"id":"errs-denied"}`}, 403)
		errsExpect(t, errsRequest{method: "GET", url: url + "/api/tokens", token: userTok.Secret}, 403)
		errsExpect(t, errsRequest{method: "GET", url: url + "/api/namespaces/errs-elsewhere/pipelines", token: userTok.Secret}, 403)
	})

	t.Run("404", func(t *testing.T) {
		errsExpect(t, errsRequest{method: "GET", url: url + "/api/namespaces/errs-nowhere", token: admin}, 404, "errs-nowhere")
		errsExpect(t, errsRequest{method: "GET", url: url + "/api/namespaces/errs-nowhere/pipelines", token: admin}, 404, "errs-nowhere")
		errsExpect(t, errsRequest{method: "GET", url: url + pipes + "/errs-nothing", token: admin}, 404, "errs-nothing")
		errsExpect(t, errsRequest{method: "GET", url: url + pipes + "/errs-live/configs/99", token: admin}, 404, "99")
		errsExpect(t, errsRequest{method: "POST", url: url + pipes + "/errs-live/configs/99", token: admin}, 404, "99")
		errsExpect(t, errsRequest{method: "GET", url: url + pipes + "/errs-live/deployments/99", token: admin}, 404, "99")
		errsExpect(t, errsRequest{method: "GET", url: url + "/api/roles/errs-norole", token: admin}, 404, "errs-norole")
		errsExpect(t, errsRequest{method: "GET", url: url + "/api/no-such-route", token: admin}, 404)
	})

	t.Run("409", func(t *testing.T) {
		errsExpect(t, errsRequest{method: "POST", url: url + "/api/tokens/bootstrap"}, 409, "bootstrap")
		errsExpect(t, errsRequest{method: "POST", url: url + "/api/namespaces", token: admin, body: `{"id":"default"}`}, 409, "default")
		if _, err := cl.CreateNamespace(ctx, "errs-twice", "", ""); err != nil {
			t.Fatal(err)
		}
		errsExpect(t, errsRequest{method: "POST", url: url + "/api/namespaces", token: admin, body: `{"id":"errs-twice"}`}, 409, "errs-twice")
		errsExpect(t, errsRequest{method: "DELETE", url: url + pipes + "/errs-live/configs/1", token: admin}, 409, "live")
		// Not deleted: still there and still live.
		got, err := cl.GetConfig(ctx, "errs-live", 1)
		if err != nil || got.State != model.ConfigStateLive {
			t.Errorf("after the refused delete version 1 is %+v (%v), want live", got, err)
		}
		// The version that is not live can go.
		if err := cl.DeleteConfig(ctx, "errs-live", 2); err != nil {
			t.Errorf("delete the unreleased version 2: %v", err)
		}
	})

	t.Run("413 body over 512 KiB", func(t *testing.T) {
		big := `{"id":"errs-big","description":"` + strings.Repeat("x", 600<<10) + `"}`
		errsExpect(t, errsRequest{method: "POST", url: url + "/api/namespaces", token: admin, body: big}, 413)
		errsExpect(t, errsRequest{method: "POST", url: url + "/api/namespaces", token: admin, body: big, chunked: true}, 413)
		errsExpect(t, errsRequest{method: "POST", url: url + pipes + "/errs-big/configs", token: admin, body: big, chunked: true}, 413)
		// Just under the limit the body is read and judged on its content.
		under := `{"id":"errs-big","description":"` + strings.Repeat("x", 500<<10) + `"}`
		errsExpect(t, errsRequest{method: "POST", url: url + "/api/namespaces", token: admin, body: under}, 400, "description")
		errsExpect(t, errsRequest{method: "GET", url: url + "/api/namespaces/errs-big", token: admin}, 404)
	})
}

// TestErrNoLeader: a node that has lost its quorum answers writes with 503
// and Retry-After (after holding the request for a leader), and its health
// check answers 503; a healthy node's health check needs no header.
func TestErrNoLeader(t *testing.T) {
	c := NewCluster(t, 3)
	leader := c.Leader()

	t.Run("health needs no version header and no token", func(t *testing.T) {
		for _, n := range c.Nodes {
			resp, err := errsDo(errsRequest{method: "GET", url: n.URL + "/api/system/health", noVersion: true})
			if err != nil {
				t.Fatal(err)
			}
			var h model.Health
			if resp.status != 200 || json.Unmarshal(resp.body, &h) != nil || !h.KnownLeader || h.NodeID != n.Name {
				t.Errorf("%s health without headers: %d %s, want 200 with a known leader", n.Name, resp.status, authzClip(resp.body))
			}
		}
	})

	// Kill the leader and one follower; the survivor has no quorum.
	followers := c.Followers()
	if len(followers) != 2 {
		t.Fatalf("%d followers, want 2", len(followers))
	}
	survivor := followers[0]
	followers[1].Kill()
	leader.Kill()

	WaitFor(t, 60*time.Second, func() error {
		resp, err := errsDo(errsRequest{method: "GET", url: survivor.URL + "/api/system/health", noVersion: true})
		if err != nil {
			return err
		}
		if resp.status != 503 {
			return fmt.Errorf("%s health still answers %d: %s", survivor.Name, resp.status, authzClip(resp.body))
		}
		return nil
	})
	resp, err := errsDo(errsRequest{method: "GET", url: survivor.URL + "/api/system/health"})
	if err != nil {
		t.Fatal(err)
	}
	var h model.Health
	if resp.status != 503 || json.Unmarshal(resp.body, &h) != nil || h.KnownLeader || h.NodeID != survivor.Name {
		t.Errorf("survivor health: %d %s, want 503 naming %s with no known leader", resp.status, authzClip(resp.body), survivor.Name)
	}

	for _, r := range []errsRequest{
		{method: "POST", url: survivor.URL + "/api/namespaces", token: c.Token, body: `{"id":"errs-no-quorum"}`},
		{method: "GET", url: survivor.URL + "/api/namespaces?consistent=true", token: c.Token},
	} {
		resp, err := errsDo(r)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.url, err)
		}
		if resp.status != 503 {
			t.Errorf("%s %s without a leader: got %d, want 503; body %s", r.method, r.url, resp.status, authzClip(resp.body))
			continue
		}
		if ra, err := strconv.Atoi(resp.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("%s %s: 503 has Retry-After %q, want a positive number of seconds", r.method, r.url, resp.header.Get("Retry-After"))
		}
		if err := errsCheckErrorBody(resp.status, resp.header, resp.body); err != nil {
			t.Errorf("%s %s: %v", r.method, r.url, err)
		}
	}
}

// TestErrCLI: a failing CLI command exits non-zero and prints one line,
// "error: <message>", with no Go stack trace.
func TestErrCLI(t *testing.T) {
	c := NewCluster(t, 1)
	url := c.Nodes[0].URL
	user, err := c.Nodes[0].Client(c.Token).CreateToken(context.Background(), "errs-cli-user", []string{model.RoleUser}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args    []string
		mention string
	}{
		{[]string{"-a", url, "--token", c.Token, "namespace", "get", "nope"}, `"nope"`},
		{[]string{"-a", url, "--token", "gofer_not-a-real-token", "namespace", "list"}, "token"},
		{[]string{"-a", url, "--token", user.Secret, "namespace", "create", "errs-cli"}, "admin"},
		{[]string{"-a", url, "--token", c.Token, "namespace", "create", "a b"}, `"a b"`},
		{[]string{"-a", url, "--token", c.Token, "namespace", "create", "default"}, "default"},
	} {
		out, err := runCLI(t, nil, tc.args...)
		cmd := "gofer " + strings.Join(tc.args[4:], " ")
		t.Logf("%s: %v: %q", cmd, err, out)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Errorf("%s: exit status %v, want non-zero; output %q", cmd, err, out)
			continue
		}
		text := strings.TrimRight(out, "\n")
		if strings.Contains(text, "\n") || !strings.HasPrefix(text, "error: ") || len(text) == len("error: ") {
			t.Errorf("%s: output %q, want exactly one line \"error: <message>\"", cmd, out)
		}
		if !strings.Contains(text, tc.mention) {
			t.Errorf("%s: output %q does not mention %s", cmd, out, tc.mention)
		}
		for _, bad := range []string{"goroutine", "panic", ".go:", "runtime."} {
			if strings.Contains(out, bad) {
				t.Errorf("%s: output contains %q: %q", cmd, bad, out)
			}
		}
	}
	// The client-side API error type is what the CLI printed from.
	_, err = c.Nodes[0].Client(c.Token).GetNamespace(context.Background(), "nope")
	if !client.IsStatus(err, 404) {
		t.Errorf("client GetNamespace(nope): %v, want a 404 *client.Error", err)
	}
}
