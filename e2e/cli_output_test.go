package e2e

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	sdk "github.com/goferhq/gofer/sdk/go"
)

// TestCLIOutputIsConsistent runs the CLI against a real node and a real
// Docker task (issue 11, "consistent output"):
//   - a watch polling far less often than a task runs still shows the
//     task scheduled and running, and the run running;
//   - event lists are newest first (--oldest-first for the API's order), a
//     full page says how to see the next on stderr, -o json does not;
//   - event details are typed (exit_code is the number 0) and rows fit
//     120 columns;
//   - deployments are lower-case;
//   - pipeline delete refuses without a terminal (exit 2, naming --yes)
//     and deletes nothing, and deletes with --yes.
func TestCLIOutputIsConsistent(t *testing.T) {
	rc := runsNewCluster(t, 1)
	url := rc.Nodes[0].URL
	rc.deploy(t, &sdk.PipelineConfig{ID: "fast", Name: "Fast", Parallelism: 1, Tasks: []*sdk.TaskConfig{runsSh("quick", "true")}})

	// One poll before the run starts, the next long after `true` exited:
	// polling alone could only show waiting, then successful.
	out, code := rc.cli(t, url, "pipeline", "run", "fast", "--watch", "--poll-interval", "6s")
	if code != 0 {
		t.Fatalf("pipeline run --watch: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		`(?m)^\d\d:\d\d:\d\d  quick +waiting$`,
		`(?m)^\d\d:\d\d:\d\d  quick +scheduled$`,
		`(?m)^\d\d:\d\d:\d\d  quick +running$`,
		`(?m)^\d\d:\d\d:\d\d  quick +successful \(exit 0\)$`,
		`(?m)^\d\d:\d\d:\d\d  run 1 +running$`,
		`(?m)^\d\d:\d\d:\d\d  run 1 +successful$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("watch output lacks %s:\n%s", want, out)
		}
	}
	if strings.Count(out, "quick                running") != 1 {
		t.Errorf("running printed other than once:\n%s", out)
	}

	// Newest first, with the hint; the API's order with --oldest-first.
	ids := func(out string) []int {
		var got []int
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				if n, err := strconv.Atoi(f[0]); err == nil {
					got = append(got, n)
				}
			}
		}
		return got
	}
	out, code = rc.cli(t, url, "event", "list", "--limit", "5")
	newest := ids(out)
	if code != 0 || len(newest) != 5 || newest[0] < newest[4] || !strings.Contains(out, "showing 5; more with --offset 5") {
		t.Errorf("event list --limit 5: exit %d, ids %v, want 5 newest first and the hint\n%s", code, newest, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(strings.TrimRight(l, " ")); n > 120 {
			t.Errorf("event list line of %d columns: %q", n, l)
		}
	}
	out, _ = rc.cli(t, url, "event", "list", "--limit", "5", "--oldest-first")
	if oldest := ids(out); len(oldest) != 5 || oldest[0] != 1 || oldest[4] != 5 {
		t.Errorf("event list --oldest-first: ids %v, want 1…5\n%s", oldest, out)
	}
	out, _ = rc.cli(t, url, "event", "list", "--limit", "1000")
	if strings.Contains(out, "more with") {
		t.Errorf("a short page printed the hint:\n%s", out)
	}

	out, code = rc.cli(t, url, "-o", "json", "event", "list", "--limit", "1000")
	var events struct {
		Events []struct {
			Kind    string         `json:"kind"`
			Details map[string]any `json:"details"`
		} `json:"events"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &events) != nil {
		t.Fatalf("event list -o json: exit %d, not JSON alone (a hint on stderr would break it):\n%s", code, out)
	}
	found := false
	for _, e := range events.Events {
		if e.Kind == "completed_task_execution" {
			found = true
			if e.Details["exit_code"] != float64(0) || e.Details["run_id"] != float64(1) || e.Details["attempt"] != float64(1) {
				t.Errorf("completed_task_execution details %v, want numbers exit_code 0, run_id 1, attempt 1", e.Details)
			}
		}
	}
	if !found {
		t.Errorf("no completed_task_execution event in %d events", len(events.Events))
	}

	out, _ = rc.cli(t, url, "-o", "json", "pipeline", "deployment", "list", "fast")
	if !strings.Contains(out, `"state": "complete"`) || !strings.Contains(out, `"status": "successful"`) {
		t.Errorf("deployment not lower-case:\n%s", out)
	}

	// No terminal (the harness gives /dev/null as stdin): refused.
	start := time.Now()
	out, code = rc.cli(t, url, "pipeline", "delete", "fast")
	if code != 2 || !strings.Contains(out, "pass --yes") {
		t.Errorf("pipeline delete without a terminal: exit %d, want 2 naming --yes\n%s", code, out)
	}
	if out, code := rc.cli(t, url, "pipeline", "get", "fast"); code != 0 {
		t.Fatalf("the refused delete deleted the pipeline (after %s): %s", time.Since(start), out)
	}
	out, code = rc.cli(t, url, "pipeline", "delete", "fast", "--yes")
	if code != 0 || !strings.Contains(out, `Deleted pipeline "fast"`) {
		t.Errorf("pipeline delete --yes: exit %d\n%s", code, out)
	}
	if out, code := rc.cli(t, url, "pipeline", "get", "fast"); code == 0 {
		t.Errorf("pipeline still there after delete --yes:\n%s", out)
	}
}
