package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/goferhq/gofer/store/model"
)

type fakeRaft struct{}

func (fakeRaft) State() raft.RaftState  { return raft.Follower }
func (fakeRaft) CurrentTerm() uint64    { return 3 }
func (fakeRaft) CommitIndex() uint64    { return 10 }
func (fakeRaft) AppliedIndex() uint64   { return 9 }
func (fakeRaft) LastIndex() uint64      { return 10 }
func (fakeRaft) LastContact() time.Time { return time.Now() }

// TestEverySeriesDocumented: every series Gofer defines here is listed in
// docs/metrics.md, and every gofer_ series the Grafana dashboard queries
// is one docs/metrics.md lists.
func TestEverySeriesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := func(name string) bool { return strings.Contains(string(doc), "`"+name+"`") }
	m := New()
	m.RegisterRaft(fakeRaft{})
	m.ObserveRequest("/x", "GET", 200, time.Millisecond)
	m.ObserveSchedulerError("docker", "start", "other")
	m.ObserveTriggerLateness("cron", time.Second)
	m.ObserveAuditDropped("leader_unreachable", 1)
	m.SnapshotStarted("slot")
	m.SnapshotFinished("slot", time.Second, nil)
	o := m.FSM()
	o.Batch(1)
	o.Command()("run_finish", &model.Run{State: model.RunStateComplete, Status: model.RunStatusFailed, Started: 1, Ended: 2})
	o.Command()("task_finish", &model.TaskExecution{State: model.TaskStateComplete, Status: model.TaskStatusFailed, Attempts: []model.Attempt{{Started: 1, Ended: 2}}})
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, Namespace+"_") || name == bridgeName || isBridged(name) {
			continue
		}
		seen++
		if !documented(name) {
			t.Errorf("series %s is not listed in docs/metrics.md", name)
		}
	}
	if seen < 15 {
		t.Fatalf("only %d gofer series gathered", seen)
	}
	dash, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	suffix := regexp.MustCompile(`_(bucket|sum|count)$`)
	for _, name := range regexp.MustCompile(`gofer_[A-Za-z_]+`).FindAllString(string(dash), -1) {
		if name == "gofer_raft_term" || documented(name) || documented(suffix.ReplaceAllString(name, "")) {
			continue
		}
		t.Errorf("the dashboard queries %s, which docs/metrics.md does not list", name)
	}
	// The series this package defines exist under the names the dashboard
	// uses, including those a plain run does not create (trigger
	// lateness, scheduler errors), which e2e TestMetricsCluster cannot
	// see in a real scrape. Registered elsewhere: queue depths and
	// extension health (agent/metrics.go), raft's go-metrics (the bridge).
	gathered := map[string]bool{}
	for _, f := range families {
		gathered[f.GetName()] = true
	}
	elsewhere := regexp.MustCompile(`^gofer_(queue_|extension_|raft_apply$)`)
	for _, name := range regexp.MustCompile(`gofer_[A-Za-z_]+`).FindAllString(string(dash), -1) {
		base := suffix.ReplaceAllString(name, "")
		if isBridged(name) || elsewhere.MatchString(base) || gathered[name] || gathered[base] {
			continue
		}
		t.Errorf("the dashboard queries %s, which this registry does not define", name)
	}
}

// isBridged: go-metrics series keep raft's camelCase names.
func isBridged(name string) bool { return strings.ToLower(name) != name }
