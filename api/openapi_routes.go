package api

import (
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/api/openapi"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store/model"
)

// The OpenAPI document is generated from the route table (methods, paths,
// path parameters, summaries from the doc lines, security from access)
// and from routeShapes below, which names the Go types of each route's
// body and answers; api/openapi turns the types into schemas by
// reflection. docs/openapi.json is the committed copy (TestOpenAPIGolden);
// TestOpenAPICoversRoutes checks the document against the routes the
// server registers.

// Paths of the documents.
const (
	openAPIPath          = "/api/docs/openapi.json"
	extensionOpenAPIPath = "/api/docs/extension-openapi.json"
	docsPagePath         = "/api/docs"
)

// shape is what a route takes and answers, for the document.
type shape struct {
	// in is a value of the JSON body's Go type; nil: no JSON body.
	in         any
	inOptional bool
	// inRaw is the content type of a raw (non-JSON) body.
	inRaw string
	// status of success; out a value of its JSON answer's type (nil: no
	// body), or outRaw its content type.
	status int
	out    any
	outRaw string
	// stream: the answer can also be an event stream of these events.
	stream []openapi.Event
	// more answers besides the success one.
	more  []openapi.Answer
	query []openapi.Param
	// id overrides the operation id taken from the handler's name.
	id string
}

// one is the type of {name: v}; many of {name: [v…]}.
func one(name string, v any) any  { return wrapped(name, reflect.TypeOf(v)) }
func many(name string, v any) any { return wrapped(name, reflect.SliceOf(reflect.TypeOf(v))) }

func wrapped(name string, t reflect.Type) any {
	field := reflect.StructField{Name: goName(name), Type: t, Tag: reflect.StructTag(`json:"` + name + `"`)}
	return reflect.New(reflect.StructOf([]reflect.StructField{field})).Elem().Interface()
}

func goName(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '_' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

var (
	pageQuery = []openapi.Param{
		{Name: "limit", Type: "integer", Description: "at most this many items (default and maximum per docs/api.md)"},
		{Name: "offset", Type: "integer", Description: "skip this many items"},
		{Name: "reverse", Type: "boolean", Description: "newest first"},
	}
	followQuery = []openapi.Param{
		{Name: "follow", Type: "boolean", Description: "stream until the output ends"},
		{Name: "offset", Type: "integer", Description: "start at this byte"},
	}
	forceQuery  = []openapi.Param{{Name: "force", Type: "boolean", Description: "replace an existing key"}}
	secretQuery = []openapi.Param{{Name: "include_secret", Type: "boolean", Description: "answer the plaintext too"}}

	// logStreamEvents are the framed log stream's events ([Follow streams]).
	logStreamEvents = []openapi.Event{
		{Name: "log", ID: "the byte offset just past this piece", DataText: "a piece of the output, base64"},
		{Name: "end", ID: "the final byte offset", Data: logEnd{}, Description: "last, only when the server is done"},
		{Description: "`: keep-alive` comment lines while quiet"},
	}
	// eventStreamEvents are the event stream's events: the event name is the
	// event's kind.
	eventStreamEvents = []openapi.Event{
		{Name: "<kind>", ID: "the event id", Data: model.Event{}, Description: "one event; the event: field is its kind"},
		{ID: "the stream's cursor", Description: "id only, after a `: keep-alive` comment: resume after it with Last-Event-ID"},
	}
)

// logEnd is the data of a framed log's end event.
type logEnd struct {
	Offset   int64 `json:"offset"`
	Complete bool  `json:"complete"`
}

// routeShapes names each route's body and answers, keyed "METHOD path".
func routeShapes() map[string]shape {
	ok := http.StatusOK
	created := http.StatusCreated
	none := http.StatusNoContent
	deployment := one("deployment", deploymentView{})
	secretMeta := one("secret", secretView{})
	token := tokenWithSecret{}
	return map[string]shape{
		"GET /api/system/health":                    {status: ok, out: model.Health{}, more: []openapi.Answer{{Status: http.StatusServiceUnavailable, ContentType: openapi.JSON, Type: model.Health{}, Description: "no leader known"}}},
		"HEAD /api/system/health":                   {status: ok, id: "healthHead", more: []openapi.Answer{{Status: http.StatusServiceUnavailable, Description: "no leader known"}}},
		"GET /api/system/metadata":                  {status: ok, out: model.Metadata{}},
		"GET /api/system":                           {status: ok, out: model.System{}},
		"PATCH /api/system":                         {in: updateSystemRequest{}, status: ok, out: model.System{}},
		"POST /api/system/encryption-key/rotate":    {in: rotateKeyRequest{}, status: http.StatusAccepted, out: model.KeyRotationStatus{}},
		"GET /api/system/encryption-key/rotation":   {status: ok, out: model.KeyRotationStatus{}},
		"GET /api/namespaces":                       {status: ok, out: many("namespaces", &model.Namespace{}), query: pageQuery},
		"POST /api/namespaces":                      {in: createNamespaceRequest{}, status: created, out: one("namespace", &model.Namespace{})},
		"GET " + nsPath:                             {status: ok, out: one("namespace", &model.Namespace{})},
		"PATCH " + nsPath:                           {in: updateNamespaceRequest{}, status: ok, out: one("namespace", &model.Namespace{})},
		"DELETE " + nsPath:                          {status: none},
		"GET " + nsPath + "/pipelines":              {status: ok, out: many("pipelines", &model.Pipeline{}), query: pageQuery},
		"GET " + pPath:                              {status: ok, out: one("pipeline", &model.Pipeline{})},
		"PATCH " + pPath:                            {in: updatePipelineRequest{}, status: none},
		"DELETE " + pPath:                           {status: none},
		"GET " + cfgPath:                            {status: ok, out: many("configs", model.PipelineConfigView{}), query: pageQuery},
		"POST " + cfgPath:                           {in: registerConfigRequest{}, status: created, out: one("pipeline", registeredPipeline{})},
		"GET " + cfgPath + "/:version":              {status: ok, out: one("config", &model.PipelineConfigView{})},
		"POST " + cfgPath + "/:version":             {in: deployRequest{}, inOptional: true, status: created, out: deployment},
		"DELETE " + cfgPath + "/:version":           {status: none},
		"GET " + depPath:                            {status: ok, out: many("deployments", deploymentView{}), query: pageQuery},
		"GET " + depPath + "/:deployment":           {status: ok, out: one("deployment", &deploymentView{})},
		"POST " + depPath + "/:deployment/promote":  {in: decisionRequest{}, inOptional: true, status: ok, out: deployment, id: "promoteDeployment"},
		"POST " + depPath + "/:deployment/rollback": {in: decisionRequest{}, inOptional: true, status: ok, out: deployment, id: "rollbackDeployment"},
		"POST " + depPath + "/:deployment/abort":    {in: decisionRequest{}, inOptional: true, status: ok, out: deployment, id: "abortDeployment"},
		"GET " + pPath + "/runs":                    {status: ok, out: many("runs", model.RunView{}), query: pageQuery},
		"POST " + pPath + "/runs":                   {in: startRunRequest{}, inOptional: true, status: created, out: one("run", model.RunView{}), more: []openapi.Answer{{Status: ok, ContentType: openapi.JSON, Type: one("run", model.RunView{}), Description: "a trigger key's repeat: the first run"}}},
		"GET " + runPath:                            {status: ok, out: one("run", model.RunView{})},
		"DELETE " + runPath:                         {status: none},
		"POST " + runPath + "/retry":                {status: created, out: one("run", model.RunView{})},
		"GET " + runPath + "/tasks":                 {status: ok, out: many("task_executions", model.TaskExecutionView{}), query: pageQuery},
		"GET " + tskPath:                            {status: ok, out: one("task_execution", model.TaskExecutionView{})},
		"DELETE " + tskPath:                         {status: none, query: []openapi.Param{{Name: "wait_for", Type: "integer", Description: "seconds between SIGTERM and SIGKILL"}}},
		"GET " + tskPath + "/logs":                  {status: ok, outRaw: openapi.Text, stream: logStreamEvents, query: followQuery, more: []openapi.Answer{{Status: none, Description: "framed, at the end of a finished task's closed log"}}},
		"DELETE " + tskPath + "/logs":               {status: none},
		"GET " + secPath:                            {status: ok, out: many("secrets", secretView{}), query: pageQuery},
		"POST " + secPath:                           {in: putPipelineSecretRequest{}, status: created, out: secretMeta},
		"GET " + secPath + "/:key":                  {status: ok, out: secretValueView{}, query: secretQuery},
		"DELETE " + secPath + "/:key":               {status: none},
		"GET " + glbPath:                            {status: ok, out: many("secrets", secretView{}), query: pageQuery},
		"POST " + glbPath:                           {in: putGlobalSecretRequest{}, status: created, out: secretMeta},
		"GET " + glbPath + "/:key":                  {status: ok, out: secretValueView{}, query: secretQuery},
		"DELETE " + glbPath + "/:key":               {status: none},
		"GET " + objPath:                            {status: ok, out: many("objects", &model.Object{}), query: pageQuery},
		"GET " + objPath + "/:key":                  {status: ok, outRaw: openapi.Octets},
		"POST " + objPath + "/:key":                 {inRaw: openapi.Octets, status: created, out: one("object", &model.Object{}), query: forceQuery},
		"DELETE " + objPath + "/:key":               {status: none},
		"GET " + robPath:                            {status: ok, out: many("objects", &model.Object{}), query: pageQuery, id: "listRunObjects"},
		"GET " + robPath + "/:key":                  {status: ok, outRaw: openapi.Octets, id: "getRunObject"},
		"POST " + robPath + "/:key":                 {inRaw: openapi.Octets, status: created, out: one("object", &model.Object{}), query: forceQuery, id: "putRunObject"},
		"DELETE " + robPath + "/:key":               {status: none, id: "deleteRunObject"},
		"GET " + subPath:                            {status: ok, out: many("subscriptions", &model.Subscription{}), query: pageQuery},
		"POST " + subPath:                           {in: createSubscriptionRequest{}, status: created, out: one("subscription", &model.Subscription{})},
		"GET " + subItem:                            {status: ok, out: one("subscription", &model.Subscription{})},
		"PATCH " + subItem:                          {in: updateSubscriptionRequest{}, status: ok, out: one("subscription", &model.Subscription{})},
		"DELETE " + subItem:                         {status: none},
		"POST " + subItem + "/skipped-ticks":        {in: skippedTicksRequest{}, status: ok, out: fsm.TriggerSkipped{}},
		"GET /api/extensions":                       {status: ok, out: many("extensions", model.ExtensionView{}), query: pageQuery},
		"POST /api/extensions":                      {in: installExtensionRequest{}, status: created, out: installAnswer{}},
		"GET " + extPath:                            {status: ok, out: one("extension", model.ExtensionView{})},
		"PATCH " + extPath:                          {in: updateExtensionRequest{}, status: ok, out: one("extension", model.ExtensionView{})},
		"DELETE " + extPath:                         {status: none},
		"GET " + extPath + "/subscriptions":         {status: ok, out: many("subscriptions", &model.Subscription{}), query: pageQuery},
		"GET " + extPath + "/logs":                  {status: ok, outRaw: openapi.Text, stream: logStreamEvents, query: followQuery},
		"GET " + extPath + "/debug":                 {status: ok, out: debugAnswer{}},
		"GET /api/tokens":                           {status: ok, out: many("tokens", &model.Token{}), query: pageQuery},
		"POST /api/tokens":                          {in: createTokenRequest{}, status: created, out: token},
		"POST /api/tokens/bootstrap":                {status: created, out: token},
		"GET /api/tokens/whoami":                    {status: ok, out: one("token", &model.Token{})},
		"GET /api/tokens/:id":                       {status: ok, out: one("token", &model.Token{})},
		"PATCH /api/tokens/:id":                     {in: updateTokenRequest{}, status: none},
		"DELETE /api/tokens/:id":                    {status: none},
		"GET /api/roles":                            {status: ok, out: many("roles", &model.Role{}), query: pageQuery},
		"POST /api/roles":                           {in: createRoleRequest{}, status: created, out: one("role", &model.Role{})},
		"GET /api/roles/:id":                        {status: ok, out: one("role", &model.Role{})},
		"PATCH /api/roles/:id":                      {in: updateRoleRequest{}, status: ok, out: one("role", &model.Role{})},
		"DELETE /api/roles/:id":                     {status: none},
		"GET /api/events":                           {status: ok, out: many("events", &model.Event{}), query: append(append([]openapi.Param(nil), pageQuery...), openapi.Param{Name: "kind", Description: "only events of this kind (audit, created_token…)"})},
		"GET /api/events/stream":                    {status: ok, outRaw: openapi.EventStream, stream: eventStreamEvents, query: []openapi.Param{{Name: "history", Type: "boolean", Description: "replay stored events first"}, {Name: "after", Type: "integer", Description: "resume after this event id (or the Last-Event-ID header)"}}},
		"GET /api/events/:id":                       {status: ok, out: one("event", &model.Event{})},
		"DELETE /api/events/:id":                    {status: none},
		"GET /api/cluster/members":                  {status: ok, out: many("members", &model.Member{}), query: pageQuery},
		"POST /api/cluster/members":                 {in: AddMemberRequest{}, status: ok, out: one("member", &model.Member{})},
		"DELETE /api/cluster/members/:id":           {status: none},
		"POST /api/cluster/join":                    {in: JoinRequest{}, status: ok, out: joinAnswer{}},
		"GET /api/cluster/snapshot":                 {status: ok, outRaw: openapi.Octets},
		"POST /api/cluster/snapshot":                {inRaw: openapi.Octets, status: ok, out: one("restore", &RestoreResult{}), query: []openapi.Param{{Name: "force_legacy", Type: "boolean", Description: "accept a format-1 backup"}}},
		"POST " + internalEventPath + ":extension":  {inRaw: openapi.Octets, status: none, id: "passExternalEvent"},
		"POST " + auditRelayPath:                    {in: auditRelayBody{}, status: none, id: "passAuditEntries"},
		"GET " + openAPIPath:                        {status: ok, outRaw: openapi.JSON, id: "openAPIDocument"},
		"GET " + extensionOpenAPIPath:               {status: ok, outRaw: openapi.JSON, id: "extensionOpenAPIDocument"},
		"GET " + docsPagePath:                       {status: ok, outRaw: openapi.HTML, id: "openAPIPage"},
		// Prometheus text exposition format (docs/metrics.md).
		"GET /metrics": {status: ok, outRaw: openapi.Text, id: "metrics"},
	}
}

// describeAccess says who may call r, in the terms of docs/auth.md: the
// action a role must grant and the resources it must grant it on.
func describeAccess(r route) string {
	a := r.access
	switch {
	case a.public:
		return "none"
	case a.admin && a.clusterSecret:
		return "admin or the cluster secret"
	case a.admin && a.ownExtension:
		return "admin or the extension's own token"
	case a.admin:
		return "admin"
	case a.authenticated:
		return "any token"
	case a.resources == nil:
		return fmt.Sprintf("`%s`", a.action)
	}
	var res []string
	for _, ref := range a.resources(placeholderContext(r.path)) {
		switch ref.target {
		case "":
			res = append(res, "`"+ref.kind+"`")
		case anyTarget:
			res = append(res, "`"+ref.kind+":<any>`")
		default:
			res = append(res, "`"+ref.kind+":"+ref.target+"`")
		}
	}
	return fmt.Sprintf("`%s` on %s", a.action, strings.Join(res, ", "))
}

// placeholderContext is a request context whose path parameters hold
// their own names in braces, so a route's resources read as a pattern.
func placeholderContext(path string) echo.Context {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	c := echo.New().NewContext(req, nil)
	var names, values []string
	for _, name := range openapi.PathParams(path) {
		names = append(names, name)
		values = append(values, "{"+name+"}")
	}
	c.SetParamNames(names...)
	c.SetParamValues(values...)
	return c
}

// Tags of the document, in the order the page shows them.
var openAPITags = []openapi.Tag{
	{Name: "system", Description: "Health, build, cluster-wide settings and encryption-key rotation."},
	{Name: "namespaces"},
	{Name: "pipelines", Description: "Pipelines, config versions and deployments (canaries included)."},
	{Name: "runs", Description: "Runs, task executions and their logs."},
	{Name: "secrets"},
	{Name: "objects"},
	{Name: "subscriptions"},
	{Name: "extensions", Description: "Installed extensions. The HTTP API an extension serves is a second document: " + extensionOpenAPIPath + "."},
	{Name: "tokens", Description: "Tokens and roles."},
	{Name: "events"},
	{Name: "cluster", Description: "Members, joining, backups; internal routes are node to node."},
	{Name: "docs", Description: "This document and its page."},
	{Name: "metrics", Description: "Prometheus metrics of the node answering (docs/metrics.md)."},
}

// tagOf is the tag of a route's path.
func tagOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/api/docs"):
		return "docs"
	case strings.Contains(path, "/secrets"):
		return "secrets"
	case strings.Contains(path, "/objects"):
		return "objects"
	case strings.Contains(path, "/subscriptions"):
		return "subscriptions"
	case strings.Contains(path, "/runs"):
		return "runs"
	case strings.Contains(path, "/pipelines"):
		return "pipelines"
	case strings.HasPrefix(path, "/api/namespaces"):
		return "namespaces"
	case strings.HasPrefix(path, "/api/roles"):
		return "tokens"
	}
	seg := strings.Split(strings.TrimPrefix(path, "/api/"), "/")[0]
	return seg
}

// intParams are the path parameters that are integers.
func intParams(path string) []string {
	var out []string
	for _, p := range openapi.PathParams(path) {
		switch {
		case p == "run", p == "version", p == "deployment", p == "id" && strings.HasPrefix(path, "/api/events/"):
			out = append(out, p)
		}
	}
	return out
}

// handlerName is the name of a route's handler method: the operation id
// unless its shape gives one.
func handlerName(h echo.HandlerFunc) string {
	name := runtime.FuncForPC(reflect.ValueOf(h).Pointer()).Name()
	name = strings.TrimSuffix(name, "-fm")
	return name[strings.LastIndex(name, ".")+1:]
}

// openAPIOperations describes the route table for the generator; it fails
// on a route without a shape or a shape without a route.
func openAPIOperations(routes []route) ([]openapi.Operation, error) {
	shapes := routeShapes()
	var ops []openapi.Operation
	for _, r := range routes {
		key := r.method + " " + r.path
		sh, ok := shapes[key]
		if !ok {
			return nil, fmt.Errorf("route %s has no shape: add it to routeShapes (api/openapi_routes.go)", key)
		}
		delete(shapes, key)
		op := openapi.Operation{Method: r.method, Path: r.path, ID: sh.id, Tag: tagOf(r.path), Summary: strings.Join(strings.Fields(r.doc), " "),
			Access: strings.ReplaceAll(describeAccess(r), "`", ""), Public: r.access.public, IntParams: intParams(r.path), Query: sh.query}
		if op.ID == "" {
			op.ID = handlerName(r.handler)
		}
		if r.internal {
			op.Extensions = map[string]any{"x-gofer-internal": true}
		}
		if !r.noVersion {
			op.Headers = append(op.Headers, openapi.Param{Name: HeaderAPIVersion, Required: true, Description: "must be " + APIVersion})
		}
		if r.method == http.MethodPost {
			op.Headers = append(op.Headers, openapi.Param{Name: HeaderIdempotency, Description: "makes the write repeatable: a repeat answers the first outcome"})
		}
		if r.method == http.MethodGet && !r.access.public {
			op.Query = append(op.Query,
				openapi.Param{Name: "consistent", Type: "boolean", Description: "answer from the leader after a quorum check"},
				openapi.Param{Name: "min_index", Type: "integer", Description: "wait until this node has applied this raft index"},
				openapi.Param{Name: "wait", Description: "how long ?min_index may wait (a Go duration)"})
		}
		limit := "the server's default body limit"
		switch {
		case r.bodyLimit < 0:
			limit = "no body limit"
		case r.bodyLimit > 0:
			limit = fmt.Sprintf("body limit %d bytes", r.bodyLimit)
		}
		if op.Extensions == nil {
			op.Extensions = map[string]any{}
		}
		op.Extensions["x-gofer-body-limit"] = limit
		switch {
		case sh.in != nil:
			op.Body = &openapi.Body{ContentType: openapi.JSON, Type: sh.in, Optional: sh.inOptional}
		case sh.inRaw != "":
			op.Body = &openapi.Body{ContentType: sh.inRaw, Description: limit}
		}
		a := openapi.Answer{Status: sh.status}
		switch {
		case sh.out != nil:
			a.ContentType, a.Type = openapi.JSON, sh.out
		case sh.outRaw == openapi.JSON:
			a.ContentType, a.Type = openapi.JSON, map[string]any{}
		case sh.outRaw != "":
			a.ContentType = sh.outRaw
		}
		if sh.outRaw == openapi.EventStream {
			a.Events = sh.stream
		} else if sh.stream != nil {
			a.Alternatives = []openapi.Answer{{ContentType: openapi.EventStream, Events: sh.stream}}
		}
		op.Answers = append([]openapi.Answer{a}, sh.more...)
		ops = append(ops, op)
	}
	if len(shapes) > 0 {
		var stale []string
		for k := range shapes {
			stale = append(stale, k)
		}
		return nil, fmt.Errorf("shapes without a route: %v", stale)
	}
	return ops, nil
}

// jsonOverride gives the schemas of types with their own MarshalJSON.
func jsonOverride(t reflect.Type) (*openapi.Schema, bool) {
	if t.PkgPath() == reflect.TypeOf(model.TaskView{}).PkgPath() && t.Name() == "taskMap" {
		return &openapi.Schema{Type: "object", Description: "task id to task, in the config's order",
			AdditionalProperties: &openapi.Schema{Ref: "#/components/schemas/TaskView"}}, true
	}
	return nil, false
}

// BuildOpenAPI is the OpenAPI document of the API. Its version is the
// API version (the gofer-api-version header), not the build, so the
// committed copy is the served one.
func BuildOpenAPI() (*openapi.Document, error) {
	ops, err := openAPIOperations((&Server{}).routeTable())
	if err != nil {
		return nil, err
	}
	doc, err := openapi.Build(openapi.Spec{
		Info: openapi.Info{Title: "Gofer API", Version: APIVersion,
			Description: "Every route of the Gofer API, generated from its route table (api/routes.go) and Go types. Conventions — versions header, idempotency keys, pagination, consistency, follow streams — are in docs/api.md."},
		Tags:             openAPITags,
		Bearer:           "a Gofer token's secret: `Authorization: Bearer <secret>`",
		Error:            ErrorBody{},
		ErrorDescription: "an error: request_id (the X-Request-Id), code (bad_request, unauthorized, forbidden, not_found, conflict, …) and message; missing lists absent secrets and objects on a 409",
		Override:         jsonOverride,
		// TaskView is reached only through taskMap's override.
		Extra: []any{model.TaskView{}},
	}, ops)
	if err != nil {
		return nil, err
	}
	return doc, nil
}

// openAPIDocs are the documents and page, made once per process.
type openAPIDocs struct {
	once                  sync.Once
	spec, extension, page []byte
	err                   error
}

func (d *openAPIDocs) load() error {
	d.once.Do(func() {
		doc, err := BuildOpenAPI()
		if err != nil {
			d.err = err
			return
		}
		if d.spec, d.err = doc.Marshal(); d.err != nil {
			return
		}
		if d.page, d.err = doc.HTML(openAPIPath); d.err != nil {
			return
		}
		ext, err := BuildExtensionOpenAPI()
		if err != nil {
			d.err = err
			return
		}
		d.extension, d.err = ext.Marshal()
	})
	return d.err
}

func (s *Server) serveOpenAPI(c echo.Context) error {
	if err := s.docs.load(); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.docs.spec)
}

func (s *Server) serveExtensionOpenAPI(c echo.Context) error {
	if err := s.docs.load(); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.docs.extension)
}

func (s *Server) serveDocsPage(c echo.Context) error {
	if err := s.docs.load(); err != nil {
		return err
	}
	c.Response().Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	return c.HTMLBlob(http.StatusOK, s.docs.page)
}
