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

func (s *Server) routeTable() []route {
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
	)
	return []route{
		// System.
		{method: http.MethodGet, path: "/api/system/health", handler: s.health, access: access{public: true}, noVersion: true},
		// HEAD for load balancers' health checks: the GET answer without a
		// body (net/http drops it). Only here: on a streaming route HEAD
		// would hold the connection open with nothing to send.
		{method: http.MethodHead, path: "/api/system/health", handler: s.health, access: access{public: true}, noVersion: true},
		{method: http.MethodGet, path: "/api/system/metadata", handler: s.metadata, access: access{public: true}},
		{method: http.MethodGet, path: "/api/system", handler: s.getSystem, access: can(read, kindsOnly("system"))},
		{method: http.MethodPatch, path: "/api/system", handler: s.updateSystem, access: adminOnly(write)},
		// Encryption key rotation (docs/secrets-and-objects.md).
		{method: http.MethodPost, path: "/api/system/encryption-key/rotate", handler: s.rotateEncryptionKey, access: adminOnly(write), bodyLimit: maxRotateBody},
		{method: http.MethodGet, path: "/api/system/encryption-key/rotation", handler: s.getEncryptionKeyRotation, access: adminOnly(read)},

		// Namespaces.
		{method: http.MethodGet, path: "/api/namespaces", handler: s.listNamespaces, access: can(read, listOf("namespaces"))},
		{method: http.MethodPost, path: "/api/namespaces", handler: s.createNamespace, access: adminOnly(write)},
		{method: http.MethodGet, path: nsPath, handler: s.getNamespace, access: can(read, refs())},
		{method: http.MethodPatch, path: nsPath, handler: s.updateNamespace, access: adminOnly(write)},
		{method: http.MethodDelete, path: nsPath, handler: s.deleteNamespace, access: adminOnly(del)},

		// Pipelines.
		{method: http.MethodGet, path: nsPath + "/pipelines", handler: s.listPipelines, access: can(read, listOf("pipelines"))},
		{method: http.MethodGet, path: pPath, handler: s.getPipeline, access: can(read, refs())},
		{method: http.MethodPatch, path: pPath, handler: s.updatePipeline, access: can(write, refs())},
		{method: http.MethodDelete, path: pPath, handler: s.deletePipeline, access: can(del, refs())},

		// Config versions and deployments.
		{method: http.MethodGet, path: cfgPath, handler: s.listConfigs, access: can(read, refs("configs"))},
		{method: http.MethodPost, path: cfgPath, handler: s.registerConfig, access: can(write, refs("configs"))},
		{method: http.MethodGet, path: cfgPath + "/:version", handler: s.getConfig, access: can(read, refs("configs"))},
		{method: http.MethodPost, path: cfgPath + "/:version", handler: s.deployConfig, access: can(write, refs("deployments"))},
		{method: http.MethodDelete, path: cfgPath + "/:version", handler: s.deleteConfig, access: can(del, refs("configs"))},
		{method: http.MethodGet, path: depPath, handler: s.listDeployments, access: can(read, refs("deployments"))},
		{method: http.MethodGet, path: depPath + "/:deployment", handler: s.getDeployment, access: can(read, refs("deployments"))},

		// Runs, task executions and their logs.
		{method: http.MethodGet, path: pPath + "/runs", handler: s.listRuns, access: can(read, refs("runs"))},
		{method: http.MethodPost, path: pPath + "/runs", handler: s.startRun, access: can(write, refs("runs"))},
		{method: http.MethodGet, path: runPath, handler: s.getRun, access: can(read, refs("runs"))},
		{method: http.MethodDelete, path: runPath, handler: s.cancelRun, access: can(write, refs("runs"))},
		{method: http.MethodPost, path: runPath + "/retry", handler: s.retryRun, access: can(write, refs("runs"))},
		{method: http.MethodGet, path: runPath + "/tasks", handler: s.listTasks, access: can(read, refs("runs", "task_executions"))},
		{method: http.MethodGet, path: tskPath, handler: s.getTask, access: can(read, refs("runs", "task_executions"))},
		{method: http.MethodDelete, path: tskPath, handler: s.cancelTask, access: can(write, refs("runs", "task_executions"))},
		{method: http.MethodGet, path: tskPath + "/logs", handler: s.taskLogs, access: can(read, refs("runs", "task_executions"))},
		{method: http.MethodDelete, path: tskPath + "/logs", handler: s.deleteTaskLogs, access: can(del, refs("runs", "task_executions"))},

		// Pipeline secrets (sealed on the leader; plaintext only with
		// include_secret=true) and global secrets (admins only).
		{method: http.MethodGet, path: secPath, handler: s.listPipelineSecrets, access: can(read, refs("secrets"))},
		{method: http.MethodPost, path: secPath, handler: s.putPipelineSecret, access: can(write, refs("secrets"))},
		{method: http.MethodGet, path: secPath + "/:key", handler: s.getPipelineSecret, access: can(read, refs("secrets"))},
		{method: http.MethodDelete, path: secPath + "/:key", handler: s.deletePipelineSecret, access: can(del, refs("secrets"))},
		{method: http.MethodGet, path: glbPath, handler: s.listGlobalSecrets, access: adminOnly(read)},
		{method: http.MethodPost, path: glbPath, handler: s.putGlobalSecret, access: adminOnly(write)},
		{method: http.MethodGet, path: glbPath + "/:key", handler: s.getGlobalSecret, access: adminOnly(read)},
		{method: http.MethodDelete, path: glbPath + "/:key", handler: s.deleteGlobalSecret, access: adminOnly(del)},

		// Pipeline and run objects: raw bytes in and out.
		{method: http.MethodGet, path: objPath, handler: s.listObjects, access: can(read, refs("objects"))},
		{method: http.MethodGet, path: objPath + "/:key", handler: s.getObject, access: can(read, refs("objects"))},
		{method: http.MethodPost, path: objPath + "/:key", handler: s.putObject, access: can(write, refs("objects")), bodyLimit: -1},
		{method: http.MethodDelete, path: objPath + "/:key", handler: s.deleteObject, access: can(del, refs("objects"))},
		{method: http.MethodGet, path: robPath, handler: s.listObjects, access: can(read, refs("runs", "objects"))},
		{method: http.MethodGet, path: robPath + "/:key", handler: s.getObject, access: can(read, refs("runs", "objects"))},
		{method: http.MethodPost, path: robPath + "/:key", handler: s.putObject, access: can(write, refs("runs", "objects")), bodyLimit: -1},
		{method: http.MethodDelete, path: robPath + "/:key", handler: s.deleteObject, access: can(del, refs("runs", "objects"))},

		// Pipeline subscriptions to extensions.
		{method: http.MethodGet, path: subPath, handler: s.listSubscriptions, access: can(read, refs("subscriptions"))},
		{method: http.MethodPost, path: subPath, handler: s.createSubscription, access: can(write, refs("subscriptions")), extensionWork: subscriptionLeaderWork},
		{method: http.MethodGet, path: subPath + "/:extension/:subscription", handler: s.getSubscription, access: can(read, refs("subscriptions"))},
		{method: http.MethodPatch, path: subPath + "/:extension/:subscription", handler: s.updateSubscription, access: can(write, refs("subscriptions")), extensionWork: subscriptionLeaderWork},
		{method: http.MethodDelete, path: subPath + "/:extension/:subscription", handler: s.deleteSubscription, access: can(del, refs("subscriptions")), extensionWork: subscriptionLeaderWork},
		// A Gofer addition: the subscription's extension (or an admin)
		// records ticks it skipped.
		{method: http.MethodPost, path: subPath + "/:extension/:subscription/skipped-ticks", handler: s.recordSkippedTicks,
			access: access{admin: true, ownExtension: true, action: write}, bodyLimit: maxSkippedTicksBody},

		// Extensions (the registration; agent/supervisor runs them).
		{method: http.MethodGet, path: "/api/extensions", handler: s.listExtensions, access: can(read, listOf("extensions"))},
		{method: http.MethodPost, path: "/api/extensions", handler: s.installExtension, access: adminOnly(write)},
		{method: http.MethodGet, path: extPath, handler: s.getExtension, access: can(read, extensionRefs())},
		{method: http.MethodPatch, path: extPath, handler: s.updateExtension, access: adminOnly(write)},
		{method: http.MethodDelete, path: extPath, handler: s.uninstallExtension, access: adminOnly(del)},
		{method: http.MethodGet, path: extPath + "/subscriptions", handler: s.listExtensionSubscriptions, access: can(read, extensionRefs("subscriptions"))},
		// The extension's container output (supervisor; extension_logs.go).
		{method: http.MethodGet, path: extPath + "/logs", handler: s.extensionLogs, access: can(read, extensionRefs())},
		// The running extension's GET /api/debug: it runs on the leader.
		{method: http.MethodGet, path: extPath + "/debug", handler: s.debugExtension, access: adminOnly(read), leaderOnly: true, extensionWork: debugLeaderWork},

		// Tokens.
		{method: http.MethodGet, path: "/api/tokens", handler: s.listTokens, access: adminOnly(read)},
		{method: http.MethodPost, path: "/api/tokens", handler: s.createToken, access: adminOnly(write)},
		{method: http.MethodPost, path: "/api/tokens/bootstrap", handler: s.bootstrapToken, access: access{public: true}},
		{method: http.MethodGet, path: "/api/tokens/whoami", handler: s.whoami, access: access{authenticated: true}},
		{method: http.MethodGet, path: "/api/tokens/:id", handler: s.getToken, access: access{authenticated: true}},
		{method: http.MethodPatch, path: "/api/tokens/:id", handler: s.updateToken, access: adminOnly(write)},
		{method: http.MethodDelete, path: "/api/tokens/:id", handler: s.deleteToken, access: adminOnly(del)},

		// Roles.
		{method: http.MethodGet, path: "/api/roles", handler: s.listRoles, access: can(read, kindsOnly("permissions"))},
		{method: http.MethodPost, path: "/api/roles", handler: s.createRole, access: adminOnly(write)},
		{method: http.MethodGet, path: "/api/roles/:id", handler: s.getRole, access: can(read, kindsOnly("permissions"))},
		{method: http.MethodPatch, path: "/api/roles/:id", handler: s.updateRole, access: adminOnly(write)},
		{method: http.MethodDelete, path: "/api/roles/:id", handler: s.deleteRole, access: adminOnly(del)},

		// Events.
		{method: http.MethodGet, path: "/api/events", handler: s.listEvents, access: can(read, kindsOnly("events"))},
		{method: http.MethodGet, path: "/api/events/stream", handler: s.streamEvents, access: can(read, kindsOnly("events"))},
		{method: http.MethodGet, path: "/api/events/:id", handler: s.getEvent, access: can(read, kindsOnly("events"))},
		{method: http.MethodDelete, path: "/api/events/:id", handler: s.deleteEvent, access: adminOnly(del)},

		// Cluster operations.
		{method: http.MethodGet, path: "/api/cluster/members", handler: s.listMembers, access: adminOnly(read)},
		{method: http.MethodPost, path: "/api/cluster/members", handler: s.addMember, access: access{admin: true, clusterSecret: true, action: write}},
		{method: http.MethodDelete, path: "/api/cluster/members/:id", handler: s.removeMember, access: adminOnly(del)},
		{method: http.MethodPost, path: "/api/cluster/join", handler: s.joinCluster, access: access{public: true}},
		{method: http.MethodGet, path: "/api/cluster/snapshot", handler: s.saveSnapshot, access: adminOnly(read), leaderOnly: true},
		{method: http.MethodPost, path: "/api/cluster/snapshot", handler: s.restoreSnapshot, access: adminOnly(write), bodyLimit: -1},
		// An external event a follower's listener passes to the leader
		// (external.go); nodes prove the cluster secret.
		{method: http.MethodPost, path: internalEventPath + ":extension", handler: s.receiveEvent, access: access{admin: true, clusterSecret: true, action: write}, bodyLimit: MaxExternalEventBody,
			extensionWork: eventLeaderWork},
	}
}

// routes registers the route table with its middleware chain:
// version check → body limit → header-only auth → leader forwarding →
// auth → consistency.
func (s *Server) routes() {
	for _, r := range s.routeTable() {
		var mws []echo.MiddlewareFunc
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
	if r.extensionWork > 0 {
		return func(c echo.Context) time.Duration { return r.extensionWork + minIndexWork(c) }
	}
	if r.path == "/api/cluster/snapshot" {
		return func(echo.Context) time.Duration { return snapshotLeaderWork }
	}
	return minIndexWork
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
}

// Routes lists the route table.
func Routes() []RouteInfo {
	var out []RouteInfo
	for _, r := range (&Server{}).routeTable() {
		out = append(out, RouteInfo{Method: r.method, Path: r.path, Public: r.access.public, Admin: r.access.admin, Action: string(r.access.action)})
	}
	return out
}
