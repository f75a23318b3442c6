package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/api"
	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// The authorization tests run every route of the API (api.Routes) with
// every kind of caller: no token, malformed Authorization headers, an
// unknown, a disabled and an expired token (both carrying the admin role),
// a read-only token, a token confined to another namespace, a token with
// the built-in user role, and the bootstrap admin token.

// authzCase is the specification of one route's access rule, written
// independently of api/routes.go so that a route that checks the wrong
// action (or none) fails here.
type authzCase struct {
	method, path string
	// public: no token needed (health, metadata, bootstrap, join).
	public bool
	// joinRule: public in the route table, but a node that already
	// belongs to a cluster demands an admin token (api.joinCluster).
	joinRule bool
	// admin: needs a role granting "all".
	admin bool
	// self: any valid token; the handler decides (whoami, own token).
	self bool
	// action the route performs ("" for public and self routes).
	action string
	// user: the built-in "user" role (namespaces:default, pipelines:.*,
	// configs, deployments, events, … rwd) may make this request.
	user bool
	// req builds the concrete request: the path with real ids and the
	// body. Destructive routes make a fresh throwaway target per call.
	req func(t *testing.T, f *authzFixture) (path, body string)
	// want is the status an authorized caller gets for that request.
	want int
	// inDefault: the item lives in namespace default although the path
	// does not name it (an event by id); a caller confined to another
	// namespace passes the route's check and gets 404 from the handler,
	// as if the item did not exist.
	inDefault bool
}

// authzFixed is a request builder for a fixed path and body.
func authzFixed(path, body string) func(*testing.T, *authzFixture) (string, string) {
	return func(*testing.T, *authzFixture) (string, string) { return path, body }
}

const (
	authzPipe  = "authz-pipe"  // registered and deployed in default and other; never changed
	authzChurn = "authz-churn" // in default; the config routes register, deploy and delete its versions
	authzSlow  = "authz-slow"  // in default; its one task sleeps, so its runs stay running
	authzQuick = "authz-quick" // in default; its one task exits at once
	authzExt   = "authz-ext"   // an installed extension; authz-pipe in default has its subscription authz-sub
)

// authzCases is the case table: one entry per route of the API.
func authzCases() []authzCase {
	const (
		ns   = "/api/namespaces/default"
		pipe = ns + "/pipelines/" + authzPipe
		cfgs = pipe + "/configs"
	)
	churnCfgs := ns + "/pipelines/" + authzChurn + "/configs"
	slow, quick := ns+"/pipelines/"+authzSlow, ns+"/pipelines/"+authzQuick
	return []authzCase{
		// System.
		{method: "GET", path: "/api/system/health", public: true, req: authzFixed("/api/system/health", ""), want: 200},
		{method: "HEAD", path: "/api/system/health", public: true, req: authzFixed("/api/system/health", ""), want: 200},
		{method: "GET", path: "/api/system/metadata", public: true, req: authzFixed("/api/system/metadata", ""), want: 200},
		// The OpenAPI documents and page: public, like their source.
		{method: "GET", path: "/api/docs/openapi.json", public: true, req: authzFixed("/api/docs/openapi.json", ""), want: 200},
		{method: "GET", path: "/api/docs/extension-openapi.json", public: true, req: authzFixed("/api/docs/extension-openapi.json", ""), want: 200},
		{method: "GET", path: "/api/docs", public: true, req: authzFixed("/api/docs", ""), want: 200},
		// Metrics: any valid token by default ([metrics] access = "token").
		{method: "GET", path: "/metrics", self: true, user: true, req: authzFixed("/metrics", ""), want: 200},
		{method: "GET", path: "/api/system", action: "read", req: authzFixed("/api/system", ""), want: 200},
		{method: "PATCH", path: "/api/system", admin: true, action: "write",
			req: authzFixed("/api/system", `{"ignore_pipeline_run_events":false}`), want: 200},
		// Aborting when no rotation runs reaches the handler past auth and
		// changes nothing (409).
		{method: "POST", path: "/api/system/encryption-key/rotate", admin: true, action: "write",
			req: authzFixed("/api/system/encryption-key/rotate", `{"abort":true}`), want: 409},
		{method: "GET", path: "/api/system/encryption-key/rotation", admin: true, action: "read",
			req: authzFixed("/api/system/encryption-key/rotation", ""), want: 200},

		// Namespaces.
		{method: "GET", path: "/api/namespaces", action: "read", user: true, req: authzFixed("/api/namespaces", ""), want: 200},
		{method: "POST", path: "/api/namespaces", admin: true, action: "write",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/namespaces", fmt.Sprintf(`{"id":%q}`, f.uniq("authz-ns"))
			}, want: 201},
		{method: "GET", path: "/api/namespaces/:ns", action: "read", user: true, req: authzFixed(ns, ""), want: 200},
		{method: "PATCH", path: "/api/namespaces/:ns", admin: true, action: "write",
			req: authzFixed(ns, `{"description":"touched by the authz test"}`), want: 200},
		{method: "DELETE", path: "/api/namespaces/:ns", admin: true, action: "delete",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/namespaces/" + f.throwawayNamespace(t), ""
			}, want: 204},

		// Pipelines.
		{method: "GET", path: "/api/namespaces/:ns/pipelines", action: "read", user: true, req: authzFixed(ns+"/pipelines", ""), want: 200},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline", action: "read", user: true, req: authzFixed(pipe, ""), want: 200},
		{method: "PATCH", path: "/api/namespaces/:ns/pipelines/:pipeline", action: "write", user: true,
			req: authzFixed(pipe, `{"state":"active"}`), want: 204},
		{method: "DELETE", path: "/api/namespaces/:ns/pipelines/:pipeline", action: "delete", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				id := f.uniq("authz-tmp-pipe")
				f.register(t, "default", id)
				return ns + "/pipelines/" + id, ""
			}, want: 204},

		// Config versions and deployments.
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/configs", action: "read", user: true, req: authzFixed(cfgs, ""), want: 200},
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/configs", action: "write", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return churnCfgs, authzConfigBody(t, authzChurn)
			}, want: 201},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/configs/:version", action: "read", user: true, req: authzFixed(cfgs+"/1", ""), want: 200},
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/configs/:version", action: "write", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return churnCfgs + "/" + strconv.FormatInt(f.register(t, "default", authzChurn), 10), ""
			}, want: 201},
		{method: "DELETE", path: "/api/namespaces/:ns/pipelines/:pipeline/configs/:version", action: "delete", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return churnCfgs + "/" + strconv.FormatInt(f.register(t, "default", authzChurn), 10), ""
			}, want: 204},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/deployments", action: "read", user: true, req: authzFixed(pipe+"/deployments", ""), want: 200},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/deployments/:deployment", action: "read", user: true, req: authzFixed(pipe+"/deployments/1", ""), want: 200},
		// A canary decision: each call decides a fresh canary deployment.
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/deployments/:deployment/promote", action: "write", user: true, req: authzCanaryDecision("promote"), want: 200},
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/deployments/:deployment/rollback", action: "write", user: true, req: authzCanaryDecision("rollback"), want: 200},
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/deployments/:deployment/abort", action: "write", user: true, req: authzCanaryDecision("abort"), want: 200},

		// Runs and task executions. Run 1 of authz-slow keeps running; run 1
		// of authz-quick is complete. Cancels and log deletes get a fresh run.
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/runs", action: "read", user: true, req: authzFixed(slow+"/runs", ""), want: 200},
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/runs", action: "write", user: true,
			req: authzFixed(slow+"/runs", `{"variables":{"FROM":"authz"}}`), want: 201},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run", action: "read", user: true, req: authzFixed(slow+"/runs/1", ""), want: 200},
		{method: "DELETE", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run", action: "write", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return slow + "/runs/" + strconv.FormatInt(f.startRun(t, authzSlow, false), 10), ""
			}, want: 204},
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run/retry", action: "write", user: true,
			req: authzFixed(quick+"/runs/1/retry", ""), want: 201},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run/tasks", action: "read", user: true, req: authzFixed(slow+"/runs/1/tasks", ""), want: 200},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run/tasks/:task", action: "read", user: true, req: authzFixed(slow+"/runs/1/tasks/sleeper", ""), want: 200},
		{method: "DELETE", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run/tasks/:task", action: "write", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return slow + "/runs/" + strconv.FormatInt(f.startRun(t, authzSlow, false), 10) + "/tasks/sleeper?wait_for=1", ""
			}, want: 204},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run/tasks/:task/logs", action: "read", user: true,
			req: authzFixed(quick+"/runs/1/tasks/quick/logs", ""), want: 200},
		{method: "DELETE", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run/tasks/:task/logs", action: "delete", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return quick + "/runs/" + strconv.FormatInt(f.startRun(t, authzQuick, true), 10) + "/tasks/quick/logs", ""
			}, want: 204},

		// Secrets: pipeline secrets follow the secrets permission; global
		// secrets are admin only. Deletes get a fresh key per call.
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/secrets", action: "read", user: true, req: authzFixed(pipe+"/secrets", ""), want: 200},
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/secrets", action: "write", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return pipe + "/secrets", fmt.Sprintf(`{"key":%q,"content":"value"}`, f.uniq("authz-key"))
			}, want: 201},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/secrets/:key", action: "read", user: true,
			req: authzFixed(pipe+"/secrets/authz_secret?include_secret=true", ""), want: 200},
		{method: "DELETE", path: "/api/namespaces/:ns/pipelines/:pipeline/secrets/:key", action: "delete", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return pipe + "/secrets/" + f.throwawaySecret(t, authzPipe), ""
			}, want: 204},
		{method: "GET", path: "/api/secrets/global", admin: true, action: "read", req: authzFixed("/api/secrets/global", ""), want: 200},
		{method: "POST", path: "/api/secrets/global", admin: true, action: "write",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/secrets/global", fmt.Sprintf(`{"key":%q,"content":"value","namespaces":["default"]}`, f.uniq("authz-key"))
			}, want: 201},
		{method: "GET", path: "/api/secrets/global/:key", admin: true, action: "read", req: authzFixed("/api/secrets/global/authz_global", ""), want: 200},
		{method: "DELETE", path: "/api/secrets/global/:key", admin: true, action: "delete",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/secrets/global/" + f.throwawaySecret(t, ""), ""
			}, want: 204},

		// Pipeline and run objects.
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/objects", action: "read", user: true, req: authzFixed(pipe+"/objects", ""), want: 200},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/objects/:key", action: "read", user: true, req: authzFixed(pipe+"/objects/authz_obj", ""), want: 200},
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/objects/:key", action: "write", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return pipe + "/objects/" + f.uniq("authz-obj"), "object bytes"
			}, want: 201},
		{method: "DELETE", path: "/api/namespaces/:ns/pipelines/:pipeline/objects/:key", action: "delete", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return pipe + "/objects/" + f.throwawayObject(t, client.ObjectScope{Pipeline: authzPipe}), ""
			}, want: 204},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run/objects", action: "read", user: true, req: authzFixed(quick+"/runs/1/objects", ""), want: 200},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run/objects/:key", action: "read", user: true,
			req: authzFixed(quick+"/runs/1/objects/authz_obj", ""), want: 200},
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run/objects/:key", action: "write", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return quick + "/runs/1/objects/" + f.uniq("authz-obj"), "object bytes"
			}, want: 201},
		{method: "DELETE", path: "/api/namespaces/:ns/pipelines/:pipeline/runs/:run/objects/:key", action: "delete", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return quick + "/runs/1/objects/" + f.throwawayObject(t, client.ObjectScope{Pipeline: authzQuick, Run: 1}), ""
			}, want: 204},

		// Pipeline subscriptions: authz-sub of extension authz-ext on
		// authz-pipe stays; creates and deletes use fresh ids.
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/subscriptions", action: "read", user: true, req: authzFixed(pipe+"/subscriptions", ""), want: 200},
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/subscriptions", action: "write", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return pipe + "/subscriptions", fmt.Sprintf(`{"extension_id":%q,"subscription_id":%q,"settings":{"k":"v"}}`, authzExt, f.uniq("authz-sub"))
			}, want: 201},
		{method: "GET", path: "/api/namespaces/:ns/pipelines/:pipeline/subscriptions/:extension/:subscription", action: "read", user: true,
			req: authzFixed(pipe+"/subscriptions/"+authzExt+"/authz-sub", ""), want: 200},
		{method: "PATCH", path: "/api/namespaces/:ns/pipelines/:pipeline/subscriptions/:extension/:subscription", action: "write", user: true,
			req: authzFixed(pipe+"/subscriptions/"+authzExt+"/authz-sub", `{"status":"active"}`), want: 200},
		{method: "DELETE", path: "/api/namespaces/:ns/pipelines/:pipeline/subscriptions/:extension/:subscription", action: "delete", user: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return pipe + "/subscriptions/" + authzExt + "/" + f.throwawaySubscription(t), ""
			}, want: 204},
		// Skipped ticks: an admin or the extension's own token (tested in
		// TestSkippedTicksRoute); a repeated tick records nothing but
		// still answers 200.
		{method: "POST", path: "/api/namespaces/:ns/pipelines/:pipeline/subscriptions/:extension/:subscription/skipped-ticks", admin: true, action: "write",
			// A tick now: after the subscription's creation, not in the future.
			req: func(*testing.T, *authzFixture) (string, string) {
				return pipe + "/subscriptions/" + authzExt + "/authz-sub/skipped-ticks", fmt.Sprintf(`{"ticks":[%d],"reason":"authz"}`, time.Now().Unix())
			}, want: 200},

		// Extensions: authz-ext stays installed; installs and uninstalls
		// use fresh ids. The user role has no "extensions" grant.
		{method: "GET", path: "/api/extensions", action: "read", req: authzFixed("/api/extensions", ""), want: 200},
		{method: "POST", path: "/api/extensions", admin: true, action: "write",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/extensions", fmt.Sprintf(`{"id":%q,"image":"example/ext:1","settings":{"K":"V"}}`, f.uniq("authz-ext"))
			}, want: 201},
		{method: "GET", path: "/api/extensions/:extension", action: "read", req: authzFixed("/api/extensions/"+authzExt, ""), want: 200},
		{method: "PATCH", path: "/api/extensions/:extension", admin: true, action: "write",
			req: authzFixed("/api/extensions/"+authzExt, `{"enable":true}`), want: 200},
		{method: "DELETE", path: "/api/extensions/:extension", admin: true, action: "delete",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/extensions/" + f.throwawayExtension(t), ""
			}, want: 204},
		{method: "GET", path: "/api/extensions/:extension/subscriptions", action: "read",
			req: authzFixed("/api/extensions/"+authzExt+"/subscriptions", ""), want: 200},
		// authz-ext runs (the fixture waits for it): its output.
		{method: "GET", path: "/api/extensions/:extension/logs", action: "read",
			req: authzFixed("/api/extensions/"+authzExt+"/logs", ""), want: 200},
		// The running extension's debug dump.
		{method: "GET", path: "/api/extensions/:extension/debug", admin: true, action: "read",
			req: authzFixed("/api/extensions/"+authzExt+"/debug", ""), want: 200},

		// Tokens.
		{method: "GET", path: "/api/tokens", admin: true, action: "read", req: authzFixed("/api/tokens", ""), want: 200},
		{method: "POST", path: "/api/tokens", admin: true, action: "write",
			req: authzFixed("/api/tokens", `{"user":"authz-made","roles":["user"]}`), want: 201},
		{method: "POST", path: "/api/tokens/bootstrap", public: true, req: authzFixed("/api/tokens/bootstrap", ""), want: 409},
		{method: "GET", path: "/api/tokens/whoami", self: true, user: true, req: authzFixed("/api/tokens/whoami", ""), want: 200},
		// Someone else's token: the read-only and wrong-namespace roles
		// grant tokens:read, so they may read it; the user role does not.
		{method: "GET", path: "/api/tokens/:id", self: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/tokens/" + f.ids["read-only"], ""
			}, want: 200},
		{method: "PATCH", path: "/api/tokens/:id", admin: true, action: "write",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/tokens/" + f.throwawayToken(t), `{"disabled":true}`
			}, want: 204},
		{method: "DELETE", path: "/api/tokens/:id", admin: true, action: "delete",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/tokens/" + f.throwawayToken(t), ""
			}, want: 204},

		// Roles.
		{method: "GET", path: "/api/roles", action: "read", req: authzFixed("/api/roles", ""), want: 200},
		{method: "POST", path: "/api/roles", admin: true, action: "write",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/roles", fmt.Sprintf(`{"id":%q,"permissions":[{"resources":["events"],"actions":["read"]}]}`, f.uniq("authz-role"))
			}, want: 201},
		{method: "GET", path: "/api/roles/:id", action: "read", req: authzFixed("/api/roles/user", ""), want: 200},
		{method: "PATCH", path: "/api/roles/:id", admin: true, action: "write",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/roles/" + f.throwawayRole(t), `{"description":"changed by the authz test"}`
			}, want: 200},
		{method: "DELETE", path: "/api/roles/:id", admin: true, action: "delete",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/roles/" + f.throwawayRole(t), ""
			}, want: 204},

		// Events.
		{method: "GET", path: "/api/events", action: "read", user: true, req: authzFixed("/api/events", ""), want: 200},
		{method: "GET", path: "/api/events/stream", action: "read", user: true, req: authzFixed("/api/events/stream", ""), want: 200},
		{method: "GET", path: "/api/events/:id", action: "read", user: true, inDefault: true,
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/events/" + strconv.FormatUint(f.eventID, 10), ""
			}, want: 200},
		{method: "DELETE", path: "/api/events/:id", admin: true, action: "delete",
			req: func(t *testing.T, f *authzFixture) (string, string) {
				return "/api/events/" + strconv.FormatUint(f.throwawayEvent(t), 10), ""
			}, want: 204},

		// Cluster operations. The single node must survive: members are
		// added with a body that fails validation, removed by an id that is
		// not a member, the join target is not a URL and the restore body
		// is not a snapshot. Each still reaches the handler past auth.
		{method: "GET", path: "/api/cluster/members", admin: true, action: "read", req: authzFixed("/api/cluster/members", ""), want: 200},
		{method: "POST", path: "/api/cluster/members", admin: true, action: "write",
			req: authzFixed("/api/cluster/members", `{"id":"authz-ghost","raft_addr":"not-an-address","api_addr":"http://127.0.0.1:1"}`), want: 400},
		{method: "DELETE", path: "/api/cluster/members/:id", admin: true, action: "delete",
			req: authzFixed("/api/cluster/members/authz-ghost", ""), want: 404},
		{method: "POST", path: "/api/cluster/join", public: true, joinRule: true,
			req: authzFixed("/api/cluster/join", `{"address":"not-a-url"}`), want: 400},
		{method: "GET", path: "/api/cluster/snapshot", admin: true, action: "read", req: authzFixed("/api/cluster/snapshot", ""), want: 200},
		{method: "POST", path: "/api/cluster/snapshot", admin: true, action: "write",
			req: authzFixed("/api/cluster/snapshot", "this is not a gofer snapshot\n"), want: 400},
		// An external event a follower passes to the leader (nodes use the
		// cluster secret; an admin may too): no such extension.
		{method: "POST", path: "/api/cluster/external-events/:extension", admin: true, action: "write",
			req: authzFixed("/api/cluster/external-events/authz-no-ext", "event body"), want: 404},
		// Audit entries a node passes to the leader: only the cluster
		// secret writes them — the route admits admins like the other
		// cluster routes, but its handler refuses a token (an entry an
		// admin wrote would read as someone else's request).
		{method: "POST", path: "/api/cluster/audit", admin: true, action: "write",
			req: authzFixed("/api/cluster/audit", `{"entries":[]}`), want: 403},
	}
}

// authzKind groups callers by what they must be allowed.
type authzKind int

const (
	authzUnauthenticated authzKind = iota // refused with 401 on every protected route
	authzReadOnly                         // every kind, read only
	authzWrongNamespace                   // everything rwd, but only namespaces:other
	authzUser                             // the built-in user role
	authzAdmin                            // the bootstrap token
)

// authzCaller is one row of callers the matrix tries on every route.
type authzCaller struct {
	name string
	kind authzKind
	// header is the Authorization header value ("" sends none).
	header func(f *authzFixture) string
}

func authzCallers() []authzCaller {
	bearer := func(name string) func(f *authzFixture) string {
		return func(f *authzFixture) string { return "Bearer " + f.secrets[name] }
	}
	return []authzCaller{
		{"no token", authzUnauthenticated, func(*authzFixture) string { return "" }},
		{"admin secret without a scheme", authzUnauthenticated, func(f *authzFixture) string { return f.secrets["admin"] }},
		{"admin secret as Basic credentials", authzUnauthenticated, func(f *authzFixture) string {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+f.secrets["admin"]))
		}},
		{"Bearer without a secret", authzUnauthenticated, func(*authzFixture) string { return "Bearer" }},
		{"unknown token", authzUnauthenticated, bearer("unknown")},
		{"disabled admin token", authzUnauthenticated, bearer("disabled")},
		{"expired admin token", authzUnauthenticated, bearer("expired")},
		{"read-only token", authzReadOnly, bearer("read-only")},
		{"wrong-namespace token", authzWrongNamespace, bearer("wrong-namespace")},
		{"user token", authzUser, bearer("user")},
		{"admin token", authzAdmin, bearer("admin")},
	}
}

// expect is the status caller must get for the route's request.
func (c authzCase) expect(caller authzCaller, path string) (int, string) {
	if c.public && !c.joinRule {
		return c.want, "public route"
	}
	underDefault := path == "/api/namespaces/default" || strings.HasPrefix(path, "/api/namespaces/default/")
	switch caller.kind {
	case authzUnauthenticated:
		return 401, "no valid token"
	case authzReadOnly:
		switch {
		case c.admin || c.joinRule:
			return 403, "admin route, no role grants \"all\""
		case c.action == "write" || c.action == "delete":
			return 403, "the role grants only read, the route does " + c.action
		}
	case authzWrongNamespace:
		switch {
		case c.admin || c.joinRule:
			return 403, "admin route, no role grants \"all\""
		case underDefault:
			return 403, "the role grants only namespaces:other"
		case c.inDefault:
			return 404, "the item is in namespace default; the role grants only namespaces:other"
		}
	case authzUser:
		if !c.user {
			return 403, "the built-in user role does not grant this route"
		}
	}
	return c.want, "allowed"
}

// TestAuthzRouteTableCovered fails when a route of the API has no
// authorization case, when a case names a route that no longer exists, or
// when the route table's access rule differs from the case table's.
func TestAuthzRouteTableCovered(t *testing.T) {
	authzCheckCoverage(t)
}

func authzCheckCoverage(t *testing.T) {
	t.Helper()
	cases := map[string]authzCase{}
	for _, c := range authzCases() {
		key := c.method + " " + c.path
		if _, dup := cases[key]; dup {
			t.Errorf("case table lists %s twice", key)
		}
		cases[key] = c
	}
	covered := map[string]bool{}
	for key := range cases {
		covered[key] = true
	}
	checkRoutesCovered(t, covered, "has no authorization case: add it to authzCases in e2e/authz_test.go", func(r api.RouteInfo) {
		c := cases[r.Method+" "+r.Path]
		if r.Public != c.public || r.Admin != c.admin || r.Action != c.action {
			t.Errorf("route %s %s: route table says public=%v admin=%v action=%q, the authorization spec says public=%v admin=%v action=%q",
				r.Method, r.Path, r.Public, r.Admin, r.Action, c.public, c.admin, c.action)
		}
	})
}

// checkRoutesCovered fails for every route of api.Routes() that covered
// lacks (the message ends with missing) and for every covered key that
// names no route; each, when set, checks a covered route further.
func checkRoutesCovered(t *testing.T, covered map[string]bool, missing string, each func(api.RouteInfo)) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range api.Routes() {
		key := r.Method + " " + r.Path
		seen[key] = true
		if !covered[key] {
			t.Errorf("route %s %s", key, missing)
			continue
		}
		if each != nil {
			each(r)
		}
	}
	for key := range covered {
		if !seen[key] {
			t.Errorf("%s names a route that api.Routes() does not list", key)
		}
	}
}

// TestAuthzEveryRoute sends every route's request as every caller and
// checks the status and the error body.
func TestAuthzEveryRoute(t *testing.T) {
	authzCheckCoverage(t)
	f := authzSetup(t)
	for _, c := range authzCases() {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			for _, caller := range authzCallers() {
				path, body := c.req(t, f)
				want, why := c.expect(caller, path)
				resp, err := authzSend(c.method, f.url+path, caller.header(f), body)
				if err != nil {
					t.Errorf("%s: %s %s: %v", caller.name, c.method, path, err)
					continue
				}
				if resp.status != want {
					t.Errorf("%s: %s %s: got %d, want %d (%s); body: %s", caller.name, c.method, path, resp.status, want, why, authzClip(resp.body))
					continue
				}
				if resp.status >= 400 {
					if err := errsCheckErrorBody(resp.status, resp.header, resp.body); err != nil {
						t.Errorf("%s: %s %s: %v", caller.name, c.method, path, err)
					}
				}
			}
		})
	}
	// The node survived the destructive routes and the admin still works.
	if resp, err := authzSend("GET", f.url+"/api/tokens/whoami", "Bearer "+f.secrets["admin"], ""); err != nil || resp.status != 200 {
		t.Errorf("admin whoami after the matrix: %v %+v", err, resp)
	}
}

// TestAuthzOwnToken: a token reads its own details but not another's
// without tokens:read, may not disable or enable itself, and a token
// confined to namespace "other" works there and sees only it.
func TestAuthzOwnToken(t *testing.T) {
	f := authzSetup(t)
	user := "Bearer " + f.secrets["user"]

	t.Run("whoami and own id", func(t *testing.T) {
		for _, name := range []string{"user", "read-only", "wrong-namespace", "admin"} {
			auth := "Bearer " + f.secrets[name]
			for _, path := range []string{"/api/tokens/whoami", "/api/tokens/" + f.ids[name]} {
				resp, err := authzSend("GET", f.url+path, auth, "")
				if err != nil {
					t.Fatalf("%s: GET %s: %v", name, path, err)
				}
				var got struct {
					Token model.Token `json:"token"`
				}
				if resp.status != 200 || json.Unmarshal(resp.body, &got) != nil || got.Token.ID != f.ids[name] {
					t.Errorf("%s token: GET %s: got %d %s, want 200 with its own id %s", name, path, resp.status, authzClip(resp.body), f.ids[name])
				}
			}
		}
	})

	t.Run("user token may not read others", func(t *testing.T) {
		for _, other := range []string{f.ids["admin"], f.ids["read-only"], "0123456789abcdef0123456789abcdef"} {
			resp, err := authzSend("GET", f.url+"/api/tokens/"+other, user, "")
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != 403 {
				t.Errorf("user token: GET /api/tokens/%s: got %d %s, want 403", other, resp.status, authzClip(resp.body))
				continue
			}
			if err := errsCheckErrorBody(resp.status, resp.header, resp.body); err != nil {
				t.Error(err)
			}
		}
		// tokens:read is what lets the read-only token read the user's.
		resp, err := authzSend("GET", f.url+"/api/tokens/"+f.ids["user"], "Bearer "+f.secrets["read-only"], "")
		if err != nil || resp.status != 200 {
			t.Errorf("read-only token (tokens:read) reading the user token: %v %d %s, want 200", err, resp.status, authzClip(resp.body))
		}
	})

	t.Run("a token may not disable or enable itself", func(t *testing.T) {
		// A second admin token, so a bug here cannot lock the test out.
		tok, err := f.admin.CreateToken(context.Background(), "authz-admin2", []string{model.RoleAdmin}, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		self := "Bearer " + tok.Secret
		for _, body := range []string{`{"disabled":true}`, `{"disabled":false}`} {
			resp, err := authzSend("PATCH", f.url+"/api/tokens/"+tok.Token.ID, self, body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != 400 {
				t.Errorf("PATCH own token %s: got %d %s, want 400", body, resp.status, authzClip(resp.body))
			} else if err := errsCheckErrorBody(resp.status, resp.header, resp.body); err != nil {
				t.Error(err)
			}
		}
		got, err := f.admin.GetToken(context.Background(), tok.Token.ID)
		if err != nil || got.Disabled {
			t.Fatalf("after refusing to disable itself the token is %+v (%v), want it enabled", got, err)
		}
		if resp, err := authzSend("GET", f.url+"/api/tokens/whoami", self, ""); err != nil || resp.status != 200 {
			t.Errorf("the second admin token no longer works: %v %+v", err, resp)
		}
		// A non-admin token may not change its own state either (admin route).
		resp, err := authzSend("PATCH", f.url+"/api/tokens/"+f.ids["user"], user, `{"disabled":true}`)
		if err != nil || resp.status != 403 {
			t.Errorf("user token PATCHing itself: %v %d %s, want 403", err, resp.status, authzClip(resp.body))
		}
	})

	t.Run("wrong-namespace token works in its own namespace", func(t *testing.T) {
		auth := "Bearer " + f.secrets["wrong-namespace"]
		base := "/api/namespaces/other/pipelines/" + authzPipe
		for _, path := range []string{"/api/namespaces/other", "/api/namespaces/other/pipelines", base, base + "/configs/1", base + "/deployments/1"} {
			resp, err := authzSend("GET", f.url+path, auth, "")
			if err != nil || resp.status != 200 {
				t.Errorf("wrong-namespace token: GET %s: %v %d %s, want 200", path, err, resp.status, authzClip(resp.body))
			}
		}
		resp, err := authzSend("PATCH", f.url+base, auth, `{"state":"active"}`)
		if err != nil || resp.status != 204 {
			t.Errorf("wrong-namespace token: PATCH %s: %v %d %s, want 204", base, err, resp.status, authzClip(resp.body))
		}
		resp, err = authzSend("GET", f.url+"/api/namespaces", auth, "")
		if err != nil || resp.status != 200 {
			t.Fatalf("wrong-namespace token: list namespaces: %v %+v", err, resp)
		}
		var list struct {
			Namespaces []model.Namespace `json:"namespaces"`
		}
		if err := json.Unmarshal(resp.body, &list); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, ns := range list.Namespaces {
			ids = append(ids, ns.ID)
		}
		if len(ids) != 1 || ids[0] != "other" {
			t.Errorf("wrong-namespace token lists namespaces %v, want only [other]", ids)
		}
	})

	t.Run("events follow namespaces", func(t *testing.T) {
		for name, want := range map[string]string{"wrong-namespace": "other", "user": "default"} {
			resp, err := authzSend("GET", f.url+"/api/events?limit=1000", "Bearer "+f.secrets[name], "")
			if err != nil || resp.status != 200 {
				t.Fatalf("%s token: list events: %v %+v", name, err, resp)
			}
			var list struct {
				Events []model.Event `json:"events"`
			}
			if err := json.Unmarshal(resp.body, &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Events) == 0 {
				t.Errorf("%s token lists no events, want those of namespace %s", name, want)
			}
			for _, e := range list.Events {
				if e.NamespaceID != want {
					t.Errorf("%s token listed event %d %s of namespace %q, want only %q", name, e.ID, e.Kind, e.NamespaceID, want)
				}
			}
		}
		// The stream, history then live: an object put in default, then one
		// in other; the wrong-namespace token's stream reaches the second
		// having carried nothing of default or of the cluster.
		cl, err := client.New([]string{f.url}, client.WithToken(f.secrets["wrong-namespace"]), client.WithNamespace("other"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		marker := f.uniq("authz-mark")
		streamed := make(chan error, 1)
		go func() {
			streamed <- cl.StreamEvents(ctx, true, func(e *model.Event) error {
				if e.NamespaceID != "other" {
					t.Errorf("wrong-namespace token's stream carried event %d %s of namespace %q", e.ID, e.Kind, e.NamespaceID)
				}
				if e.Kind == model.EventPutObject && e.Details.String("key") == marker {
					return io.EOF // done
				}
				return nil
			})
		}()
		f.throwawayObject(t, client.ObjectScope{Pipeline: authzPipe})
		otherAdmin, err := client.New([]string{f.url}, client.WithToken(f.secrets["admin"]), client.WithNamespace("other"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := otherAdmin.PutObject(context.Background(), client.ObjectScope{Pipeline: authzPipe}, marker, []byte("m"), false); err != nil {
			t.Fatalf("put the marker object: %v", err)
		}
		if err := <-streamed; err != io.EOF {
			t.Errorf("wrong-namespace token's stream ended with %v before the marker event of namespace other", err)
		}
	})
}

// authzFixture is a single-node cluster with namespaces, pipelines, roles
// and tokens for every kind of caller.
type authzFixture struct {
	c     *Cluster
	url   string
	admin *client.Client
	// secrets and ids of the tokens, by caller name.
	secrets map[string]string
	ids     map[string]string
	// eventID is an event that stays.
	eventID uint64
	seq     int
}

func authzSetup(t *testing.T) *authzFixture {
	t.Helper()
	ctx := context.Background()
	c := NewCluster(t, 1)
	node := c.Nodes[0]
	f := &authzFixture{
		c:       c,
		url:     node.URL,
		admin:   node.Client(c.Token),
		secrets: map[string]string{"admin": c.Token},
		ids:     map[string]string{},
	}
	me, err := f.admin.WhoAmI(ctx)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	f.ids["admin"] = me.ID

	if _, err := f.admin.CreateNamespace(ctx, "other", "Other", "the namespace the wrong-namespace token may use"); err != nil {
		t.Fatalf("create namespace other: %v", err)
	}
	for _, ns := range []string{"default", "other"} {
		if v := f.register(t, ns, authzPipe); v != 1 {
			t.Fatalf("%s/%s registered as version %d, want 1", ns, authzPipe, v)
		}
		cl, err := client.New([]string{f.url}, client.WithToken(c.Token), client.WithNamespace(ns), client.WithRetryFor(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if d, err := cl.DeployConfig(ctx, authzPipe, 1); err != nil || d.DeploymentID != 1 {
			t.Fatalf("deploy %s/%s v1: %+v %v", ns, authzPipe, d, err)
		}
	}
	f.register(t, "default", authzChurn)

	// Pipelines with real runs: the images come from e2e/scripts/build-images.sh.
	ensureImages(t)
	health, err := node.Health()
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	t.Cleanup(func() { removeContainers(t, health.ClusterID) })
	for _, cfg := range []*sdk.PipelineConfig{
		{ID: authzSlow, Name: authzSlow, Timeout: "5m", Tasks: []*sdk.TaskConfig{{ID: "sleeper", Image: "gofer/busybox:latest", Command: []string{"sleep", "300"}}}},
		{ID: authzQuick, Name: authzQuick, Tasks: []*sdk.TaskConfig{{ID: "quick", Image: "gofer/busybox:latest", Command: []string{"echo", "quick"}}}},
	} {
		if _, err := f.admin.RegisterConfig(ctx, cfg); err != nil {
			t.Fatalf("register %s: %v", cfg.ID, err)
		}
		if _, err := f.admin.DeployConfig(ctx, cfg.ID, 1); err != nil {
			t.Fatalf("deploy %s: %v", cfg.ID, err)
		}
	}
	if id := f.startRun(t, authzSlow, false); id != 1 {
		t.Fatalf("first run of %s is %d", authzSlow, id)
	}
	if id := f.startRun(t, authzQuick, true); id != 1 {
		t.Fatalf("first run of %s is %d", authzQuick, id)
	}
	// Secrets and objects that stay: authz_secret and authz_obj of
	// authz-pipe, the global secret authz_global, and run object authz_obj
	// of run 1 of authz-quick.
	pipeSecrets, quickRun := client.SecretScope{Pipeline: authzPipe}, client.ObjectScope{Pipeline: authzQuick, Run: 1}
	if _, err := f.admin.PutSecret(ctx, pipeSecrets, "authz_secret", "authz-secret-value", nil, false); err != nil {
		t.Fatalf("put secret: %v", err)
	}
	if _, err := f.admin.PutSecret(ctx, client.SecretScope{}, "authz_global", "authz-global-value", []string{".*"}, false); err != nil {
		t.Fatalf("put global secret: %v", err)
	}
	for _, sc := range []client.ObjectScope{{Pipeline: authzPipe}, quickRun} {
		if _, err := f.admin.PutObject(ctx, sc, "authz_obj", []byte("authz object"), false); err != nil {
			t.Fatalf("put object %+v: %v", sc, err)
		}
	}

	// A running extension: subscriptions are validated by it.
	if _, err := f.admin.InstallExtension(ctx, client.InstallRequest{ID: authzExt, Image: upstreamExtensionImage(t)}); err != nil {
		t.Fatalf("install extension %s: %v", authzExt, err)
	}
	waitExtensionState(t, f.admin, authzExt, "running")
	if _, err := f.admin.Subscribe(ctx, authzPipe, authzExt, "authz-sub", nil); err != nil {
		t.Fatalf("subscribe %s to %s: %v", authzPipe, authzExt, err)
	}

	// Roles: every resource kind but "all" with read only; and everything
	// rwd with namespaces narrowed to "other".
	var readKinds, otherKinds []string
	for _, k := range model.ResourceKinds {
		switch k {
		case "all":
		case "namespaces":
			readKinds = append(readKinds, k)
			otherKinds = append(otherKinds, "namespaces:other")
		case "cluster_events":
			// Like docs/auth.md's team role: no cluster-wide events.
			readKinds = append(readKinds, k)
		default:
			readKinds = append(readKinds, k)
			otherKinds = append(otherKinds, k)
		}
	}
	rwd := []model.Action{model.ActionRead, model.ActionWrite, model.ActionDelete}
	if _, err := f.admin.CreateRole(ctx, "authz-read", "read everything", []model.Permission{{Resources: readKinds, Actions: []model.Action{model.ActionRead}}}); err != nil {
		t.Fatalf("create role authz-read: %v", err)
	}
	if _, err := f.admin.CreateRole(ctx, "authz-other", "everything, namespace other only", []model.Permission{{Resources: otherKinds, Actions: rwd}}); err != nil {
		t.Fatalf("create role authz-other: %v", err)
	}

	for _, tok := range []struct {
		name    string
		roles   []string
		expires int64
	}{
		{"read-only", []string{"authz-read"}, 0},
		{"wrong-namespace", []string{"authz-other"}, 0},
		{"user", []string{model.RoleUser}, 0},
		// Refused only because of their state: they carry the admin role.
		{"disabled", []string{model.RoleAdmin}, 0},
		{"expired", []string{model.RoleAdmin}, 1},
	} {
		made, err := f.admin.CreateToken(ctx, "authz-"+tok.name, tok.roles, tok.expires, map[string]string{"test": t.Name()})
		if err != nil {
			t.Fatalf("create %s token: %v", tok.name, err)
		}
		f.secrets[tok.name], f.ids[tok.name] = made.Secret, made.Token.ID
	}
	if _, err := f.admin.SetTokenDisabled(ctx, f.ids["disabled"], true); err != nil {
		t.Fatalf("disable token: %v", err)
	}
	var random [32]byte
	if _, err := rand.Read(random[:]); err != nil {
		t.Fatal(err)
	}
	f.secrets["unknown"] = api.TokenPrefix + base64.RawURLEncoding.EncodeToString(random[:])

	// The expiry is one second; wait until the server refuses the token.
	for _, name := range []string{"disabled", "expired"} {
		WaitFor(t, 30*time.Second, func() error {
			resp, err := authzSend("GET", f.url+"/api/tokens/whoami", "Bearer "+f.secrets[name], "")
			if err != nil {
				return err
			}
			if resp.status != 401 {
				return fmt.Errorf("%s token still answered %d", name, resp.status)
			}
			return nil
		})
	}

	// An event of namespace default that stays: the user and read-only
	// tokens may read it, the wrong-namespace token may not.
	events, err := f.admin.ListEvents(ctx, client.Page{Limit: 1000})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	for _, e := range events {
		if e.NamespaceID == "default" {
			f.eventID = e.ID
			break
		}
	}
	if f.eventID == 0 {
		t.Fatalf("no event of namespace default among %d", len(events))
	}
	return f
}

// startRun starts a run of a default-namespace pipeline with the admin
// token; with complete it waits until the run has ended.
func (f *authzFixture) startRun(t *testing.T, pipeline string, complete bool) int64 {
	t.Helper()
	r, err := f.admin.StartRun(context.Background(), pipeline, nil)
	if err != nil {
		t.Fatalf("start a run of %s: %v", pipeline, err)
	}
	if complete {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := f.admin.WaitRun(ctx, pipeline, r.RunID, 100*time.Millisecond, nil); err != nil {
			t.Fatalf("run %d of %s did not end: %v", r.RunID, pipeline, err)
		}
	}
	return r.RunID
}

// throwawayExtension installs a fresh extension and returns its id.
func (f *authzFixture) throwawayExtension(t *testing.T) string {
	t.Helper()
	id := f.uniq("authz-tmp-ext")
	if _, err := f.admin.InstallExtension(context.Background(), client.InstallRequest{ID: id, Image: "example/ext:1"}); err != nil {
		t.Fatalf("install %s: %v", id, err)
	}
	return id
}

// throwawaySubscription subscribes authz-pipe in default to authz-ext
// under a fresh id and returns it.
func (f *authzFixture) throwawaySubscription(t *testing.T) string {
	t.Helper()
	id := f.uniq("authz-tmp-sub")
	if _, err := f.admin.Subscribe(context.Background(), authzPipe, authzExt, id, nil); err != nil {
		t.Fatalf("subscribe %s: %v", id, err)
	}
	return id
}

// uniq returns a fresh identifier starting with prefix.
func (f *authzFixture) uniq(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s-%d", prefix, f.seq)
}

// register registers a new config version of pipeline id in ns.
func (f *authzFixture) register(t *testing.T, ns, id string) int64 {
	t.Helper()
	cl, err := client.New([]string{f.url}, client.WithToken(f.secrets["admin"]), client.WithNamespace(ns), client.WithRetryFor(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cl.RegisterConfig(context.Background(), authzConfig(id))
	if err != nil {
		t.Fatalf("register %s/%s: %v", ns, id, err)
	}
	return cfg.Version
}

func (f *authzFixture) throwawayNamespace(t *testing.T) string {
	t.Helper()
	id := f.uniq("authz-doomed")
	if _, err := f.admin.CreateNamespace(context.Background(), id, id, ""); err != nil {
		t.Fatalf("create namespace %s: %v", id, err)
	}
	return id
}

func (f *authzFixture) throwawayToken(t *testing.T) string {
	t.Helper()
	tok, err := f.admin.CreateToken(context.Background(), f.uniq("authz-doomed"), []string{model.RoleUser}, 0, nil)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return tok.Token.ID
}

func (f *authzFixture) throwawayRole(t *testing.T) string {
	t.Helper()
	id := f.uniq("authz-doomed")
	perms := []model.Permission{{Resources: []string{"events"}, Actions: []model.Action{model.ActionRead}}}
	if _, err := f.admin.CreateRole(context.Background(), id, "", perms); err != nil {
		t.Fatalf("create role %s: %v", id, err)
	}
	return id
}

// throwawaySecret stores a secret of the pipeline (global when pipeline
// is "") for a delete to remove, and returns its key.
func (f *authzFixture) throwawaySecret(t *testing.T, pipeline string) string {
	t.Helper()
	key := f.uniq("authz-doomed")
	if _, err := f.admin.PutSecret(context.Background(), client.SecretScope{Pipeline: pipeline}, key, "doomed", []string{".*"}, false); err != nil {
		t.Fatalf("put secret %s: %v", key, err)
	}
	return key
}

// throwawayObject stores an object for a delete to remove and returns
// its key.
func (f *authzFixture) throwawayObject(t *testing.T, sc client.ObjectScope) string {
	t.Helper()
	key := f.uniq("authz-doomed")
	if _, err := f.admin.PutObject(context.Background(), sc, key, []byte("doomed"), false); err != nil {
		t.Fatalf("put object %s: %v", key, err)
	}
	return key
}

// throwawayEvent makes a new event (by creating a namespace) and returns
// its id.
func (f *authzFixture) throwawayEvent(t *testing.T) uint64 {
	t.Helper()
	f.throwawayNamespace(t)
	events, err := f.admin.ListEvents(context.Background(), client.Page{Limit: 1, Reverse: true})
	if err != nil || len(events) == 0 {
		t.Fatalf("list events: %v %v", events, err)
	}
	return events[0].ID
}

func authzConfig(id string) *sdk.PipelineConfig {
	return &sdk.PipelineConfig{
		ID:   id,
		Name: id,
		Tasks: []*sdk.TaskConfig{
			{ID: "first-step", Image: "alpine:3"},
			{ID: "second-step", Image: "alpine:3", DependsOn: map[string]sdk.RequiredParentStatus{"first-step": sdk.RequiredParentStatusSuccess}},
		},
	}
}

func authzConfigBody(t *testing.T, id string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"config": authzConfig(id)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// authzResp is an answer with its body read (except for event streams,
// which never end).
type authzResp struct {
	status int
	header http.Header
	body   []byte
}

// authzSend sends one request with the version header and the given
// Authorization header value ("" for none).
func authzSend(method, url, authorization, body string) (authzResp, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return authzResp{}, err
	}
	req.Header.Set("gofer-api-version", "v0")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return authzResp{}, err
	}
	defer resp.Body.Close()
	out := authzResp{status: resp.StatusCode, header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return out, nil // a stream: the status is all we need
	}
	out.body, err = io.ReadAll(resp.Body)
	return out, err
}

func authzClip(b []byte) string {
	const max = 300
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// authzCanaryDecision builds a decision request for a fresh canary
// deployment: a throwaway pipeline with version 1 live and a canary of
// version 2 started by the admin.
func authzCanaryDecision(action string) func(*testing.T, *authzFixture) (string, string) {
	return func(t *testing.T, f *authzFixture) (string, string) {
		t.Helper()
		id := f.uniq("authz-canary")
		f.register(t, "default", id)
		f.register(t, "default", id)
		if _, err := f.admin.DeployConfig(context.Background(), id, 1); err != nil {
			t.Fatalf("deploy %s v1: %v", id, err)
		}
		base := "/api/namespaces/default/pipelines/" + id
		resp, err := authzSend("POST", f.url+base+"/configs/2", "Bearer "+f.secrets["admin"],
			`{"strategy": "canary", "canary": {"canary_percent": 10, "canary_runs": 5, "canary_duration": "1h", "max_failure_increase": 0}}`)
		if err != nil || resp.status != 201 {
			t.Fatalf("start a canary of %s: %+v %v", id, resp, err)
		}
		// The pipeline's deployments: 1 (immediate), 2 (the canary).
		return base + "/deployments/2/" + action, ""
	}
}
