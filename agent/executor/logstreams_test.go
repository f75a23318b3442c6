package executor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/fake"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// A backend with separate stdout and stderr (Nomad; here the fake's
// StreamLogger) has both streams collected live, and a new leader resumes
// each at its own stored position. Output of both streams is written
// before the failover, while no leader reads, and after: the log holds
// every byte of each stream exactly once, in each stream's order, masked
// — including a secret whose start the old leader stored on stderr and
// whose end only the new one reads (its stream's own mask resumes with
// the bytes before its position).
func TestSeparateStreamsResumeAfterFailover(t *testing.T) {
	t.Parallel()
	const a, b = "token-AAAA-end1", "end1-BBBB-secret" // a's end begins b
	h, sched := newFakeHarness(t, pipeline("streams", shTask("t", "ignored by the fake").
		Variable("A", sdk.PipelineSecret("a")).Variable("B", sdk.PipelineSecret("b"))), nil)
	sched.Scripts = func(scheduler.StartRequest) fake.Script {
		return fake.Script{Hold: true, Output: []fake.Line{{Text: "out 1"}, {Stderr: true, Text: "err 1"}}}
	}
	keys, err := seal.NewKeyring("9f3c1a7e5b2d4086c1e9a3f7b5d20846")
	if err != nil {
		t.Fatal(err)
	}
	box := keys.Primary()
	for key, value := range map[string]string{"a": a, "b": b} {
		sealed, err := box.Seal([]byte(value), seal.PipelineLocation(model.DefaultNamespace, "streams", key))
		if err != nil {
			t.Fatal(err)
		}
		h.must(fsm.CmdSecretPut, fsm.SecretPut{NamespaceID: model.DefaultNamespace, PipelineID: "streams", Key: key,
			Sealed: sealed, KeyCheck: box.KeyCheck()})
	}
	cfg := h.config()
	cfg.Secrets = keys
	waitStored := func(what string, want model.StreamOffsets) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if so := h.task("t").StreamOffsets; so != nil && *so == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: stored positions %+v, want %+v; log %q", what, h.task("t").StreamOffsets, want, h.log("t"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	print := func(l fake.Line) {
		t.Helper()
		if !sched.Print(h.task("t").Container, l) {
			t.Fatalf("the container is not running to print %+v", l)
		}
	}

	// The first leader: both streams arrive while the container runs.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = New(cfg, h.deps(), sched.WithStreams()).Run(ctx) }()
	waitStored("the first lines", model.StreamOffsets{Stdout: 6, Stderr: 6})
	// a on stderr, not ending its line: the leader stores it masked but
	// for its end "end1", which may begin b, and holds that back.
	print(fake.Line{Stderr: true, Text: "err 2 " + a, Partial: true})
	print(fake.Line{Text: "out 2"})
	waitStored("the second writes", model.StreamOffsets{Stdout: 12, Stderr: 12 + int64(len(a)-len("end1"))})
	cancel()
	<-done

	// No leader: both streams go on.
	print(fake.Line{Stderr: true, Text: "QQ"})
	print(fake.Line{Text: "out 3"})

	// The next leader resumes each stream at its own position.
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { defer close(done); _ = New(cfg, h.deps(), sched.WithStreams()).Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitStored("after the failover", model.StreamOffsets{Stdout: 18, Stderr: 12 + int64(len(a)) + 3})
	print(fake.Line{Stderr: true, Text: "err 4"})
	print(fake.Line{Text: "out 4"})
	if !sched.Exit(h.task("t").Container, 0) {
		t.Fatal("the container was not running")
	}
	h.waitRun(time.Minute)

	stdout := "out 1\nout 2\nout 3\nout 4\n"
	stderr := "err 1\nerr 2 " + strings.Repeat("*", len(a)) + "QQ\nerr 4\n"
	got := h.log("t")
	if !interleaves(got, stdout, stderr) {
		t.Fatalf("log %q is not stdout %q and stderr %q, each whole, once and in order", got, stdout, stderr)
	}
	if n := sched.Calls("Logs"); n != 0 {
		t.Fatalf("the executor read the one combined stream %d times; a backend with separate streams is read per stream", n)
	}
	if so := h.task("t").StreamOffsets; so == nil || *so != (model.StreamOffsets{Stdout: int64(len(stdout)), Stderr: int64(len(stderr))}) {
		t.Fatalf("stored positions %+v, want the ends of both streams", so)
	}
}

// interleaves reports whether s is a and b merged, each in its order.
func interleaves(s, a, b string) bool {
	if len(s) != len(a)+len(b) {
		return false
	}
	// ok[j]: s[:i+j] merges a[:i] and b[:j], for the current i.
	ok := make([]bool, len(b)+1)
	for i := 0; i <= len(a); i++ {
		for j := 0; j <= len(b); j++ {
			switch {
			case i == 0 && j == 0:
				ok[j] = true
			default:
				fromA := i > 0 && ok[j] && a[i-1] == s[i+j-1]
				fromB := j > 0 && ok[j-1] && b[j-1] == s[i+j-1]
				ok[j] = fromA || fromB
			}
		}
	}
	return ok[len(b)]
}

// An attempt whose log a leader of an older release began on the one
// ordered stream (stored output, no per-stream positions) is continued
// on that stream after an upgrade: its LogOffset counts bytes of that
// stream, and the positions of each stream within it are unknown.
func TestStreamsBackendContinuesALogBegunOnTheOneStream(t *testing.T) {
	t.Parallel()
	h, sched := newFakeHarness(t, pipeline("upgrade", shTask("t", "ignored by the fake")), nil)
	sched.Scripts = func(scheduler.StartRequest) fake.Script {
		return fake.Script{Hold: true, Output: []fake.Line{{Text: "out 1"}, {Stderr: true, Text: "err 1"}}}
	}
	// The old leader: the one stream only (the fake without StreamLogger).
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = New(h.config(), h.deps(), sched).Run(ctx) }()
	for deadline := time.Now().Add(30 * time.Second); h.task("t").LogOffset < 12; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the old leader stored %q", h.log("t"))
		}
	}
	cancel()
	<-done
	if so := h.task("t").StreamOffsets; so != nil {
		t.Fatalf("a log read from the one stream has per-stream positions %+v", so)
	}
	name := h.task("t").Container
	sched.Print(name, fake.Line{Stderr: true, Text: "err 2"})
	sched.Print(name, fake.Line{Text: "out 2"})

	// The upgraded leader on a backend with separate streams.
	calls := sched.Calls("StreamLogs")
	h.startExecutor(sched.WithStreams())
	for deadline := time.Now().Add(30 * time.Second); h.task("t").LogOffset < 24; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the new leader stored %q", h.log("t"))
		}
	}
	sched.Exit(name, 0)
	h.waitRun(time.Minute)
	if got, want := h.log("t"), "out 1\nerr 1\nerr 2\nout 2\n"; got != want {
		t.Fatalf("log %q, want the one stream %q", got, want)
	}
	if n := sched.Calls("StreamLogs") - calls; n != 0 {
		t.Fatalf("the new leader opened %d separate streams for a log begun on the one stream", n)
	}
}
