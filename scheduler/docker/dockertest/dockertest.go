// Package dockertest prepares a Docker engine for tests that run real
// containers: it checks the engine answers and builds the test images
// (no registry is needed).
package dockertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/goferhq/gofer/scheduler"
)

// The images e2e/scripts/build-images.sh makes.
const (
	GoferImage   = "gofer/gofer:latest"
	BusyboxImage = "gofer/busybox:latest"
)

// SkipEnv, when set, lets a test binary pass without an engine.
const SkipEnv = "GOFER_SKIP_DOCKER_TESTS"

// Ping checks the engine of DOCKER_HOST (or the local socket) answers.
func Ping() error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cli.Ping(ctx)
	return err
}

// BuildImages builds a fresh static gofer binary (bin/gofer may predate
// the debug tools) and makes the images from it (BuildImagesFrom). If the
// tree does not build (someone else's change in progress), an existing
// bin/gofer that has the debug tools will do.
func BuildImages() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gofer-docker-test-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "gofer")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fallback := filepath.Join(root, "bin", "gofer")
		if exec.Command(fallback, "debug", "--help").Run() != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
		fmt.Fprintf(os.Stderr, "go build failed, using %s:\n%s", fallback, out)
		bin = fallback
	}
	return BuildImagesFrom(bin)
}

// BuildImagesFrom makes the test images from a given gofer binary with
// e2e/scripts/build-images.sh, the one way every test (and `make images`)
// builds them; the script re-imports gofer/gofer only when the binary
// changed.
func BuildImagesFrom(bin string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	script := exec.Command("bash", filepath.Join(root, "e2e", "scripts", "build-images.sh"))
	script.Env = append(os.Environ(), "GOFER_BIN="+bin)
	out, err := script.CombinedOutput()
	if err != nil {
		return fmt.Errorf("e2e/scripts/build-images.sh: %v\n%s", err, out)
	}
	return nil
}

// RemoveClusterContainers force-removes every container labelled with the
// cluster id (running or not) and returns the names it removed: the one
// cleanup every test uses after a cluster ran tasks.
func RemoveClusterContainers(ctx context.Context, clusterID string) ([]string, error) {
	if clusterID == "" {
		return nil, nil
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", scheduler.LabelCluster+"="+clusterID))})
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, c := range list {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, fmt.Errorf("remove %v: %w", c.Names, err))
			continue
		}
		removed = append(removed, strings.Join(c.Names, ",")+" ("+c.State+")")
	}
	sort.Strings(removed)
	return removed, errors.Join(errs...)
}

// Prepare is what a TestMain calls: nil when the engine answers and the
// images are built; skip when there is no engine and SkipEnv is set.
func Prepare() (skip bool, err error) {
	if err := Ping(); err != nil {
		if os.Getenv(SkipEnv) != "" {
			return true, nil
		}
		return false, fmt.Errorf("these tests need a Docker engine (set %s=1 to skip): %w", SkipEnv, err)
	}
	if err := BuildImages(); err != nil {
		return false, fmt.Errorf("building test images: %w", err)
	}
	return false, nil
}

// repoRoot is the module root: this file lives in scheduler/docker/dockertest.
func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("dockertest: cannot locate the repository")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}
