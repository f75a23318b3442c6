package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// dashboardLazySeries are dashboard series a node exports only once the
// thing they count has happened, which a plain run does not do: an
// installed extension (its health), a trigger's run (its lateness), an
// error from the container backend. They are checked against the
// registry instead (internal/metrics TestEverySeriesDocumented observes
// the last two; agent/metrics.go defines the first).
var dashboardLazySeries = map[string]bool{
	"gofer_extension_healthy":               true,
	"gofer_trigger_lateness_seconds_bucket": true,
	"gofer_scheduler_errors_total":          true,
}

// promQLWords are PromQL's keywords, which look like names.
var promQLWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
	"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}

// dashboardMetricNames is every metric name the dashboard's panel
// expressions and variable queries use: the identifiers of each
// expression once quoted strings, label matchers, range selectors and
// by/without groupings are cut out, less function names (followed by a
// parenthesis), keywords and numbers.
func dashboardMetricNames(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query" && strings.HasPrefix(s, "label_values(")) {
					exprs = append(exprs, s)
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	if len(exprs) < 20 {
		t.Fatalf("only %d expressions found in the dashboard", len(exprs))
	}
	cut := []*regexp.Regexp{
		regexp.MustCompile(`"(?:[^"\\]|\\.)*"`),
		regexp.MustCompile(`\{[^}]*\}`),
		regexp.MustCompile(`\[[^\]]*\]`),
		regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\([^)]*\)`),
	}
	ident := regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	names := map[string]bool{}
	for _, e := range exprs {
		if strings.HasPrefix(e, "label_values(") { // a variable: label_values(metric, label)
			e = strings.TrimSuffix(strings.TrimPrefix(e, "label_values("), ")")
			e, _, _ = strings.Cut(e, ",")
		}
		for _, re := range cut {
			e = re.ReplaceAllString(e, " ")
		}
		for _, m := range ident.FindAllStringSubmatch(e, -1) {
			if m[1] != "" || promQLWords[strings.ToLower(m[0])] {
				continue
			}
			names[m[0]] = true
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// checkDashboardSeries fails for every metric the dashboard queries that
// none of the scrapes exports (a sample line starting with the name), so
// renaming a metric without the dashboard breaks the test.
func checkDashboardSeries(t *testing.T, scrapes ...string) {
	t.Helper()
	names := dashboardMetricNames(t)
	checked := 0
	for _, n := range names {
		if dashboardLazySeries[n] {
			continue
		}
		found := false
		for _, body := range scrapes {
			if strings.Contains(body, "\n"+n+"{") || strings.Contains(body, "\n"+n+" ") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("docs/grafana-dashboard.json queries %s, which no node's /metrics exports after a run", n)
		}
		checked++
	}
	if checked < 20 {
		t.Errorf("only %d dashboard series checked (%v)", checked, names)
	}
}
