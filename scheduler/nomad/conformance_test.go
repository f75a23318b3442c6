package nomad

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/schedulertest"
)

// The Nomad backend keeps the scheduler contract (scheduler/schedulertest)
// on the real agent of NOMAD_ADDR, with the busybox image real_test.go
// tags for Nomad running the suite's programs as shell scripts. Without
// NOMAD_ADDR it is skipped, as the other real-agent tests are.
func TestConformance(t *testing.T) {
	s := realScheduler(t) // skips without NOMAD_ADDR; prepares the image
	labels := map[string]string{"gofer.test.conformance": randHex(4)}
	t.Cleanup(func() { removeLeftovers(t, s, labels) })
	schedulertest.RunConformance(t, schedulertest.Factory{
		New: func(t *testing.T) scheduler.Scheduler { return realScheduler(t) },
		Request: func(p schedulertest.Program) scheduler.StartRequest {
			return scheduler.StartRequest{Image: realImage, Command: []string{"sh", "-c", p.Shell()}}
		},
		Labels: labels,
		Unreachable: func(t *testing.T) scheduler.Scheduler {
			s, err := New(Options{Address: "http://" + deadAddr(t), APITimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		Skip: map[string]string{
			"ResumeCreated": "Nomad has no create/start split: registering the job is the start, " +
				"and a job still waiting for placement or its image is started by Nomad itself " +
				"(Start over it waits for that and returns nil; TestContractAdoptOnDuplicate covers that)",
		},
	})
}

// deadAddr is a loopback address where nothing listens: a port that was
// just free.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// removeLeftovers purges whatever job of this run the suite left behind
// (each case removes its own; this names a leak instead of keeping it).
func removeLeftovers(t *testing.T, s *Scheduler, labels map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	left, err := s.List(ctx, labels)
	if err != nil {
		t.Errorf("listing leftover jobs: %v", err)
		return
	}
	for _, c := range left {
		t.Errorf("the suite left job %s behind (%s)", c.Name, c.Status.State)
		_ = s.Remove(ctx, c.Name)
	}
}
