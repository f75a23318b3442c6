package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	dockerclient "github.com/docker/docker/client"

	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/docker/dockertest"
	"github.com/goferhq/gofer/scheduler/nomad"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// nomadCluster starts a cluster whose tasks run on the Nomad agent of
// NOMAD_ADDR, or skips the test when it is not set.
func nomadCluster(t *testing.T, size int, env ...string) (*runsCluster, string) {
	t.Helper()
	addr := os.Getenv("NOMAD_ADDR")
	if addr == "" {
		t.Skip("NOMAD_ADDR not set: no Nomad agent to run tasks on (docs/nomad.md)")
	}
	ensureImages(t)
	docker, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	if err := docker.ImageTag(context.Background(), dockertest.BusyboxImage, nomadBusybox); err != nil {
		t.Fatal(err)
	}
	rc := runsNewCluster(t, size, append([]string{"GOFER_WEB_SCHEDULER__ENGINE=nomad", "GOFER_WEB_SCHEDULER__NOMAD__ADDRESS=" + addr,
		"GOFER_WEB_SCHEDULER__NOMAD__STOP_GRACE=2s"}, env...)...)
	return rc, addr
}

func nomadSh(id, script string) *sdk.TaskConfig {
	return &sdk.TaskConfig{ID: id, Image: nomadBusybox, Command: []string{"sh", "-c", script}}
}

// nomadNoJobsLeft waits until no job of the cluster is left on Nomad:
// finished jobs are purged once recorded (the sweep, every 30 s, catches
// what the executor missed).
func nomadNoJobsLeft(t *testing.T, rc *runsCluster, addr string) {
	t.Helper()
	s, err := nomad.New(nomad.Options{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		left, err := s.List(ctx, map[string]string{scheduler.LabelCluster: rc.ID})
		cancel()
		if err == nil && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs of cluster %s left on Nomad: %+v %v", rc.ID, left, err)
		}
	}
}

// nomadBusybox is the busybox test image under a tag Nomad v1.6's docker
// driver does not pull (it always pulls :latest; there is no registry).
const nomadBusybox = "gofer/busybox:nomad-test"

// TestNomadRun runs a pipeline on the Nomad agent of NOMAD_ADDR
// (docs/nomad.md): a task that succeeds, one that fails with its exit
// code, one that runs after the failure; each task's output is stored,
// and every job is purged once its result is recorded.
func TestNomadRun(t *testing.T) {
	rc, addr := nomadCluster(t, 1)
	sh := nomadSh
	p := "nomad"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "on Nomad", Tasks: []*sdk.TaskConfig{
		sh("good", "echo good ran; echo good err >&2"),
		sh("bad", "echo bad ran; exit 3"),
		runsAfter(sh("after-any", "echo after-any ran"), sdk.RequiredParentStatusAny, "bad"),
	}})
	run := rc.start(t, p, nil)
	r := rc.wait(t, p, run.RunID, 2*time.Minute)
	tasks := rc.tasks(t, p, r.RunID)
	dump := rc.describe(p, r.RunID)
	if r.Status != model.RunStatusFailed {
		t.Errorf("run %s, want failed (task bad)\n%s", r.Status, dump)
	}
	for id, want := range map[string]int{"good": 0, "bad": 3, "after-any": 0} {
		te := tasks[id]
		if te == nil || te.State != model.TaskStateComplete || te.ExitCode == nil || *te.ExitCode != want {
			t.Errorf("task %s: %+v, want complete with exit code %d\n%s", id, te, want, dump)
			continue
		}
		if logs := runsLogs(t, rc.cl, p, r.RunID, id); !strings.Contains(logs, id+" ran") {
			t.Errorf("task %s logs %q", id, logs)
		}
	}
	if logs := runsLogs(t, rc.cl, p, r.RunID, "good"); !strings.Contains(logs, "good err") {
		t.Errorf("good's stderr is missing from its log: %q", logs)
	}
	nomadNoJobsLeft(t, rc, addr)
}

// TestNomadFailover SIGKILLs the leader while a task runs on Nomad: the
// new leader finds the task's job through the Nomad API and adopts it —
// one attempt, its whole log, no second job. The task writes to stdout and
// stderr before and after the kill; its stderr is in the log while it
// still runs (each stream is read live), and the new leader resumes each
// stream at its own position, so every line is there once.
func TestNomadFailover(t *testing.T) {
	rc, addr := nomadCluster(t, 3)
	p := "nomad-failover"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "failover on Nomad", Tasks: []*sdk.TaskConfig{
		nomadSh("long", "echo long started; echo long err before >&2; sleep 8; echo long ended; echo long err after >&2"),
		runsAfter(nomadSh("next", "echo next ran"), sdk.RequiredParentStatusSuccess, "long"),
	}})
	run := rc.start(t, p, nil)
	rc.waitTask(t, p, run.RunID, "long", time.Minute, "long to run", func(te *model.TaskExecution) bool {
		return te.State == model.TaskStateRunning
	})
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		logs := runsLogs(t, rc.cl, p, run.RunID, "long")
		if strings.Contains(logs, "long started") && strings.Contains(logs, "long err before") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("long's stdout and stderr not in its log while it runs: %q\n%s", logs, rc.describe(p, run.RunID))
		}
	}
	if te := rc.task(t, p, run.RunID, "long"); te.State != model.TaskStateRunning {
		t.Fatalf("long ended before its stderr was read: the test cannot tell a live stderr\n%s", rc.describe(p, run.RunID))
	}
	old := rc.Leader()
	old.Kill()
	leader := rc.Leader(old)
	t.Logf("SIGKILLed leader %s while long ran; %s took over", old.Name, leader.Name)
	old.Start()
	rc.WaitForMembers(3)
	r := rc.wait(t, p, run.RunID, 2*time.Minute)
	dump := rc.describe(p, r.RunID)
	if r.Status != model.RunStatusSuccessful {
		t.Fatalf("run %s, want successful\n%s", r.Status, dump)
	}
	long := rc.task(t, p, r.RunID, "long")
	if long.Attempt != 1 || len(long.Attempts) != 1 || long.ExitCode == nil || *long.ExitCode != 0 {
		t.Errorf("long: attempt %d, attempts %+v, exit %v; want its one attempt adopted\n%s", long.Attempt, long.Attempts, long.ExitCode, dump)
	}
	logs := runsLogs(t, rc.cl, p, r.RunID, "long")
	for _, line := range []string{"long started\n", "long err before\n", "long ended\n", "long err after\n"} {
		if strings.Count(logs, line) != 1 {
			t.Errorf("long's log across the failover: %q, want %q once", logs, line)
		}
	}
	if len(logs) != len("long started\nlong err before\nlong ended\nlong err after\n") {
		t.Errorf("long's log across the failover: %q holds more than its four lines", logs)
	}
	nomadNoJobsLeft(t, rc, addr)
}
