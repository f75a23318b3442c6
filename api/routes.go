package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/agent/extcall"
	"github.com/goferhq/gofer/store/model"
)

// route is one entry of the route table.
type route struct {
	method  string
	path    string
	handler echo.HandlerFunc
	access  access
	// leaderOnly routes always run on the leader, even for GET.
	leaderOnly bool
	// extensionWork is how long the handler may spend calling a running
	// extension on the leader (leaderWork).
	extensionWork time.Duration
	// bodyLimit overrides the default body limit; -1 means none.
	bodyLimit int64
	// noVersion exempts the route from the gofer-api-version header
	// (the load balancer health check).
	noVersion bool
	// doc is the route's line in docs/api.md (what it does, its body and
	// answer); the route table there is generated from this table, so a
	// route cannot be added or changed without its documentation
	// (TestAPIRouteReference).
	doc string
	// internal routes are for the cluster's own nodes, not for clients;
	// docs/api.md marks them.
	internal bool
	// audit is how a mutating route's answers are audited (audit.go);
	// the zero value records every one.
	audit auditMode
}

// refs builds the resources of a namespaced route: the namespace from
// :ns, the pipeline from :pipeline when present, then the given kinds.
func refs(kinds ...string) func(c echo.Context) []resourceRef {
	return func(c echo.Context) []resourceRef {
		out := []resourceRef{{kind: "namespaces", target: c.Param("ns")}}
		if p := c.Param("pipeline"); p != "" {
			out = append(out, resourceRef{kind: "pipelines", target: p})
		}
		for _, k := range kinds {
			out = append(out, resourceRef{kind: k})
		}
		return out
	}
}

// kindsOnly builds resources with no namespace, for cluster-wide routes.
func kindsOnly(kinds ...string) func(c echo.Context) []resourceRef {
	return func(echo.Context) []resourceRef {
		out := make([]resourceRef, len(kinds))
		for i, k := range kinds {
			out[i] = resourceRef{kind: k}
		}
		return out
	}
}

// listOf is the resources of a list route: every kind with target "*".
func listOf(kinds ...string) func(c echo.Context) []resourceRef {
	return func(c echo.Context) []resourceRef {
		var out []resourceRef
		if ns := c.Param("ns"); ns != "" {
			out = append(out, resourceRef{kind: "namespaces", target: ns})
		}
		for _, k := range kinds {
			out = append(out, resourceRef{kind: k, target: anyTarget})
		}
		return out
	}
}

func can(action model.Action, res func(echo.Context) []resourceRef) access {
	return access{action: action, resources: res}
}

func adminOnly(action model.Action) access { return access{admin: true, action: action} }

var (
	read  = model.ActionRead
	write = model.ActionWrite
	del   = model.ActionDelete
)

// Path prefixes of the route table, shared with the OpenAPI shapes
// (openapi_routes.go) so both name a route the same way.
const (
	nsPath  = "/api/namespaces/:ns"
	pPath   = nsPath + "/pipelines/:pipeline"
	cfgPath = pPath + "/configs"
	depPath = pPath + "/deployments"
	runPath = pPath + "/runs/:run"
	tskPath = runPath + "/tasks/:task"
	secPath = pPath + "/secrets"
	objPath = pPath + "/objects"
	robPath = runPath + "/objects"
	glbPath = "/api/secrets/global"
	subPath = pPath + "/subscriptions"
	extPath = "/api/extensions/:extension"
	subItem = subPath + "/:extension/:subscription"
)

func (s *Server) routeTable() []route {
	return []route{
		// System.
		{method: http.MethodGet, path: "/api/system/health", handler: s.health, access: access{public: true}, noVersion: true, doc: "200 when this node knows a leader, else 503; no version header needed. `key_checks` (check values of the node's secret keys) only for an admin token or the cluster secret (`X-Gofer-Cluster-Secret`): a check value is a fast hash of a key"},
		// HEAD for load balancers' health checks: the GET answer without a
		// body (net/http drops it). Only here: on a streaming route HEAD
		// would hold the connection open with nothing to send.
		{method: http.MethodHead, path: "/api/system/health", handler: s.health, access: access{public: true}, noVersion: true, doc: "the GET answer without a body, for load balancers' health checks"},
		{method: http.MethodGet, path: "/api/system/metadata", handler: s.metadata, access: access{public: true}, doc: "the server's build: `{semver, commit}`, unwrapped"},
		{method: http.MethodGet, path: "/metrics", handler: s.serveMetrics, access: metricsAccess(s.opts.MetricsAccess), noVersion: true, doc: "this node's metrics in Prometheus' text format ([metrics.md](metrics.md)); any valid token by default, no token with `[metrics] access = \"open\"`, 404 with `access = \"listener\"` (served on `[metrics] listen` instead); no version header needed"},
		{method: http.MethodGet, path: "/api/system", handler: s.getSystem, access: can(read, kindsOnly("system")), doc: "cluster-wide settings, unwrapped: `{ignore_pipeline_run_events}`"},
		{method: http.MethodPatch, path: "/api/system", handler: s.updateSystem, access: adminOnly(write), doc: "`{ignore_pipeline_run_events}` turns event ingress (new runs) off or on; answers the settings"},
		// Encryption key rotation (docs/secrets-and-objects.md).
		{method: http.MethodPost, path: "/api/system/encryption-key/rotate", handler: s.rotateEncryptionKey, access: adminOnly(write), bodyLimit: maxRotateBody, doc: "`{abort}` → 202 with the rotation status: start re-sealing every secret under the leader's configured key, or roll a running rotation back ([secrets-and-objects.md](secrets-and-objects.md#rotating-the-encryption-key))"},
		{method: http.MethodGet, path: "/api/system/encryption-key/rotation", handler: s.getEncryptionKeyRotation, access: adminOnly(read), doc: "the rotation status `{rotation, key_check, remaining, total, node_key_checks}`"},

		// Namespaces.
		{method: http.MethodGet, path: "/api/namespaces", handler: s.listNamespaces, access: can(read, listOf("namespaces")), doc: "the namespaces the token may read"},
		{method: http.MethodPost, path: "/api/namespaces", handler: s.createNamespace, access: adminOnly(write), doc: "`{id, name, description}` → 201 `{\"namespace\": …}`"},
		{method: http.MethodGet, path: nsPath, handler: s.getNamespace, access: can(read, refs()), doc: "`{\"namespace\": …}`"},
		{method: http.MethodPatch, path: nsPath, handler: s.updateNamespace, access: adminOnly(write), doc: "`{name?, description?}` → 200 `{\"namespace\": …}`; `{}` writes nothing"},
		{method: http.MethodDelete, path: nsPath, handler: s.deleteNamespace, access: adminOnly(del), doc: "delete the namespace and every pipeline in it → 204"},

		// Pipelines.
		{method: http.MethodGet, path: nsPath + "/pipelines", handler: s.listPipelines, access: can(read, listOf("pipelines")), doc: "the namespace's pipelines the token may read"},
		{method: http.MethodGet, path: pPath, handler: s.getPipeline, access: can(read, refs()), doc: "`{\"pipeline\": …}`"},
		{method: http.MethodPatch, path: pPath, handler: s.updatePipeline, access: can(write, refs()), doc: "`{state: active|disabled}` → 204; a disabled pipeline refuses new runs"},
		{method: http.MethodDelete, path: pPath, handler: s.deletePipeline, access: can(del, refs()), doc: "delete the pipeline with all its versions → 204"},

		// Config versions and deployments.
		{method: http.MethodGet, path: cfgPath, handler: s.listConfigs, access: can(read, refs("configs")), doc: "the pipeline's registered config versions"},
		{method: http.MethodPost, path: cfgPath, handler: s.registerConfig, access: can(write, refs("configs")), doc: "`{\"config\": <pipeline JSON>}` registers version N+1 (creating the pipeline on its first) → 201 `{\"pipeline\": {\"metadata\", \"config\"}}`; 400 naming the task (`tasks[ID].image`) for an invalid image reference"},
		{method: http.MethodGet, path: cfgPath + "/:version", handler: s.getConfig, access: can(read, refs("configs")), doc: "one version; 0 means the newest"},
		{method: http.MethodPost, path: cfgPath + "/:version", handler: s.deployConfig, access: can(write, refs("deployments")), bodyLimit: maxDeployBody, doc: "deploy this version; no body (or `{\"strategy\": \"immediate\"}`) makes it live → 201 `{\"deployment\": …}`; `{\"strategy\": \"canary\", \"canary\": {canary_percent, canary_runs, canary_duration, max_failure_increase, max_p95_duration?}}` (durations as Go duration strings, `\"10m\"`) starts a canary: the live version stays live and new runs are split until the leader (or a human) decides; 409 while another canary of the pipeline runs, and 409 with `missing` when the canary version's tasks name secrets or objects that are not there ([releases.md](releases.md#canary-deployments))"},
		{method: http.MethodDelete, path: cfgPath + "/:version", handler: s.deleteConfig, access: can(del, refs("configs")), doc: "delete a version that is not live → 204"},
		{method: http.MethodGet, path: depPath, handler: s.listDeployments, access: can(read, refs("deployments")), doc: "the pipeline's deployments"},
		{method: http.MethodGet, path: depPath + "/:deployment", handler: s.getDeployment, access: can(read, refs("deployments")), doc: "`{\"deployment\": …}`"},
		{method: http.MethodPost, path: depPath + "/:deployment/promote", handler: s.decideDeployment(model.CanaryPromote), access: can(write, refs("deployments")), bodyLimit: maxDeployBody, doc: "`{reason?}` → 200 `{\"deployment\": …}`: make the canary's version live and end the canary; 409 once the canary is decided"},
		{method: http.MethodPost, path: depPath + "/:deployment/rollback", handler: s.decideDeployment(model.CanaryRollback), access: can(write, refs("deployments")), bodyLimit: maxDeployBody, doc: "`{reason?}` → 200 `{\"deployment\": …}`: end the canary, the stable version stays live; 409 once decided"},
		{method: http.MethodPost, path: depPath + "/:deployment/abort", handler: s.decideDeployment(model.CanaryAbort), access: can(write, refs("deployments")), bodyLimit: maxDeployBody, doc: "`{reason?}` → 200 `{\"deployment\": …}`: stop the canary without a verdict, the stable version stays live; 409 once decided"},

		// Runs, task executions and their logs.
		{method: http.MethodGet, path: pPath + "/runs", handler: s.listRuns, access: can(read, refs("runs")), doc: "the pipeline's runs"},
		{method: http.MethodPost, path: pPath + "/runs", handler: s.startRun, access: can(write, refs("runs")), doc: "`{\"variables\": {K: V}}` (optional) → 201 `{\"run\": …}`; with an extension's token an `Idempotency-Key` starting `interval:`, `cron:` or `github:` is a trigger key: one run per key per extension, 200 with the first run on a repeat ([triggers.md](triggers.md#at-most-one-run-per-key-g3)); 409 with `missing` (every secret and object its tasks name that is not there, each with the command that stores it)"},
		{method: http.MethodGet, path: runPath, handler: s.getRun, access: can(read, refs("runs")), doc: "`{\"run\": …}`"},
		{method: http.MethodDelete, path: runPath, handler: s.cancelRun, access: can(write, refs("runs")), doc: "cancel the run: its running tasks get SIGTERM, then SIGKILL → 204"},
		{method: http.MethodPost, path: runPath + "/retry", handler: s.retryRun, access: can(write, refs("runs")), doc: "start a new run with this run's variables; no body → 201 `{\"run\": …}`"},
		{method: http.MethodGet, path: runPath + "/tasks", handler: s.listTasks, access: can(read, refs("runs", "task_executions")), doc: "the run's task executions `{\"task_executions\": […]}` (default limit 1000: all of them)"},
		{method: http.MethodGet, path: tskPath, handler: s.getTask, access: can(read, refs("runs", "task_executions")), doc: "`{\"task_execution\": …}`"},
		{method: http.MethodDelete, path: tskPath, handler: s.cancelTask, access: can(write, refs("runs", "task_executions")), doc: "stop one task; `?wait_for=S` seconds between SIGTERM and SIGKILL → 204"},
		{method: http.MethodGet, path: tskPath + "/logs", handler: s.taskLogs, access: can(read, refs("runs", "task_executions")), doc: "the task's output as plain text; `?follow=true` streams until the task completes, `?offset=N` starts at byte N; framed with `Accept: text/event-stream` ([Follow streams](#follow-streams)); 410 once expired or deleted"},
		{method: http.MethodDelete, path: tskPath + "/logs", handler: s.deleteTaskLogs, access: can(del, refs("runs", "task_executions")), doc: "delete a finished task's stored output → 204"},

		// Pipeline secrets (sealed on the leader; plaintext only with
		// include_secret=true) and global secrets (admins only).
		{method: http.MethodGet, path: secPath, handler: s.listPipelineSecrets, access: can(read, refs("secrets")), doc: "the pipeline's secrets: keys and metadata, never values"},
		{method: http.MethodPost, path: secPath, handler: s.putPipelineSecret, access: can(write, refs("secrets")), doc: "`{key, content, force?}` → 201 `{\"secret\": …}`; an existing key is a 409 unless `force` ([secrets-and-objects.md](secrets-and-objects.md#api))"},
		{method: http.MethodGet, path: secPath + "/:key", handler: s.getPipelineSecret, access: can(read, refs("secrets")), doc: "`{\"metadata\": …, \"secret\": null}`; the plaintext with `?include_secret=true`"},
		{method: http.MethodDelete, path: secPath + "/:key", handler: s.deletePipelineSecret, access: can(del, refs("secrets")), doc: "→ 204"},
		{method: http.MethodGet, path: glbPath, handler: s.listGlobalSecrets, access: adminOnly(read), doc: "global secrets: keys and metadata, never values"},
		{method: http.MethodPost, path: glbPath, handler: s.putGlobalSecret, access: adminOnly(write), doc: "`{key, content, namespaces: [regex…], force?}` → 201 `{\"secret\": …}`; tasks in namespaces matching one of `namespaces` may use it"},
		{method: http.MethodGet, path: glbPath + "/:key", handler: s.getGlobalSecret, access: adminOnly(read), doc: "`{\"metadata\": …, \"secret\": null}`; the plaintext with `?include_secret=true`"},
		{method: http.MethodDelete, path: glbPath + "/:key", handler: s.deleteGlobalSecret, access: adminOnly(del), doc: "→ 204"},

		// Pipeline and run objects: raw bytes in and out.
		{method: http.MethodGet, path: objPath, handler: s.listObjects, access: can(read, refs("objects")), doc: "the pipeline's object keys"},
		{method: http.MethodGet, path: objPath + "/:key", handler: s.getObject, access: can(read, refs("objects")), doc: "the object's bytes (octet-stream)"},
		{method: http.MethodPost, path: objPath + "/:key", handler: s.putObject, access: can(write, refs("objects")), bodyLimit: -1, doc: "the raw request body → 201 `{\"object\": …}`; an existing key is a 409 unless `?force=true`; capped by `object_store.max_object_bytes`"},
		{method: http.MethodDelete, path: objPath + "/:key", handler: s.deleteObject, access: can(del, refs("objects")), doc: "→ 204"},
		{method: http.MethodGet, path: robPath, handler: s.listObjects, access: can(read, refs("runs", "objects")), doc: "the run's object keys"},
		{method: http.MethodGet, path: robPath + "/:key", handler: s.getObject, access: can(read, refs("runs", "objects")), doc: "the object's bytes (octet-stream)"},
		{method: http.MethodPost, path: robPath + "/:key", handler: s.putObject, access: can(write, refs("runs", "objects")), bodyLimit: -1, doc: "the raw request body → 201 `{\"object\": …}`; an existing key is a 409 unless `?force=true`; capped by `object_store.max_object_bytes`"},
		{method: http.MethodDelete, path: robPath + "/:key", handler: s.deleteObject, access: can(del, refs("runs", "objects")), doc: "→ 204"},

		// Pipeline subscriptions to extensions.
		{method: http.MethodGet, path: subPath, handler: s.listSubscriptions, access: can(read, refs("subscriptions")), doc: "the pipeline's subscriptions"},
		{method: http.MethodPost, path: subPath, handler: s.createSubscription, access: can(write, refs("subscriptions")), extensionWork: subscriptionLeaderWork, doc: "`{extension_id, subscription_id, settings: {K: V}}` → 201 `{\"subscription\": …}`; settings checked by the running extension (400 with its message; 503 while it is not running), the built-in interval and cron settings first by the API"},
		{method: http.MethodGet, path: subItem, handler: s.getSubscription, access: can(read, refs("subscriptions")), doc: "`{\"subscription\": …}` with its `watermark`"},
		{method: http.MethodPatch, path: subItem, handler: s.updateSubscription, access: can(write, refs("subscriptions")), extensionWork: subscriptionLeaderWork, doc: "`{status: active|disabled}` → 200 `{\"subscription\": …}`"},
		{method: http.MethodDelete, path: subItem, handler: s.deleteSubscription, access: can(del, refs("subscriptions")), extensionWork: subscriptionLeaderWork, doc: "unsubscribe → 204; the extension is told afterwards"},
		// A Gofer addition: the subscription's extension (or an admin)
		// records ticks it skipped.
		{method: http.MethodPost, path: subPath + "/:extension/:subscription/skipped-ticks", handler: s.recordSkippedTicks,
			access: access{admin: true, ownExtension: true, action: write}, bodyLimit: maxSkippedTicksBody, doc: "`{ticks, through?, reason}`: the ticks the subscription's extension skipped, recorded as `skipped_trigger_tick` events; moves the watermark ([triggers.md](triggers.md#skipped-ticks-are-events))"},

		// Extensions (the registration; agent/supervisor runs them).
		{method: http.MethodGet, path: "/api/extensions", handler: s.listExtensions, access: can(read, listOf("extensions")), doc: "installed extensions, each with the supervisor's observation (`state`, `state_reason`, `started`)"},
		{method: http.MethodPost, path: "/api/extensions", handler: s.installExtension, access: adminOnly(write), doc: "`{id, image, settings, registry_auth?, additional_roles?, pull?}` → 201 `{\"extension\": …, \"token\": {\"id\", \"secret\"}}` (the secret is shown once; a reinstall rotates it)"},
		{method: http.MethodGet, path: extPath, handler: s.getExtension, access: can(read, extensionRefs()), doc: "`{\"extension\": …}`"},
		{method: http.MethodPatch, path: extPath, handler: s.updateExtension, access: adminOnly(write), doc: "`{enable: bool}` → 200; a disabled extension's token may not start runs"},
		{method: http.MethodDelete, path: extPath, handler: s.uninstallExtension, access: adminOnly(del), doc: "uninstall: its role, token and subscriptions go → 204"},
		{method: http.MethodGet, path: extPath + "/subscriptions", handler: s.listExtensionSubscriptions, access: can(read, extensionRefs("subscriptions")), doc: "`{\"subscriptions\": […]}` to this extension across namespaces, filtered by what the token may read (the extension's own token may list them)"},
		// The extension's container output (supervisor; extension_logs.go).
		{method: http.MethodGet, path: extPath + "/logs", handler: s.extensionLogs, access: can(read, extensionRefs()), doc: "the container's output as plain text (`?follow=true` streams until it exits, `?offset=N` starts at byte N; framed with `Accept: text/event-stream`, see [Follow streams](#follow-streams)); any node answers from its own Docker engine; 404 when there is no container"},
		// The running extension's GET /api/debug: it runs on the leader.
		{method: http.MethodGet, path: extPath + "/debug", handler: s.debugExtension, access: adminOnly(read), leaderOnly: true, extensionWork: debugLeaderWork, doc: "runs on the leader: the running extension's `GET /api/debug` as `{\"info\": \"…\"}`; 404 not installed, 503 not running, 502 the extension failed"},

		// Tokens.
		{method: http.MethodGet, path: "/api/tokens", handler: s.listTokens, access: adminOnly(read), doc: "every token's details (never secrets)"},
		{method: http.MethodPost, path: "/api/tokens", handler: s.createToken, access: adminOnly(write), doc: "`{user, roles, expires?, metadata?}` → 201 `{\"token_details\": …, \"secret\": \"…\"}` (the secret is shown once)"},
		{method: http.MethodPost, path: "/api/tokens/bootstrap", handler: s.bootstrapToken, access: access{public: true}, doc: "create the first admin token; works once per cluster (409 after) → 201 `{\"token_details\": …, \"secret\": \"…\"}`"},
		{method: http.MethodGet, path: "/api/tokens/whoami", handler: s.whoami, access: access{authenticated: true}, doc: "the calling token's details"},
		{method: http.MethodGet, path: "/api/tokens/:id", handler: s.getToken, access: access{authenticated: true}, doc: "a token's details: your own with any token, others' with `tokens:read`"},
		{method: http.MethodPatch, path: "/api/tokens/:id", handler: s.updateToken, access: adminOnly(write), doc: "`{disabled: bool}` → 204; a token cannot disable itself"},
		{method: http.MethodDelete, path: "/api/tokens/:id", handler: s.deleteToken, access: adminOnly(del), doc: "→ 204"},

		// Roles.
		{method: http.MethodGet, path: "/api/roles", handler: s.listRoles, access: can(read, kindsOnly("permissions")), doc: "roles, the built-in ones included"},
		{method: http.MethodPost, path: "/api/roles", handler: s.createRole, access: adminOnly(write), doc: "`{id, description, permissions}` → 201 `{\"role\": …}`"},
		{method: http.MethodGet, path: "/api/roles/:id", handler: s.getRole, access: can(read, kindsOnly("permissions")), doc: "`{\"role\": …}`"},
		{method: http.MethodPatch, path: "/api/roles/:id", handler: s.updateRole, access: adminOnly(write), doc: "`{description?, permissions?}` → 200 `{\"role\": …}`; built-in roles cannot change"},
		{method: http.MethodDelete, path: "/api/roles/:id", handler: s.deleteRole, access: adminOnly(del), doc: "→ 204, also while tokens hold the role: they lose it ([auth.md](auth.md#roles))"},

		// Events.
		{method: http.MethodGet, path: "/api/events", handler: s.listEvents, access: can(read, kindsOnly("events")), doc: "`{\"events\": […]}`, only the events the token may read ([auth.md](auth.md#event-visibility)); `?kind=K` only those of kind K (`?kind=audit`: the audit log, [auth.md](auth.md#audit))"},
		{method: http.MethodGet, path: "/api/events/stream", handler: s.streamEvents, access: can(read, kindsOnly("events")), doc: "server-sent events, filtered like the list; `?history=true` replays stored events first, `Last-Event-ID` or `?after=N` resumes; `: keep-alive` while quiet"},
		{method: http.MethodGet, path: "/api/events/:id", handler: s.getEvent, access: can(read, kindsOnly("events")), doc: "`{\"event\": …}`; 404 for an event the token may not read"},
		{method: http.MethodDelete, path: "/api/events/:id", handler: s.deleteEvent, access: adminOnly(del), doc: "→ 204"},

		// The OpenAPI documents and their page (openapi_routes.go): public,
		// like the source they are generated from.
		{method: http.MethodGet, path: openAPIPath, handler: s.serveOpenAPI, access: access{public: true}, noVersion: true, doc: "this API as an OpenAPI 3 document ([OpenAPI](#openapi)); no version header needed"},
		{method: http.MethodGet, path: extensionOpenAPIPath, handler: s.serveExtensionOpenAPI, access: access{public: true}, noVersion: true, doc: "the extension contract (the API an extension serves) as an OpenAPI 3 document"},
		{method: http.MethodGet, path: docsPagePath, handler: s.serveDocsPage, access: access{public: true}, noVersion: true, doc: "the OpenAPI document as a self-contained HTML page (no scripts, nothing loaded from elsewhere)"},

		// Cluster operations.
		{method: http.MethodGet, path: "/api/cluster/members", handler: s.listMembers, access: adminOnly(read), doc: "the cluster's members and their health"},
		{method: http.MethodPost, path: "/api/cluster/members", handler: s.addMember, access: access{admin: true, clusterSecret: true, action: write}, doc: "`{id, raft_addr, api_addr, version}` → 200 `{\"member\": …}`: add a node (what a joining node sends, with the cluster secret)"},
		{method: http.MethodDelete, path: "/api/cluster/members/:id", handler: s.removeMember, access: adminOnly(del), doc: "remove a node from the cluster → 204"},
		{method: http.MethodPost, path: "/api/cluster/join", handler: s.joinCluster, access: access{public: true}, doc: "`{address}`: make this node join the cluster at address ([cluster.md](cluster.md)); a node already in a cluster needs an admin token, a fresh node passes the caller's token to the cluster it joins"},
		{method: http.MethodGet, path: "/api/cluster/snapshot", handler: s.saveSnapshot, access: adminOnly(read), leaderOnly: true, doc: "runs on the leader: download a backup of the whole state (octet-stream)"},
		{method: http.MethodPost, path: "/api/cluster/snapshot", handler: s.restoreSnapshot, access: adminOnly(write), bodyLimit: -1, doc: "restore a backup (octet-stream body, no limit); the whole file is verified first and a damaged one answers 400 naming what is wrong; format-1 backups need `?force_legacy=true` ([cluster.md](cluster.md))"},
		// An external event a follower's listener passes to the leader
		// (external.go); nodes prove the cluster secret.
		{method: http.MethodPost, path: internalEventPath + ":extension", handler: s.receiveEvent, access: access{admin: true, clusterSecret: true, action: write}, bodyLimit: MaxExternalEventBody,
			extensionWork: eventLeaderWork, internal: true, audit: auditSampled, doc: "an external event a follower's listener passes to the leader; raw body (≤ 25 MiB), the original headers in `X-Gofer-Event-Headers`; 503 + `Retry-After` when the leader already holds 32 events"},
		// Audit entries a node could not record itself (audit_relay.go);
		// nodes prove the cluster secret. A batch taken is not audited
		// itself (the entries it carries are the record).
		{method: http.MethodPost, path: auditRelayPath, handler: s.receiveAudit, access: access{admin: true, clusterSecret: true, action: write}, bodyLimit: maxAuditRelayBody,
			internal: true, audit: auditRelay, doc: "`{entries: [...]}` (at most 16): audit entries a follower answered, or a leader that stepped down still held, for the leader to record → 204. Cluster secret only: a token, admin too, gets 403"},
	}
}

// routes registers the route table with its middleware chain:
// audit (mutating routes) → version check → body limit → header-only auth → leader forwarding →
// auth → consistency.
func (s *Server) routes() {
	s.knownRoutes = map[string]struct{}{}
	for _, r := range s.routeTable() {
		var mws []echo.MiddlewareFunc
		if r.method != http.MethodGet && r.method != http.MethodHead {
			// First: every answer is audited, refusals included.
			mws = append(mws, s.auditMiddleware(r.access.public, r.audit))
		}
		if !r.noVersion {
			mws = append(mws, versionMiddleware)
		}
		limit := s.opts.MaxRequestBody
		if r.bodyLimit != 0 {
			limit = r.bodyLimit
		}
		leaderOnly := r.leaderOnly
		if r.method != http.MethodGet && r.method != http.MethodHead && r.path != "/api/cluster/join" {
			leaderOnly = true
		}
		// Public routes take no ?consistent or ?min_index: with no token
		// to check first, a wait or a forward there would let anyone hold
		// a connection or a forwarding slot.
		public := r.access.public
		needsLeader := func(c echo.Context) bool { return leaderOnly || (!public && wantsConsistent(c)) }
		forwarded := func(c echo.Context) bool { return needsLeader(c) && !s.cluster.IsLeader() }
		mws = append(mws, bodyLimitMiddleware(limit), s.preAuthMiddleware(r.access, forwarded))
		mws = append(mws, s.forward.middleware(needsLeader, leaderWork(r)))
		// Authentication before consistency: a request served here waits
		// (?min_index up to 60 s, ?consistent for a quorum) only once its
		// token is known; after the wait the route is authorized again
		// against the state at that index. Forwarded requests never reach
		// either: the leader runs the same chain.
		if public {
			mws = append(mws, s.readHeadersMiddleware)
		} else {
			mws = append(mws, s.authMiddleware(r.access), s.consistencyMiddleware, s.reauthorizeAfterWait(r.access))
		}
		if r.method != http.MethodGet && r.method != http.MethodHead {
			mws = append(mws, requestHashMiddleware)
		}
		s.echo.Add(r.method, r.path, r.handler, mws...)
		s.knownRoutes[r.path] = struct{}{}
	}
}

// leaderWork is how long the leader may work on a forwarded request of
// route r before it starts to answer, beyond its apply timeout: a snapshot
// is made or restored first, and ?min_index waits up to ?wait. A frozen,
// silent or deposed leader is still given up on as soon as this node stops
// following it or hearing from it (forward.go).
//
// Routes that call a running extension are given its call's bound too
// (route.extensionWork): an external event passed on by a follower, a
// subscription write, the extension's debug dump.
func leaderWork(r route) func(c echo.Context) time.Duration {
	fixed := fixedLeaderWork(r)
	if r.path == "/api/cluster/snapshot" {
		return func(echo.Context) time.Duration { return fixed }
	}
	return func(c echo.Context) time.Duration { return fixed + minIndexWork(c) }
}

// fixedLeaderWork is route r's leader work without a ?min_index wait.
func fixedLeaderWork(r route) time.Duration {
	if r.path == "/api/cluster/snapshot" {
		return snapshotLeaderWork
	}
	return r.extensionWork
}

// minIndexWork is a ?min_index request's wait on the leader.
func minIndexWork(c echo.Context) time.Duration {
	if c.QueryParam("min_index") == "" {
		return 0
	}
	if d, err := time.ParseDuration(c.QueryParam("wait")); err == nil && d > 0 {
		return min(d, maxMinIndexWait)
	}
	return defaultMinIndexWait
}

// Leader work of the routes that call a running extension (see leaderWork).
const (
	// eventLeaderWork: the extension's external-event call.
	eventLeaderWork = extcall.DefaultEventTimeout
	// subscriptionLeaderWork: a subscription write may wait for the
	// subscription's lock, held through a queued unsubscribe, then make
	// its own subscribe call.
	subscriptionLeaderWork = unsubscribeTimeout + extcall.DefaultCallTimeout
	// debugLeaderWork: the extension's debug call.
	debugLeaderWork = extcall.DefaultCallTimeout
)

// defaultForwardHold is how long a request waits for a leader to be known
// (Options.ForwardHold) unless set otherwise.
const defaultForwardHold = 5 * time.Second

// snapshotLeaderWork bounds a snapshot save or restore on the leader (the
// restore handler's own limit).
const snapshotLeaderWork = 10 * time.Minute

// RouteInfo describes a route for tests that must cover every route.
type RouteInfo struct {
	Method string
	Path   string
	// Public routes need no token; Admin routes need an admin role.
	Public bool
	Admin  bool
	Action string
	// Internal routes are for the cluster's own nodes, not for clients.
	Internal bool
	// AnswerWithin is how long a node may take, at most, to start
	// answering a request of this route without ?min_index: waiting for a
	// leader, the leader's apply timeout and its other work (a snapshot,
	// an extension's call). A client that gives up on an answer sooner
	// cuts requests the server still means to answer (the CLI's answer
	// timeout is checked against it).
	AnswerWithin time.Duration
}

// Routes lists the route table.
func Routes() []RouteInfo {
	var out []RouteInfo
	for _, r := range (&Server{}).routeTable() {
		out = append(out, RouteInfo{Method: r.method, Path: r.path, Public: r.access.public, Admin: r.access.admin, Action: string(r.access.action),
			Internal: r.internal, AnswerWithin: defaultForwardHold + applyTimeout + fixedLeaderWork(r)})
	}
	return out
}
