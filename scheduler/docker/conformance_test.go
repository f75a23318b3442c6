package docker

import (
	"path/filepath"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/schedulertest"
)

// The Docker backend keeps the scheduler contract (scheduler/schedulertest)
// on the real engine, with the locally built busybox image running the
// suite's programs as shell scripts. The tests in docker_test.go cover
// what is Docker's own: images and pulls, entrypoints, networks, exact
// names against ID prefixes, the API timeout.
func TestConformance(t *testing.T) {
	t.Parallel()
	schedulertest.RunConformance(t, schedulertest.Factory{
		New: func(t *testing.T) scheduler.Scheduler { return newScheduler(t, Options{}) },
		Request: func(p schedulertest.Program) scheduler.StartRequest {
			return scheduler.StartRequest{Image: busyboxImage, Command: []string{"sh", "-c", p.Shell()}}
		},
		// The leak check after the tests removes (and names) whatever
		// the suite left behind.
		Labels: map[string]string{runLabel: runID, testLabel: "conformance"},
		Unreachable: func(t *testing.T) scheduler.Scheduler {
			// Nothing listens at this socket.
			return newScheduler(t, Options{Host: "unix://" + filepath.Join(t.TempDir(), "no-docker.sock")})
		},
		CreateUnstarted: func(t *testing.T, _ scheduler.Scheduler, req scheduler.StartRequest) {
			t.Cleanup(func() { cleanupContainer(t, req.Name) })
			if _, err := raw.ContainerCreate(tctx(t), &container.Config{Image: req.Image, Entrypoint: req.Entrypoint, Cmd: req.Command,
				Labels: req.Labels}, nil, nil, nil, req.Name); err != nil {
				t.Fatalf("creating %s: %v", req.Name, err)
			}
		},
	})
}
