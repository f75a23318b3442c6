package api

import (
	"flag"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/goferhq/gofer/internal/docsync"
)

// The route table of docs/api.md is generated from routeTable, the table
// the server registers, so the docs list exactly the routes it serves,
// with the permission its authorization checks.

var updateDocs = flag.Bool("update", false, "rewrite the generated route table of docs/api.md")

const (
	apiRoutesSection    = "gofer api routes"
	apiRoutesRegenerate = "go test ./api -run TestAPIRouteReference -update   (or: make docs)"
)

// TestAPIRouteReference fails when docs/api.md's generated route table
// differs from the route table; with -update it rewrites it.
func TestAPIRouteReference(t *testing.T) {
	routes := (&Server{}).routeTable()
	for _, r := range routes {
		if strings.TrimSpace(r.doc) == "" {
			t.Errorf("%s %s has no doc: add one to its entry in api/routes.go (it becomes its line in docs/api.md)", r.method, r.path)
		}
	}
	docsync.Check(t, "../docs/api.md", apiRoutesSection, routeReference(routes), *updateDocs, apiRoutesRegenerate)
}

func TestRouteAccessDescriptions(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         string
	}{
		{http.MethodGet, "/api/system/health", "none"},
		{http.MethodGet, "/api/tokens/whoami", "any token"},
		{http.MethodPost, "/api/namespaces", "admin"},
		{http.MethodGet, "/api/namespaces", "`read` on `namespaces:<any>`"},
		{http.MethodPost, "/api/namespaces/:ns/pipelines/:pipeline/configs/:version",
			"`write` on `namespaces:{ns}`, `pipelines:{pipeline}`, `deployments`"},
		{http.MethodPost, "/api/cluster/members", "admin or the cluster secret"},
	} {
		var found bool
		for _, r := range (&Server{}).routeTable() {
			if r.method == tc.method && r.path == tc.path {
				found = true
				if got := describeAccess(r); got != tc.want {
					t.Errorf("%s %s: %q, want %q", tc.method, tc.path, got, tc.want)
				}
			}
		}
		if !found {
			t.Errorf("no route %s %s", tc.method, tc.path)
		}
	}
}

// routeReference renders the routes as a Markdown table, in table order.
func routeReference(routes []route) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- Generated from the route table in api/routes.go; do not edit. Regenerate: %s -->\n\n", apiRoutesRegenerate)
	b.WriteString("| Method | Path | Needs | Does |\n|---|---|---|---|\n")
	for _, r := range routes {
		doc := r.doc
		if r.internal {
			doc = "**internal** (node to node, not for clients): " + doc
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", r.method, docPath(r.path), cell(describeAccess(r)), cell(doc))
	}
	return b.String()
}

var pathParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// docPath writes echo's :param as {param}, as the rest of the docs do.
func docPath(p string) string { return pathParam.ReplaceAllString(p, "{$1}") }

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "|", `\|`)
}
