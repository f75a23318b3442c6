package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/api/openapi"
	"github.com/goferhq/gofer/fsm/fsmtest"
)

const openAPIRegenerate = "go test ./api -run TestOpenAPIGolden -update   (or: make docs)"

// TestOpenAPIGolden fails when docs/openapi.json or
// docs/extension-openapi.json differ from what the route table and the Go
// types make; with -update (make docs) it rewrites them.
func TestOpenAPIGolden(t *testing.T) {
	for _, tc := range []struct {
		file  string
		build func() (*openapi.Document, error)
	}{
		{"../docs/openapi.json", BuildOpenAPI},
		{"../docs/extension-openapi.json", BuildExtensionOpenAPI},
	} {
		doc, err := tc.build()
		if err != nil {
			t.Fatal(err)
		}
		want, err := doc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if *updateDocs {
			if err := os.WriteFile(tc.file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatalf("%v; regenerate with: %s", err, openAPIRegenerate)
		}
		if string(got) != string(want) {
			t.Errorf("%s is stale; regenerate with: %s", tc.file, openAPIRegenerate)
		}
	}
}

// TestOpenAPICoversRoutes serves the document from a server and compares
// its operations with the routes the server registered with its router:
// a route missing from the document, or an operation no route serves,
// fails.
func TestOpenAPICoversRoutes(t *testing.T) {
	s := New(Options{Dev: true}, &fakeLeaderCluster{f: fsmtest.New(t)}, hclog.NewNullLogger())
	registered := map[string]bool{}
	for _, r := range s.echo.Routes() {
		registered[r.Method+" "+openapi.PathTemplate(r.Path)] = true
	}
	rec := httptest.NewRecorder()
	s.echo.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, openAPIPath, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", openAPIPath, rec.Code, rec.Body)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != openapi.Version {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	specified := map[string]bool{}
	for p, methods := range doc.Paths {
		for m := range methods {
			specified[strings.ToUpper(m)+" "+p] = true
		}
	}
	for _, k := range sortedSet(registered) {
		if !specified[k] {
			t.Errorf("route %s is registered but not in the OpenAPI document", k)
		}
	}
	for _, k := range sortedSet(specified) {
		if !registered[k] {
			t.Errorf("the OpenAPI document names %s, which no route serves", k)
		}
	}
	if len(registered) < 80 {
		t.Errorf("only %d routes registered: the test is not looking at the router", len(registered))
	}
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIShapesMatchRoutes: a route without a shape, or a shape left
// over from a removed route, fails the build of the document.
func TestOpenAPIShapesMatchRoutes(t *testing.T) {
	routes := (&Server{}).routeTable()
	if _, err := openAPIOperations(routes); err != nil {
		t.Fatal(err)
	}
	if _, err := openAPIOperations(routes[1:]); err == nil || !strings.Contains(err.Error(), "shapes without a route") {
		t.Errorf("a shape without its route: %v", err)
	}
	extra := append(append([]route(nil), routes...), route{method: http.MethodGet, path: "/api/nothing", handler: routes[0].handler})
	if _, err := openAPIOperations(extra); err == nil || !strings.Contains(err.Error(), "GET /api/nothing has no shape") {
		t.Errorf("a route without its shape: %v", err)
	}
}

// TestOpenAPIPage: the page is served from the document with nothing
// loaded from elsewhere.
func TestOpenAPIPage(t *testing.T) {
	s := New(Options{Dev: true}, &fakeLeaderCluster{f: fsmtest.New(t)}, hclog.NewNullLogger())
	rec := httptest.NewRecorder()
	s.echo.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, docsPagePath, nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s: %d %s", docsPagePath, rec.Code, rec.Header().Get("Content-Type"))
	}
	page := rec.Body.String()
	for _, want := range []string{`id="startRun"`, "/api/namespaces/{ns}/pipelines/{pipeline}/runs", `id="schema-RunView"`, `href="` + openAPIPath + `"`, "text/event-stream"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: it must load nothing from elsewhere", bad)
		}
	}
}
