package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/goferhq/gofer/agent/supervisor"
	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/docker"
	"github.com/goferhq/gofer/store/model"
)

var (
	upstreamExtOnce  sync.Once
	upstreamExtImage string
	upstreamExtErr   error
)

// upstreamExtensionImage builds e2e/testdata/upstreamext (an extension
// written against upstream's contract with raw net/http) as a static
// binary and imports it as a one-file image, tagged by its hash.
func upstreamExtensionImage(t *testing.T) string {
	t.Helper()
	upstreamExtOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gofer-upstreamext-")
		if err != nil {
			upstreamExtErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "ext")
		build := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/upstreamext")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			upstreamExtErr = fmt.Errorf("build upstreamext: %v\n%s", err, out)
			return
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			upstreamExtErr = err
			return
		}
		sum := sha256.Sum256(data)
		image := "gofer-e2e/upstreamext:" + hex.EncodeToString(sum[:6])
		eng, err := docker.New(docker.Options{})
		if err != nil {
			upstreamExtErr = err
			return
		}
		defer eng.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, present, err := eng.ImageLabel(ctx, image, "x"); err == nil && present {
			upstreamExtImage = image
			return
		}
		upstreamExtErr = eng.ImportBinary(ctx, image, bin, []string{"/ext"}, nil)
		upstreamExtImage = image
	})
	if upstreamExtErr != nil {
		t.Fatal(upstreamExtErr)
	}
	return upstreamExtImage
}

// supInspect is the extension's container as the engine sees it.
func supInspect(t *testing.T, name string) (container.InspectResponse, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := runsDocker(t).ContainerInspect(ctx, name)
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "no such container") {
			return info, false
		}
		t.Fatalf("inspect %s: %v", name, err)
	}
	return info, true
}

func supEnv(info container.InspectResponse, key string) string {
	for _, kv := range info.Config.Env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// waitExtensionState waits until node reports the extension in state,
// read on that node (a follower answers from its own replicated state).
func waitExtensionState(t *testing.T, cl *client.Client, id, state string) *model.ExtensionView {
	t.Helper()
	var got *model.ExtensionView
	WaitFor(t, 90*time.Second, func() error {
		e, err := cl.GetExtension(context.Background(), id)
		if err != nil {
			return err
		}
		got = e
		if e.State != state {
			return fmt.Errorf("extension %s is %s (%s), want %s", id, e.State, e.StateReason, state)
		}
		return nil
	})
	return got
}

// TestSupervisorRunsAdoptsRestartsReplacesRemoves (issue 10 item 2): an
// extension built against upstream's contract is started by the leader
// (state "running" readable on a follower, logs readable through a
// follower); after the leader is SIGKILLed the new leader adopts the
// same container; a killed container is restarted; a reinstall replaces
// it with the new secret; an uninstall removes it. The built-in image is
// imported from the server binary, labelled with its hash.
func TestSupervisorRunsAdoptsRestartsReplacesRemoves(t *testing.T) {
	ensureImages(t)
	image := upstreamExtensionImage(t)
	c := NewCluster(t, 3, "GOFER_WEB_EXTENSIONS__STOP_TIMEOUT=2s", "GOFER_WEB_EXTENSIONS__INSTALL_STD_EXTENSIONS=true")
	ctx := context.Background()
	h, err := c.Leader().Health()
	if err != nil {
		t.Fatal(err)
	}
	name := supervisor.ContainerName(h.ClusterID, "upx")
	admin := c.Client()

	inst, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "upx", Image: image, Settings: map[string]string{"SOME_SETTING": "v1"}})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	follower := c.Followers()[0]
	e := waitExtensionState(t, follower.Client(c.Token), "upx", model.ExtensionStateRunning)
	if e.Started == 0 || !strings.Contains(string(e.Documentation), "upstream-contract test extension") {
		t.Errorf("a follower shows %+v: want the start time and the /api/info documentation", e)
	}
	info, ok := supInspect(t, name)
	if !ok || !info.State.Running {
		t.Fatalf("container %s is not running", name)
	}
	firstID := info.ID
	for k, want := range map[string]string{"GOFER_EXTENSION_SYSTEM_ID": "upx", "GOFER_EXTENSION_SYSTEM_SECRET": inst.Token.Secret,
		"GOFER_EXTENSION_SYSTEM_USE_TLS": "false", "SOME_SETTING": "v1"} {
		if got := supEnv(info, k); got != want {
			t.Errorf("env %s = %q, want %q", k, got, want)
		}
	}
	if l := info.Config.Labels; l[scheduler.LabelCluster] != h.ClusterID || l[scheduler.LabelExtension] != "upx" || l[scheduler.LabelExtensionToken] != inst.Token.ID {
		t.Errorf("labels %v", l)
	}

	// Logs through a follower (its own engine, by the container's name).
	WaitFor(t, 30*time.Second, func() error {
		rc, err := follower.Client(c.Token).ExtensionLogs(ctx, "upx", false)
		if err != nil {
			return err
		}
		defer rc.Close()
		out, _ := io.ReadAll(rc)
		if !strings.Contains(string(out), "upstreamext upx booted: 0 subscriptions restored") {
			return fmt.Errorf("logs lack the boot line: %q", out)
		}
		return nil
	})

	// The CLI shows the state and the logs, through the follower too.
	if out, err := runCLI(t, nil, "-a", follower.URL, "--token", c.Token, "extension", "get", "upx"); err != nil || !strings.Contains(out, "running") {
		t.Errorf("gofer extension get: %v\n%s", err, out)
	}
	if out, err := runCLI(t, nil, "-a", follower.URL, "--token", c.Token, "extension", "logs", "upx"); err != nil || !strings.Contains(out, "upstreamext upx listening on 127.0.0.1:") {
		t.Errorf("gofer extension logs: %v\n%s", err, out)
	}

	// The built-in image is the server's own binary, labelled with its hash.
	meta, err := admin.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(goferBin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	builtin := supervisor.BuiltinImage("interval", meta.Semver)
	WaitFor(t, 60*time.Second, func() error {
		img, err := runsDocker(t).ImageInspect(ctx, builtin)
		if err != nil {
			return err
		}
		if got := img.Config.Labels[supervisor.LabelBinarySHA256]; got != hex.EncodeToString(sum[:]) {
			return fmt.Errorf("%s has label %q, want the binary's hash", builtin, got)
		}
		return nil
	})
	std, err := admin.GetExtension(ctx, "interval")
	if err != nil || std.Image != builtin {
		t.Errorf("standard extension interval: %+v %v, want image %s", std, err, builtin)
	}

	// Leader failover: the new leader adopts the running container.
	old := c.Leader()
	old.Kill()
	newLeader := c.Leader(old)
	t.Logf("killed leader %s; new leader %s", old.Name, newLeader.Name)
	// Give the new leader's supervisor time to look (several health
	// checks); the container must be the same one, never restarted.
	waitExtensionState(t, newLeader.Client(c.Token), "upx", model.ExtensionStateRunning)
	time.Sleep(5 * time.Second)
	info, ok = supInspect(t, name)
	if !ok || info.ID != firstID || !info.State.Running || info.RestartCount != 0 {
		t.Fatalf("after failover the container is %s (running %v), want the adopted %s", info.ID, ok && info.State.Running, firstID)
	}

	// A killed container is restarted (a new container of the same name).
	if err := runsDocker(t).ContainerKill(ctx, name, "KILL"); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 90*time.Second, func() error {
		info, ok := supInspect(t, name)
		if !ok || info.ID == firstID || !info.State.Running {
			return fmt.Errorf("no new running container yet")
		}
		return nil
	})
	waitExtensionState(t, newLeader.Client(c.Token), "upx", model.ExtensionStateRunning)
	info, _ = supInspect(t, name)
	secondID := info.ID

	// A reinstall replaces it, with the new secret.
	again, err := newLeader.Client(c.Token).InstallExtension(ctx, client.InstallRequest{ID: "upx", Image: image})
	if err != nil {
		t.Fatalf("reinstall: %v", err)
	}
	WaitFor(t, 90*time.Second, func() error {
		info, ok := supInspect(t, name)
		if !ok || info.ID == secondID || !info.State.Running {
			return fmt.Errorf("not replaced yet")
		}
		if got := supEnv(info, "GOFER_EXTENSION_SYSTEM_SECRET"); got != again.Token.Secret {
			return fmt.Errorf("replacement has secret %q, want the reinstall's", got)
		}
		return nil
	})
	waitExtensionState(t, newLeader.Client(c.Token), "upx", model.ExtensionStateRunning)

	// An uninstall removes it.
	if err := newLeader.Client(c.Token).UninstallExtension(ctx, "upx"); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 60*time.Second, func() error {
		if _, ok := supInspect(t, name); ok {
			return fmt.Errorf("container %s still exists", name)
		}
		return nil
	})
}

// TestSupervisorMissingImageIsNotPulled: an image that is not on the
// engine is not pulled without the install's pull; the extension's state
// says so, naming the image.
func TestSupervisorMissingImageIsNotPulled(t *testing.T) {
	c := NewCluster(t, 1, "GOFER_WEB_EXTENSIONS__INSTALL_STD_EXTENSIONS=false")
	ctx := context.Background()
	const image = "gofer-e2e/not-here:never"
	if _, err := c.Client().InstallExtension(ctx, client.InstallRequest{ID: "ghost", Image: image}); err != nil {
		t.Fatal(err)
	}
	e := waitExtensionState(t, c.Client(), "ghost", model.ExtensionStateExited)
	if !strings.Contains(e.StateReason, image) || !strings.Contains(e.StateReason, "pull") {
		t.Errorf("state reason %q does not name the image and pull", e.StateReason)
	}
	if list, err := c.Client().ListExtensions(ctx, client.Page{}); err != nil || len(list) != 1 {
		t.Errorf("with install_std_extensions=false the cluster lists %d extensions (%v), want only ghost", len(list), err)
	}
}

// A dev server is the only node: when it stops, its extension containers
// go with it (a cluster leaves them for the next leader to adopt). The
// standard extensions it installs run while it does.
func TestDevServerRemovesItsExtensionContainersWhenItStops(t *testing.T) {
	n := NewNode(t, "dev", "--dev")
	n.Env = append(n.Env, "GOFER_WEB_EXTENSIONS__INSTALL_STD_EXTENSIONS=true")
	n.Start()
	var clusterID string
	WaitFor(t, 30*time.Second, func() error {
		h, err := n.Health()
		if err != nil || h.ClusterID == "" {
			return fmt.Errorf("dev server not up: %v", err)
		}
		clusterID = h.ClusterID
		return nil
	})
	t.Cleanup(func() { removeContainers(t, clusterID) })
	cl := n.Client("")
	for _, id := range []string{"interval", "cron"} {
		waitExtensionState(t, cl, id, model.ExtensionStateRunning)
	}
	if _, ok := supInspect(t, supervisor.ContainerName(clusterID, "interval")); !ok {
		t.Fatal("the interval extension runs in no container")
	}
	n.Stop()
	for _, id := range []string{"interval", "cron"} {
		if info, ok := supInspect(t, supervisor.ContainerName(clusterID, id)); ok {
			t.Errorf("extension %s's container is still there after the dev server stopped (%s)", id, info.State.Status)
		}
	}
}
