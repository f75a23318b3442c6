package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// TestCanaryCLI drives one canary through the real CLI binary on a real
// node with real containers: `pipeline deploy --strategy canary` starts
// it (version 1 stays live, `pipeline get` names the canary, an immediate
// deploy meanwhile is refused with the commands that decide it), runs are
// started with `pipeline run --watch` while `deployment watch` follows the
// canary; the failing version is rolled back by the leader, watch exits 1
// with the decision, and `deployment get` shows the decision's reason.
func TestCanaryCLI(t *testing.T) {
	rc := runsNewCluster(t, 1)
	ctx := context.Background()
	url := rc.Leader().URL
	const p = "canary-cli"
	canaryTwoVersions(t, rc, p, "exit 1")

	out, code := rc.cli(t, url, "pipeline", "deploy", p, "2", "--strategy", "canary", "--canary-percent", "50",
		"--canary-runs", "2", "--canary-duration", "10m", "--max-failure-increase", "10")
	if code != 0 || !strings.Contains(out, "canary of version 2 started") {
		t.Fatalf("gofer pipeline deploy --strategy canary: exit %d\n%s", code, out)
	}
	t.Logf("gofer pipeline deploy --strategy canary:\n%s", out)
	pl, err := rc.cl.GetPipeline(ctx, p)
	if err != nil || pl.ActiveCanary == 0 || pl.LiveVersion != 1 {
		t.Fatalf("after the canary deploy: %+v %v", pl, err)
	}
	id := pl.ActiveCanary
	if out, code := rc.cli(t, url, "pipeline", "get", p); code != 0 || !strings.Contains(out, "version 2 on 50% of new runs (deployment "+strconv.FormatInt(id, 10)) {
		t.Fatalf("gofer pipeline get during the canary: exit %d\n%s", code, out)
	}
	if out, code := rc.cli(t, url, "pipeline", "deploy", p, "2"); code != 1 ||
		!strings.Contains(out, "decide the canary first: gofer pipeline deployment promote|rollback|abort "+p) {
		t.Fatalf("immediate deploy during the canary: exit %d\n%s", code, out)
	}

	type result struct {
		out  string
		code int
	}
	watched := make(chan result, 1)
	home := t.TempDir()
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(wctx, goferBin, "-a", url, "--token", rc.Token, "pipeline", "deployment", "watch", p)
		cmd.Env = append(os.Environ(), "HOME="+home)
		b, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			watched <- result{string(b), 0}
		case errors.As(err, &ee):
			watched <- result{string(b), ee.ExitCode()}
		default:
			watched <- result{string(b) + err.Error(), -1}
		}
	}()
	var w result
	for i := 0; ; i++ {
		select {
		case w = <-watched:
		default:
			if i >= 40 {
				t.Fatalf("no decision after 40 runs")
			}
			// A failing run exits non-zero; the watch decides, not the runs.
			out, _ := rc.cli(t, url, "pipeline", "run", p, "--watch")
			t.Logf("gofer pipeline run --watch (%d):\n%s", i+1, out)
			continue
		}
		break
	}
	t.Logf("gofer pipeline deployment watch:\n%s", w.out)
	if w.code != 1 || !strings.Contains(w.out, "rolled back by canary-watcher; version 1 is live\nwhy: canary failed") ||
		!strings.Contains(w.out, "stable v1:") {
		t.Fatalf("deployment watch of a failing canary: exit %d, want 1\n%s", w.code, w.out)
	}
	d, err := rc.cl.GetDeployment(ctx, p, id)
	if err != nil || d.Canary == nil || d.Canary.Decision == nil || d.Canary.Decision.Outcome != model.CanaryRollback {
		t.Fatalf("deployment %d: %+v %v", id, d, err)
	}
	out, code = rc.cli(t, url, "pipeline", "deployment", "get", p, strconv.FormatInt(id, 10))
	t.Logf("gofer pipeline deployment get:\n%s", out)
	// The reason is wrapped to 120 columns; compare it word by word.
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), d.Canary.Decision.Reason) || !strings.Contains(out, "rollback by canary-watcher") {
		t.Fatalf("deployment get: exit %d, want the reason %q\n%s", code, d.Canary.Decision.Reason, out)
	}
	canaryWantLive(t, rc, p, 1)
	rc.noContainersLeft(t, 40*time.Second)
}
