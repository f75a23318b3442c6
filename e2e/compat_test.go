package e2e

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"testing"
)

// The compatibility test checks every route that upstream Gofer also has
// against upstream's contract, restated here from its OpenAPI description
// (not from our route table): the method and path, the status of the
// success case, the top-level key the answer is wrapped in, the fields the
// returned object must have, and the spellings of its states. Clients
// generated from upstream's description (its CLI among them) fail on
// another status or a missing field, so these are kept exactly.
//
// The requests are the authorization matrix's (authzCases), sent with the
// admin token against its fixture, so each route's request is written
// once.

// compatCase is upstream's contract for one route.
type compatCase struct {
	method, path string
	// status is what upstream answers the success case (the second
	// bootstrap: 409).
	status int
	// wrap is the top-level key holding the object ("" for an answer
	// that is not wrapped: its fields are top-level).
	wrap string
	// list: wrap holds a list; every element is checked (the fixture
	// makes each list non-empty).
	list bool
	// fields are upstream's required fields of the object.
	fields []string
	// enums are the only values upstream knows for these fields.
	enums map[string][]string
	// noJSON: upstream answers raw bytes or an empty body.
	noJSON bool
	// check looks closer at the object (variables' shape).
	check func(t *testing.T, obj map[string]any)
}

// Upstream's required fields of each object (its OpenAPI schemas).
var (
	compatNamespace  = []string{"created", "description", "id", "modified", "name"}
	compatPipeline   = []string{"created", "modified", "namespace_id", "pipeline_id", "state"}
	compatConfig     = []string{"deprecated", "description", "name", "namespace_id", "parallelism", "pipeline_id", "registered", "state", "tasks", "version"}
	compatDeployment = []string{"deployment_id", "end_version", "ended", "logs", "namespace_id", "pipeline_id", "start_version", "started", "state", "status"}
	compatRun        = []string{"ended", "initiator", "namespace_id", "pipeline_config_version", "pipeline_id", "run_id", "started", "state", "status", "store_objects_expired", "variables"}
	compatTask       = []string{"created", "ended", "logs_expired", "logs_removed", "namespace_id", "pipeline_id", "run_id", "started", "state", "status", "task", "task_id", "variables"}
	compatObject     = []string{"created", "key"}
	compatSecret     = []string{"created", "key", "namespaces"}
	compatToken      = []string{"created", "disabled", "expires", "id", "metadata", "roles", "user"}
	compatRole       = []string{"description", "id", "permissions", "system_role"}
	compatEvent      = []string{"emitted", "id", "kind"}
	// What upstream's bundled extensions read back at boot.
	compatSubscription = []string{"extension_id", "namespace_id", "pipeline_id", "settings", "status", "status_reason", "subscription_id"}
	compatTaskConfig   = []string{"always_pull_newest_image", "depends_on", "description", "id", "image", "inject_api_token", "variables"}

	// Upstream's enum spellings (snake_case), except deployments: upstream
	// writes them PascalCase for want of a serde rename, we lower-case them
	// like every other state (docs/api.md, "Shaped differently").
	compatPipelineEnums     = map[string][]string{"state": {"unknown", "active", "disabled"}}
	compatConfigEnums       = map[string][]string{"state": {"unknown", "unreleased", "live", "deprecated"}}
	compatDeploymentEnums   = map[string][]string{"state": {"unknown", "running", "complete"}, "status": {"unknown", "failed", "successful"}}
	compatRunEnums          = map[string][]string{"state": {"unknown", "pending", "running", "complete"}, "status": {"unknown", "failed", "successful", "cancelled"}}
	compatSubscriptionEnums = map[string][]string{"status": {"unknown", "active", "error", "disabled"}}
	compatTaskEnums         = map[string][]string{"state": {"unknown", "processing", "waiting", "running", "complete"}, "status": {"unknown", "failed", "successful", "cancelled", "skipped"}}
	compatVariableSources   = []string{"unknown", "pipeline_config", "system", "run_options", "extension"}
	compatParentStatuses    = []string{"unknown", "any", "success", "failure"}
)

// compatOursOnly are routes upstream does not have: they answer as
// docs/api.md says, and this test does not hold them to anything.
var compatOursOnly = []string{
	"GET /api/system/health",  // load balancers' health check
	"HEAD /api/system/health", // the same without a body
	"GET /metrics",            // Prometheus metrics (docs/metrics.md)
	"POST /api/system/encryption-key/rotate",
	"GET /api/system/encryption-key/rotation",
	// The OpenAPI documents and their page (docs/api.md, "OpenAPI").
	"GET /api/docs/openapi.json",
	"GET /api/docs/extension-openapi.json",
	"GET /api/docs",
	"POST /api/namespaces/:ns/pipelines/:pipeline/runs/:run/retry",
	// Canary decisions (docs/releases.md): upstream only flips versions.
	"POST /api/namespaces/:ns/pipelines/:pipeline/deployments/:deployment/promote",
	"POST /api/namespaces/:ns/pipelines/:pipeline/deployments/:deployment/rollback",
	"POST /api/namespaces/:ns/pipelines/:pipeline/deployments/:deployment/abort",
	"GET /api/events/stream", // upstream streams events over a WebSocket at /api/events
	"GET /api/cluster/members",
	"POST /api/cluster/members",
	"DELETE /api/cluster/members/:id",
	"POST /api/cluster/join",
	"GET /api/cluster/snapshot",
	"POST /api/cluster/snapshot",
	"POST /api/cluster/external-events/:extension", // a follower passes an external event to the leader
	"POST /api/cluster/audit",                      // a node passes audit entries to the leader
	// Trigger extensions report skipped ticks (docs/triggers.md).
	"POST /api/namespaces/:ns/pipelines/:pipeline/subscriptions/:extension/:subscription/skipped-ticks",
	// Upstream answers the extension routes from its in-memory table of
	// running extensions ({registration, url, started, state,
	// documentation}); we answer the replicated registration with the
	// supervisor's state, started and documentation beside it
	// (docs/api.md, "Extensions").
	"GET /api/extensions",
	"POST /api/extensions",
	"GET /api/extensions/:extension",
	"PATCH /api/extensions/:extension",
	"DELETE /api/extensions/:extension",
	// Upstream streamed an extension's logs over a WebSocket; we serve
	// plain chunked text like task logs (docs/api.md).
	"GET /api/extensions/:extension/logs",
}

func compatCases() []compatCase {
	const (
		ns   = "/api/namespaces/:ns"
		pipe = ns + "/pipelines/:pipeline"
		run  = pipe + "/runs/:run"
		task = run + "/tasks/:task"
	)
	return []compatCase{
		{method: "GET", path: pipe + "/subscriptions", status: 200, wrap: "subscriptions", list: true, fields: compatSubscription, enums: compatSubscriptionEnums},
		{method: "POST", path: pipe + "/subscriptions", status: 201, wrap: "subscription", fields: compatSubscription, enums: compatSubscriptionEnums},
		{method: "GET", path: pipe + "/subscriptions/:extension/:subscription", status: 200, wrap: "subscription", fields: compatSubscription, enums: compatSubscriptionEnums},
		{method: "PATCH", path: pipe + "/subscriptions/:extension/:subscription", status: 200},
		{method: "DELETE", path: pipe + "/subscriptions/:extension/:subscription", status: 204, noJSON: true},
		{method: "GET", path: "/api/extensions/:extension/subscriptions", status: 200, wrap: "subscriptions", list: true, fields: compatSubscription, enums: compatSubscriptionEnums},
		{method: "GET", path: "/api/extensions/:extension/debug", status: 200, fields: []string{"info"}},

		{method: "GET", path: "/api/system/metadata", status: 200, fields: []string{"commit", "semver"}},
		{method: "GET", path: "/api/system", status: 200, fields: []string{"bootstrap_token_created", "ignore_pipeline_run_events"}},
		{method: "PATCH", path: "/api/system", status: 200}, // upstream: {}

		{method: "GET", path: "/api/namespaces", status: 200, wrap: "namespaces", list: true, fields: compatNamespace},
		{method: "POST", path: "/api/namespaces", status: 201, wrap: "namespace", fields: compatNamespace},
		{method: "GET", path: ns, status: 200, wrap: "namespace", fields: compatNamespace},
		{method: "PATCH", path: ns, status: 200, wrap: "namespace", fields: compatNamespace},
		{method: "DELETE", path: ns, status: 204, noJSON: true},

		{method: "GET", path: ns + "/pipelines", status: 200, wrap: "pipelines", list: true, fields: compatPipeline, enums: compatPipelineEnums},
		{method: "GET", path: pipe, status: 200, wrap: "pipeline", fields: compatPipeline, enums: compatPipelineEnums},
		{method: "PATCH", path: pipe, status: 204, noJSON: true},
		{method: "DELETE", path: pipe, status: 204, noJSON: true},

		{method: "GET", path: pipe + "/configs", status: 200, wrap: "configs", list: true, fields: compatConfig, enums: compatConfigEnums, check: compatConfigTasks},
		{method: "POST", path: pipe + "/configs", status: 201, wrap: "pipeline", fields: []string{"metadata", "config"},
			check: func(t *testing.T, obj map[string]any) {
				compatObjectHas(t, "pipeline.metadata", obj["metadata"], compatPipeline, compatPipelineEnums)
				if compatObjectHas(t, "pipeline.config", obj["config"], compatConfig, compatConfigEnums) {
					compatConfigTasks(t, obj["config"].(map[string]any))
				}
			}},
		{method: "GET", path: pipe + "/configs/:version", status: 200, wrap: "config", fields: compatConfig, enums: compatConfigEnums, check: compatConfigTasks},
		{method: "POST", path: pipe + "/configs/:version", status: 201, wrap: "deployment", fields: compatDeployment, enums: compatDeploymentEnums},
		{method: "DELETE", path: pipe + "/configs/:version", status: 204, noJSON: true},
		{method: "GET", path: pipe + "/deployments", status: 200, wrap: "deployments", list: true, fields: compatDeployment, enums: compatDeploymentEnums},
		{method: "GET", path: pipe + "/deployments/:deployment", status: 200, wrap: "deployment", fields: compatDeployment, enums: compatDeploymentEnums},

		{method: "GET", path: pipe + "/runs", status: 200, wrap: "runs", list: true, fields: compatRun, enums: compatRunEnums, check: compatVariables("")},
		// The authz request starts the run with {"variables":{"FROM":"authz"}}.
		{method: "POST", path: pipe + "/runs", status: 201, wrap: "run", fields: compatRun, enums: compatRunEnums, check: func(t *testing.T, obj map[string]any) {
			compatVariables("")(t, obj)
			want := []any{map[string]any{"key": "FROM", "value": "authz", "source": "run_options"}}
			if got, _ := json.Marshal(obj["variables"]); string(got) != string(mustJSON(t, want)) {
				t.Errorf("variables: got %s, want %s", got, mustJSON(t, want))
			}
		}},
		{method: "GET", path: run, status: 200, wrap: "run", fields: compatRun, enums: compatRunEnums, check: compatVariables("")},
		{method: "DELETE", path: run, status: 204, noJSON: true},
		{method: "GET", path: run + "/tasks", status: 200, wrap: "task_executions", list: true, fields: compatTask, enums: compatTaskEnums, check: compatTaskExecution},
		{method: "GET", path: task, status: 200, wrap: "task_execution", fields: compatTask, enums: compatTaskEnums, check: compatTaskExecution},
		{method: "DELETE", path: task, status: 204, noJSON: true},
		// Upstream streams logs over a WebSocket; here they are plain text
		// (docs/api.md, "Differences from upstream").
		{method: "GET", path: task + "/logs", status: 200, noJSON: true},
		{method: "DELETE", path: task + "/logs", status: 204, noJSON: true},

		{method: "GET", path: pipe + "/secrets", status: 200, wrap: "secrets", list: true, fields: compatSecret},
		{method: "POST", path: pipe + "/secrets", status: 201, wrap: "secret", fields: compatSecret},
		{method: "GET", path: pipe + "/secrets/:key", status: 200, fields: []string{"metadata", "secret"}, check: compatSecretValue},
		{method: "DELETE", path: pipe + "/secrets/:key", status: 204, noJSON: true},
		{method: "GET", path: "/api/secrets/global", status: 200, wrap: "secrets", list: true, fields: compatSecret},
		{method: "POST", path: "/api/secrets/global", status: 201, wrap: "secret", fields: compatSecret},
		{method: "GET", path: "/api/secrets/global/:key", status: 200, fields: []string{"metadata", "secret"}, check: compatSecretValue},
		{method: "DELETE", path: "/api/secrets/global/:key", status: 204, noJSON: true},

		{method: "GET", path: pipe + "/objects", status: 200, wrap: "objects", list: true, fields: compatObject},
		{method: "GET", path: pipe + "/objects/:key", status: 200, noJSON: true},
		{method: "POST", path: pipe + "/objects/:key", status: 201, wrap: "object", fields: compatObject},
		{method: "DELETE", path: pipe + "/objects/:key", status: 204, noJSON: true},
		{method: "GET", path: run + "/objects", status: 200, wrap: "objects", list: true, fields: compatObject},
		{method: "GET", path: run + "/objects/:key", status: 200, noJSON: true},
		{method: "POST", path: run + "/objects/:key", status: 201, wrap: "object", fields: compatObject},
		{method: "DELETE", path: run + "/objects/:key", status: 204, noJSON: true},

		{method: "GET", path: "/api/tokens", status: 200, wrap: "tokens", list: true, fields: compatToken},
		{method: "POST", path: "/api/tokens", status: 201, fields: []string{"secret", "token_details"},
			check: func(t *testing.T, obj map[string]any) {
				compatObjectHas(t, "token_details", obj["token_details"], compatToken, nil)
			}},
		{method: "POST", path: "/api/tokens/bootstrap", status: 409}, // the second bootstrap
		{method: "GET", path: "/api/tokens/whoami", status: 200, wrap: "token", fields: compatToken},
		{method: "GET", path: "/api/tokens/:id", status: 200, wrap: "token", fields: compatToken},
		{method: "PATCH", path: "/api/tokens/:id", status: 204, noJSON: true},
		{method: "DELETE", path: "/api/tokens/:id", status: 204, noJSON: true},

		{method: "GET", path: "/api/roles", status: 200, wrap: "roles", list: true, fields: compatRole},
		{method: "POST", path: "/api/roles", status: 201, wrap: "role", fields: compatRole},
		{method: "GET", path: "/api/roles/:id", status: 200, wrap: "role", fields: compatRole},
		{method: "PATCH", path: "/api/roles/:id", status: 200, wrap: "role", fields: compatRole},
		{method: "DELETE", path: "/api/roles/:id", status: 204, noJSON: true},

		// Upstream's GET /api/events is a WebSocket stream; here it is a
		// page of events (the stream is /api/events/stream).
		{method: "GET", path: "/api/events", status: 200, wrap: "events", list: true, fields: compatEvent},
		{method: "GET", path: "/api/events/:id", status: 200, wrap: "event", fields: compatEvent},
		{method: "DELETE", path: "/api/events/:id", status: 204, noJSON: true},
	}
}

// TestCompatRouteTableCovered fails when a route of the API has no
// compatibility case and is not listed as ours only, or when a case names
// a route that does not exist.
func TestCompatRouteTableCovered(t *testing.T) {
	compatCheckCoverage(t)
}

func compatCheckCoverage(t *testing.T) {
	t.Helper()
	known := map[string]bool{}
	for _, c := range compatCases() {
		key := c.method + " " + c.path
		if known[key] {
			t.Errorf("compatCases lists %s twice", key)
		}
		known[key] = true
	}
	for _, key := range compatOursOnly {
		if known[key] {
			t.Errorf("%s is both in compatCases and in compatOursOnly", key)
		}
		known[key] = true
	}
	checkRoutesCovered(t, known, "has no compatibility case: add upstream's contract to compatCases in e2e/compat_test.go, or list it in compatOursOnly if upstream has no such route", nil)
}

// TestCompatUpstreamContract sends every shared route's success request
// and checks the status, the wrapper, the fields and the enum spellings.
func TestCompatUpstreamContract(t *testing.T) {
	compatCheckCoverage(t)
	f := authzSetup(t)
	reqs := map[string]authzCase{}
	for _, c := range authzCases() {
		reqs[c.method+" "+c.path] = c
	}
	admin := "Bearer " + f.secrets["admin"]
	for _, c := range compatCases() {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			ac, ok := reqs[c.method+" "+c.path]
			if !ok {
				t.Fatalf("no request for %s %s in authzCases", c.method, c.path)
			}
			path, body := ac.req(t, f)
			resp, err := authzSend(c.method, f.url+path, admin, body)
			if err != nil {
				t.Fatalf("%s %s: %v", c.method, path, err)
			}
			if resp.status != c.status {
				t.Fatalf("%s %s: got %d, upstream answers %d; body: %s", c.method, path, resp.status, c.status, authzClip(resp.body))
			}
			if c.noJSON || c.status >= 400 {
				if c.status == 204 && len(resp.body) != 0 {
					t.Errorf("%s %s: 204 with a body: %s", c.method, path, authzClip(resp.body))
				}
				return
			}
			var top map[string]any
			if err := json.Unmarshal(resp.body, &top); err != nil {
				t.Fatalf("%s %s: the answer is not a JSON object: %v; body: %s", c.method, path, err, authzClip(resp.body))
			}
			var objs []any
			switch {
			case c.wrap == "":
				objs = []any{top}
			case c.list:
				list, ok := top[c.wrap].([]any)
				if !ok || len(list) == 0 {
					t.Fatalf("%s %s: want a non-empty list under %q; body: %s", c.method, path, c.wrap, authzClip(resp.body))
				}
				objs = list
			default:
				if _, ok := top[c.wrap]; !ok {
					t.Fatalf("%s %s: the answer is not wrapped in %q; body: %s", c.method, path, c.wrap, authzClip(resp.body))
				}
				objs = []any{top[c.wrap]}
			}
			for i, o := range objs {
				name := c.wrap
				if name == "" {
					name = "the answer"
				}
				if c.list {
					name = c.wrap + "[" + strconv.Itoa(i) + "]"
				}
				if !compatObjectHas(t, name, o, c.fields, c.enums) {
					continue
				}
				if c.check != nil {
					c.check(t, o.(map[string]any))
				}
			}
		})
	}
}

// compatObjectHas checks that v is an object with every field, and that
// the enum fields hold upstream's spellings. It reports whether v is an
// object.
func compatObjectHas(t *testing.T, name string, v any, fields []string, enums map[string][]string) bool {
	t.Helper()
	obj, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: want an object, got %T", name, v)
		return false
	}
	var missing []string
	for _, f := range fields {
		if _, ok := obj[f]; !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Errorf("%s: missing upstream's fields %v (it has %v)", name, missing, keys)
	}
	for field, allowed := range enums {
		if s, _ := obj[field].(string); !slices.Contains(allowed, s) {
			t.Errorf("%s.%s = %v: upstream knows only %v", name, field, obj[field], allowed)
		}
	}
	return true
}

// compatVariables checks upstream's form of variables: a list of
// {key, value, source}, sorted by key, with upstream's sources; and, if
// wantSource is set, that one of them has it (a started task's
// environment holds the system's variables).
func compatVariables(wantSource string) func(t *testing.T, obj map[string]any) {
	return func(t *testing.T, obj map[string]any) {
		t.Helper()
		list, ok := obj["variables"].([]any)
		if !ok {
			t.Errorf("variables: want upstream's list of {key, value, source}, got %T: %v", obj["variables"], obj["variables"])
			return
		}
		var keys []string
		found := wantSource == ""
		for _, v := range list {
			m, ok := v.(map[string]any)
			key, kok := m["key"].(string)
			_, vok := m["value"].(string)
			src, sok := m["source"].(string)
			if !ok || !kok || !vok || !sok || len(m) != 3 {
				t.Errorf("variable %v: want exactly {key, value, source} strings", v)
				continue
			}
			if !slices.Contains(compatVariableSources, src) {
				t.Errorf("variable %s: source %q is not one of upstream's %v", key, src, compatVariableSources)
			}
			found = found || src == wantSource
			keys = append(keys, key)
		}
		if !sort.StringsAreSorted(keys) {
			t.Errorf("variables are not sorted by key: %v", keys)
		}
		if !found {
			t.Errorf("no variable has source %q: %v", wantSource, list)
		}
	}
}

// compatSecretValue: {metadata: Secret, secret: the plaintext, or null
// without include_secret=true}.
func compatSecretValue(t *testing.T, obj map[string]any) {
	t.Helper()
	compatObjectHas(t, "metadata", obj["metadata"], compatSecret, nil)
	if _, ok := obj["secret"].(string); !ok && obj["secret"] != nil {
		t.Errorf("secret: want the plaintext or null, got %v", obj["secret"])
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compatTaskExecution: upstream's variables (the environment of a started
// task holds the system's) and its task as upstream serves one.
func compatTaskExecution(t *testing.T, obj map[string]any) {
	t.Helper()
	compatVariables("system")(t, obj)
	compatConfigTask(t, "task", obj["task"])
}

// compatConfigTasks: a config's tasks are upstream's map from task id to
// task, each as upstream serves it.
func compatConfigTasks(t *testing.T, obj map[string]any) {
	t.Helper()
	tasks, ok := obj["tasks"].(map[string]any)
	if !ok || len(tasks) == 0 {
		t.Errorf("tasks: want upstream's non-empty map from task id to task, got %T: %v", obj["tasks"], obj["tasks"])
		return
	}
	for id, task := range tasks {
		if compatConfigTask(t, "tasks."+id, task) {
			if got := task.(map[string]any)["id"]; got != id {
				t.Errorf("tasks.%s: id %v", id, got)
			}
		}
	}
}

// compatConfigTask: upstream's Task, with variables as a list and depends_on in
// snake case.
func compatConfigTask(t *testing.T, name string, v any) bool {
	t.Helper()
	if !compatObjectHas(t, name, v, compatTaskConfig, nil) {
		return false
	}
	obj := v.(map[string]any)
	compatVariables("")(t, obj)
	deps, ok := obj["depends_on"].(map[string]any)
	if !ok {
		t.Errorf("%s.depends_on: want an object, got %T", name, obj["depends_on"])
	}
	for parent, s := range deps {
		if str, _ := s.(string); !slices.Contains(compatParentStatuses, str) {
			t.Errorf("%s.depends_on.%s = %v: upstream knows only %v", name, parent, s, compatParentStatuses)
		}
	}
	return true
}
