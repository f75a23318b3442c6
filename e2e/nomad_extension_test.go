package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/supervisor"
	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/nomad"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// nomadExtensionPorts is the extension port range of these tests: one
// nothing else on this host uses.
const nomadExtensionPorts = "19640-19649"

// TestNomadExtension runs the built-in interval extension on the Nomad
// agent of NOMAD_ADDR (docs/nomad.md, "Extensions on Nomad"): its image
// is made with `gofer service extension-image`, the extension is one job
// that reserves a port of the range and is reached at its allocation's
// address; a subscribed pipeline is triggered and its task runs on Nomad.
// The leader is then SIGKILLed: the new leader adopts the same allocation
// and the triggers go on. Uninstalling removes the job.
func TestNomadExtension(t *testing.T) {
	var clusterID string
	t.Cleanup(func() { nomadPurge(t, clusterID) }) // after the nodes are killed
	rc, addr := nomadCluster(t, 3, "GOFER_WEB_SCHEDULER__NOMAD__EXTENSION_PORTS="+nomadExtensionPorts)
	clusterID = rc.ID
	ctx := context.Background()
	meta, err := rc.cl.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	image := supervisor.BuiltinImage("interval", meta.Semver)
	out, err := runCLI(t, nil, "service", "extension-image", "interval")
	if err != nil || !strings.Contains(out, image) {
		t.Fatalf("gofer service extension-image: %v\n%s", err, out)
	}
	p := "nomad-ext"
	rc.deploy(t, &sdk.PipelineConfig{ID: p, Name: "triggered on Nomad", Tasks: []*sdk.TaskConfig{nomadSh("tick", "echo ticked on nomad")}})
	if _, err := rc.cl.InstallExtension(ctx, client.InstallRequest{ID: "interval", Image: image, Settings: map[string]string{"MIN_INTERVAL": "1s"}}); err != nil {
		t.Fatal(err)
	}
	waitExtensionState(t, rc.cl, "interval", model.ExtensionStateRunning)
	if _, err := rc.cl.Subscribe(ctx, p, "interval", "tick", map[string]string{"every": "3s"}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}

	s, err := nomad.New(nomad.Options{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	job := supervisor.ContainerName(rc.ID, "interval")
	first := nomadExtensionJob(t, s, rc.ID, job)
	t.Logf("extension job %s: allocation %s at %s, listening on %s", job, first.ID, first.IPAddress, first.Labels[scheduler.LabelExtensionAddr])

	triggered := nomadTriggeredRun(t, rc, p, 0)
	if logs := runsLogs(t, rc.cl, p, triggered, "tick"); !strings.Contains(logs, "ticked on nomad") {
		t.Errorf("triggered run %d logs %q", triggered, logs)
	}

	// Runs numbered after the last one before the kill were triggered
	// after it.
	runs, err := rc.cl.ListRuns(ctx, p, client.Page{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var lastBefore int64
	for _, r := range runs {
		lastBefore = max(lastBefore, r.RunID)
	}
	old := rc.Leader()
	old.Kill()
	leader := rc.Leader(old)
	t.Logf("SIGKILLed leader %s; %s took over", old.Name, leader.Name)
	old.Start()
	rc.WaitForMembers(3)
	after := nomadTriggeredRun(t, rc, p, lastBefore)
	again := nomadExtensionJob(t, s, rc.ID, job)
	if again.ID != first.ID {
		t.Errorf("after the failover the extension runs in allocation %s, want %s adopted", again.ID, first.ID)
	}
	if e, err := rc.cl.GetExtension(ctx, "interval"); err != nil || e.State != model.ExtensionStateRunning {
		t.Errorf("extension after the failover: %+v %v", e, err)
	}
	t.Logf("run %d was triggered after the failover", after)

	if err := rc.cl.UninstallExtension(ctx, "interval"); err != nil {
		t.Fatal(err)
	}
	nomadNoJobsLeft(t, rc, addr)
}

// nomadExtensionJob waits until the cluster's only extension job is the
// one named job, running at an address in the port range.
func nomadExtensionJob(t *testing.T, s *nomad.Scheduler, clusterID, job string) scheduler.Status {
	t.Helper()
	var st scheduler.Status
	WaitFor(t, 90*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		list, err := s.List(ctx, map[string]string{scheduler.LabelCluster: clusterID, scheduler.LabelExtension: ""})
		if err != nil {
			return err
		}
		if len(list) != 1 || list[0].Name != job {
			return fmt.Errorf("extension jobs %+v, want only %s", list, job)
		}
		if st, err = s.Inspect(ctx, job); err != nil {
			return err
		}
		bind := st.Labels[scheduler.LabelExtensionAddr]
		if st.State != scheduler.StateRunning || st.IPAddress == "" || !strings.HasPrefix(bind, "0.0.0.0:1964") {
			return fmt.Errorf("extension job %s: %+v, want running at an address, bound in %s", job, st, nomadExtensionPorts)
		}
		return nil
	})
	return st
}

// nomadTriggeredRun waits for a successful run of pipeline p numbered
// after since (started by the extension) and returns its number.
func nomadTriggeredRun(t *testing.T, rc *runsCluster, p string, since int64) int64 {
	t.Helper()
	var id int64
	WaitFor(t, 2*time.Minute, func() error {
		runs, err := rc.cl.ListRuns(context.Background(), p, client.Page{Limit: 50})
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.RunID > since && r.Status == model.RunStatusSuccessful {
				id = r.RunID
				return nil
			}
		}
		return fmt.Errorf("no successful run of %s after run %d yet (%d runs)", p, since, len(runs))
	})
	return id
}

// nomadPurge removes whatever jobs the cluster left on Nomad (a failed
// test's extension would otherwise run on).
func nomadPurge(t *testing.T, clusterID string) {
	addr := os.Getenv("NOMAD_ADDR")
	if clusterID == "" || addr == "" {
		return
	}
	s, err := nomad.New(nomad.Options{Address: addr})
	if err != nil {
		return
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, _ := s.List(ctx, map[string]string{scheduler.LabelCluster: clusterID})
	for _, c := range list {
		if err := s.Remove(ctx, c.Name); err != nil {
			t.Logf("purge %s: %v", c.Name, err)
		}
	}
}
