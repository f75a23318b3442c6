package docker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/goferhq/gofer/scheduler"
)

// What the extension supervisor needs of the backend: a per-container
// network overriding the configured one, with the container's IP address,
// id and labels in Inspect; NeverPull; and images made from one binary.

func TestNetworkOverrideAndInspectDetails(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{Network: "none"})
	name := mustStart(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"sleep", "30"}, Network: "bridge",
		Labels: map[string]string{"gofer.test.extra": "x"}})
	st, err := s.Inspect(tctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != scheduler.StateRunning || st.IPAddress == "" || len(st.ID) != 64 || st.Labels["gofer.test.extra"] != "x" {
		t.Fatalf("Inspect %+v: want running on the bridge with an IP address, the container id and its labels", st)
	}
	// Without the override the configured network ("none") applies: no address.
	other := mustStart(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"sleep", "30"}})
	if st, err := s.Inspect(tctx(t), other); err != nil || st.IPAddress != "" {
		t.Fatalf("Inspect %+v %v: a container on network none has an address", st, err)
	}
	// A label given without a value matches its presence.
	list, err := s.List(tctx(t), map[string]string{"gofer.test.extra": "", testLabel: testName(t)})
	if err != nil || len(list) != 1 || list[0].Name != name {
		t.Fatalf("List by label presence: %+v %v, want only %s", list, err, name)
	}
}

func TestNeverPullRefusesAMissingImageAtOnce(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{PullTimeout: time.Minute})
	missing := "gofer-test-missing/" + runID + ":never"
	began := time.Now()
	_, err := start(t, s, scheduler.StartRequest{Image: missing, Command: []string{"true"}, NeverPull: true})
	if !errors.Is(err, scheduler.ErrImageNotFound) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "may not pull") {
		t.Fatalf("Start: %v, want ErrImageNotFound naming the image and saying it may not be pulled", err)
	}
	t.Logf("refused after %s: %v", time.Since(began).Round(time.Millisecond), err)
	// A present image starts with NeverPull.
	mustStart(t, s, scheduler.StartRequest{Image: busyboxImage, Command: []string{"true"}, NeverPull: true})
}

func TestImportBinaryAndImageLabel(t *testing.T) {
	t.Parallel()
	s := newScheduler(t, Options{})
	ref := "gofer-test-import/" + runID + ":1"
	t.Cleanup(func() { _, _ = raw.ImageRemove(tctx(t), ref, image.RemoveOptions{Force: true}) })
	if _, present, err := s.ImageLabel(tctx(t), ref, "k"); err != nil || present {
		t.Fatalf("ImageLabel of a missing image: present %v, %v", present, err)
	}
	// A static busybox is a one-file image: run as `busybox echo`.
	bin := filepath.Join(t.TempDir(), "bb")
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no static busybox to import: %v", err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportBinary(tctx(t), ref, bin, []string{"/busybox", "echo", "imported"}, map[string]string{"gofer.binary_sha256": "abc"}); err != nil {
		t.Fatalf("ImportBinary: %v", err)
	}
	if v, present, err := s.ImageLabel(tctx(t), ref, "gofer.binary_sha256"); err != nil || !present || v != "abc" {
		t.Fatalf("ImageLabel: %q present %v, %v", v, present, err)
	}
	name := mustStart(t, s, scheduler.StartRequest{Image: ref, NeverPull: true})
	waitExited(t, s, name)
	if out := logs(t, s, name, false); strings.TrimSpace(out) != "imported" {
		t.Fatalf("the imported image's entrypoint printed %q", out)
	}
	if err := s.ImportBinary(tctx(t), ref, bin, nil, nil); !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("ImportBinary without an entrypoint: %v, want ErrInvalid", err)
	}
}
