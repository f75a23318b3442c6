package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/docker/dockertest"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// The images task containers run. No registry exists: build-images.sh
// makes both locally from the binary under test and Debian's busybox.
const (
	runsBusybox    = dockertest.BusyboxImage
	runsGoferImage = dockertest.GoferImage
	// runsStopGrace is the clusters' api.task_execution_stop_timeout: a
	// timed-out or run-cancelled container whose PID 1 ignores SIGTERM
	// (a plain `sleep` does) is killed after it, instead of the default
	// 30 s.
	runsStopGrace = 2 * time.Second
)

var (
	runsDockerOnce sync.Once
	runsDockerCli  *dockerclient.Client
	runsDockerErr  error
)

var (
	imagesOnce sync.Once
	imagesErr  error
)

// ensureImages builds gofer/gofer (from the binary under test) and
// gofer/busybox once per test binary, the way every Docker test and
// `make images` builds them (dockertest.BuildImagesFrom).
func ensureImages(t testing.TB) {
	t.Helper()
	imagesOnce.Do(func() { imagesErr = dockertest.BuildImagesFrom(goferBin) })
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
}

// runsDocker is a client of the machine's Docker engine, the one every
// node of every test cluster shares.
func runsDocker(t testing.TB) *dockerclient.Client {
	t.Helper()
	runsDockerOnce.Do(func() {
		runsDockerCli, runsDockerErr = dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	})
	if runsDockerErr != nil {
		t.Fatalf("docker client: %v", runsDockerErr)
	}
	return runsDockerCli
}

// runsContainers lists every container (running or not) labelled with
// the cluster id.
func runsContainers(ctx context.Context, t testing.TB, clusterID string) ([]container.Summary, error) {
	return runsDocker(t).ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", scheduler.LabelCluster+"="+clusterID))})
}

// runsContainerNames renders containers for a failure message.
func runsContainerNames(list []container.Summary) string {
	var names []string
	for _, c := range list {
		names = append(names, fmt.Sprintf("%s (%s)", strings.Join(c.Names, ","), c.State))
	}
	sort.Strings(names)
	return strings.Join(names, "; ")
}

// removeContainers force-removes whatever containers of the cluster are
// left (dockertest.RemoveClusterContainers); it reports what it removed.
func removeContainers(t testing.TB, clusterID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	removed, err := dockertest.RemoveClusterContainers(ctx, clusterID)
	if err != nil {
		t.Logf("cleanup of cluster %s: %v", clusterID, err)
	}
	if len(removed) > 0 {
		t.Logf("cleanup: removed %d leftover containers of cluster %s: %s", len(removed), clusterID, strings.Join(removed, "; "))
	}
}

// runsKeepLogs copies the nodes' whole logs to $GOFER_E2E_LOG_DIR (when
// set) for a failed test: the harness shows only their tails.
func runsKeepLogs(t testing.TB, c *Cluster) {
	dir := os.Getenv("GOFER_E2E_LOG_DIR")
	if dir == "" {
		return
	}
	dir = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keep logs: %v", err)
		return
	}
	for _, n := range c.Nodes {
		if data, err := os.ReadFile(n.logPath); err == nil {
			_ = os.WriteFile(filepath.Join(dir, n.Name+".log"), data, 0o644)
		}
	}
	t.Logf("node logs kept in %s", dir)
}

// runsCluster is a test cluster whose nodes run tasks on the machine's
// Docker engine.
type runsCluster struct {
	*Cluster
	// ID is the cluster id, the gofer.cluster label of its containers.
	ID string
	// cl reads linearizably (from the leader) and writes through any node.
	cl *client.Client
}

// runsNewCluster starts size nodes like NewCluster, with env added to
// every node (before its first start), the short stop grace and no
// container network. Whatever containers the cluster leaves are removed
// when t ends, after the nodes are killed.
func runsNewCluster(t *testing.T, size int, env ...string) *runsCluster {
	t.Helper()
	ensureImages(t)
	rc := &runsCluster{}
	// Registered before the nodes' own cleanups, so it runs after them.
	t.Cleanup(func() {
		if rc.ID != "" {
			removeContainers(t, rc.ID)
		}
	})
	// No network for task containers: none of these tasks needs one, and
	// Docker 20.10 (Debian's docker.io) can deadlock its network
	// controller when many bridge endpoints come and go at once.
	// No standard extensions: these tests count the cluster's task
	// containers (noContainersLeft, the Docker event watch), and an
	// extension's container is not a task's (e2e/supervisor_test.go
	// tests those).
	env = append([]string{
		"GOFER_WEB_API__TASK_EXECUTION_STOP_TIMEOUT=" + runsStopGrace.String(),
		"GOFER_WEB_SCHEDULER__DOCKER__NETWORK=none",
		"GOFER_WEB_EXTENSIONS__INSTALL_STD_EXTENSIONS=false",
	}, env...)
	c := NewCluster(t, size, env...)
	// Runs before the temp dirs holding the logs are removed.
	t.Cleanup(func() {
		if t.Failed() {
			runsKeepLogs(t, c)
		}
	})
	h, err := c.Leader().Health()
	if err != nil || h.ClusterID == "" {
		t.Fatalf("leader health: %+v %v", h, err)
	}
	rc.Cluster, rc.ID, rc.cl = c, h.ClusterID, c.Client().Consistent()
	return rc
}

// deploy registers cfg and makes that version live.
func (rc *runsCluster) deploy(t testing.TB, cfg *sdk.PipelineConfig) {
	t.Helper()
	ctx := context.Background()
	pc, err := rc.cl.RegisterConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("register pipeline %s: %v", cfg.ID, err)
	}
	if _, err := rc.cl.DeployConfig(ctx, cfg.ID, pc.Version); err != nil {
		t.Fatalf("deploy pipeline %s version %d: %v", cfg.ID, pc.Version, err)
	}
}

// start starts a run and fails the test if it is refused.
func (rc *runsCluster) start(t testing.TB, pipeline string, vars map[string]string) *model.Run {
	t.Helper()
	r, err := rc.cl.StartRun(context.Background(), pipeline, vars)
	if err != nil {
		t.Fatalf("start a run of %s: %v", pipeline, err)
	}
	return r
}

// wait waits until the run is complete and returns it.
func (rc *runsCluster) wait(t testing.TB, pipeline string, run int64, timeout time.Duration) *model.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := rc.cl.WaitRun(ctx, pipeline, run, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("run %d of %s did not complete within %s: %v\n%s", run, pipeline, timeout, err, rc.describe(pipeline, run))
	}
	return r
}

// tasks reads a run's task executions by task id.
func (rc *runsCluster) tasks(t testing.TB, pipeline string, run int64) map[string]*model.TaskExecution {
	t.Helper()
	list, err := rc.cl.ListTasks(context.Background(), pipeline, run)
	if err != nil {
		t.Fatalf("list tasks of run %d of %s: %v", run, pipeline, err)
	}
	out := map[string]*model.TaskExecution{}
	for _, te := range list {
		out[te.TaskID] = te
	}
	return out
}

// task reads one task execution.
func (rc *runsCluster) task(t testing.TB, pipeline string, run int64, task string) *model.TaskExecution {
	t.Helper()
	te, err := rc.cl.GetTask(context.Background(), pipeline, run, task)
	if err != nil {
		t.Fatalf("get task %s of run %d of %s: %v", task, run, pipeline, err)
	}
	return te
}

// waitTask polls a task until ok accepts it.
func (rc *runsCluster) waitTask(t testing.TB, pipeline string, run int64, task string, timeout time.Duration, what string, ok func(*model.TaskExecution) bool) *model.TaskExecution {
	t.Helper()
	var te *model.TaskExecution
	WaitFor(t, timeout, func() (err error) {
		if te, err = rc.cl.GetTask(context.Background(), pipeline, run, task); err != nil {
			return err
		}
		if !ok(te) {
			return fmt.Errorf("task %s of run %d of %s is not %s yet: state %s status %s", task, run, pipeline, what, te.State, te.Status)
		}
		return nil
	})
	return te
}

// logs reads a task's whole stored output (no follow).
func runsLogs(t testing.TB, cl *client.Client, pipeline string, run int64, task string) string {
	t.Helper()
	rc, err := cl.TaskLogs(context.Background(), pipeline, run, task, false)
	if err != nil {
		t.Fatalf("logs of task %s of run %d of %s: %v", task, run, pipeline, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read logs of task %s of run %d of %s: %v", task, run, pipeline, err)
	}
	return string(b)
}

// describe renders a run and its tasks for a failure message.
func (rc *runsCluster) describe(pipeline string, run int64) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rc.cl.GetRun(ctx, pipeline, run)
	if err != nil {
		return fmt.Sprintf("(cannot read run %d of %s: %v)", run, pipeline, err)
	}
	tasks, _ := rc.cl.ListTasks(ctx, pipeline, run)
	b, _ := json.MarshalIndent(map[string]any{"run": r, "tasks": runsTrimTasks(tasks)}, "", "  ")
	return string(b)
}

// runsTrimTasks drops what makes a task dump long and says nothing here.
func runsTrimTasks(tasks []*model.TaskExecution) []map[string]any {
	var out []map[string]any
	for _, te := range tasks {
		out = append(out, map[string]any{"task": te.TaskID, "state": te.State, "status": te.Status, "reason": te.StatusReason,
			"attempt": te.Attempt, "attempts": te.Attempts, "exit": te.ExitCode, "scheduled": te.Scheduled, "started": te.Started,
			"ended": te.Ended, "container": te.Container, "cancel": te.Cancel})
	}
	return out
}

// noContainersLeft waits until no container of the cluster remains:
// the executor removes each finished container (and the sweep whatever
// a crash left).
func (rc *runsCluster) noContainersLeft(t testing.TB, timeout time.Duration) {
	t.Helper()
	began := time.Now()
	defer func() {
		t.Logf("no container of cluster %s left after %s", rc.ID, time.Since(began).Round(time.Millisecond))
	}()
	WaitFor(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		list, err := runsContainers(ctx, t, rc.ID)
		if err != nil {
			return err
		}
		if len(list) > 0 {
			return fmt.Errorf("%d containers of cluster %s remain: %s", len(list), rc.ID, runsContainerNames(list))
		}
		return nil
	})
}

// cli runs the gofer CLI against url with the admin token and returns
// its output and exit code.
func (rc *runsCluster) cli(t testing.TB, url string, args ...string) (string, int) {
	t.Helper()
	out, err := runCLI(t, nil, append([]string{"-a", url, "--token", rc.Token}, args...)...)
	if err == nil {
		return out, 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return out, ee.ExitCode()
	}
	t.Errorf("gofer %s: %v\n%s", strings.Join(args, " "), err, out)
	return out, -1
}

// runsSh is a busybox task running script with sh -c.
func runsSh(id, script string) *sdk.TaskConfig {
	return &sdk.TaskConfig{ID: id, Image: runsBusybox, Command: []string{"sh", "-c", script}}
}

// runsAfter makes task depend on parents with the given condition.
func runsAfter(task *sdk.TaskConfig, cond sdk.RequiredParentStatus, parents ...string) *sdk.TaskConfig {
	if task.DependsOn == nil {
		task.DependsOn = map[string]sdk.RequiredParentStatus{}
	}
	for _, p := range parents {
		task.DependsOn[p] = cond
	}
	return task
}

// runsMillis renders an epoch-ms stamp relative to base for messages.
func runsMillis(ms, base int64) string {
	if ms == 0 {
		return "-"
	}
	return (time.Duration(ms-base) * time.Millisecond).String()
}
