package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/supervisor"
	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// triggerExtension is a running built-in extension a test can kill and
// bring back: a host process (startBuiltinExtension) or the container the
// supervisor runs (superviseBuiltinExtension).
type triggerExtension interface {
	// Kill SIGKILLs it.
	Kill()
	// Start brings it back (starts the process; for the container, waits
	// until the supervisor has restarted it).
	Start()
	// StartedAt is when its current process started.
	StartedAt() time.Time
	// Stop ends its ticking for good, so the test reads a ledger that no
	// longer moves (the process is killed; the container's extension is
	// disabled, so Gofer refuses its runs and skip reports).
	Stop()
}

// builtinExtension is a built-in extension running as the supervisor
// runs it: `gofer service extension <kind>` with the supervisor's
// environment, here as a host process.
type builtinExtension struct {
	t       testing.TB
	kind    string
	env     []string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	started time.Time
}

// startBuiltinExtension starts the extension of kind for the installed
// extension whose token secret is given, talking to every node of c.
func startBuiltinExtension(t testing.TB, c *Cluster, kind, secret string, settings map[string]string) *builtinExtension {
	t.Helper()
	var hosts []string
	for _, n := range c.Nodes {
		hosts = append(hosts, n.APIAddr)
	}
	env := []string{
		"GOFER_EXTENSION_SYSTEM_ID=" + kind,
		"GOFER_EXTENSION_SYSTEM_SECRET=" + secret,
		"GOFER_EXTENSION_SYSTEM_USE_TLS=false",
		"GOFER_EXTENSION_SYSTEM_GOFER_HOST=" + strings.Join(hosts, ","),
		"GOFER_EXTENSION_SYSTEM_GOFER_HOSTS=" + strings.Join(hosts, ","),
		fmt.Sprintf("GOFER_EXTENSION_SYSTEM_BINDADDRESS=127.0.0.1:%d", freePort(t)),
		"GOFER_EXTENSION_SYSTEM_LOG_LEVEL=debug",
	}
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	e := &builtinExtension{t: t, kind: kind, env: env, logPath: filepath.Join(t.TempDir(), "extension-"+kind+".log")}
	t.Cleanup(func() {
		e.Kill()
		if t.Failed() {
			if data, err := os.ReadFile(e.logPath); err == nil {
				lines := strings.Split(strings.TrimSpace(string(data)), "\n")
				t.Logf("extension %s log (last 40 lines):\n%s", kind, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	})
	e.Start()
	return e
}

// Start starts the process (again).
func (e *builtinExtension) Start() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	log, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(log, "\n===== start: gofer service extension %s\n", e.kind)
	cmd := exec.Command(goferBin, "service", "extension", e.kind)
	cmd.Env = append(os.Environ(), e.env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		e.t.Fatalf("start extension %s: %v", e.kind, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	e.cmd, e.done, e.started = cmd, done, time.Now()
}

// StartedAt is when the current process started.
func (e *builtinExtension) StartedAt() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started
}

// Kill SIGKILLs the process and waits for it to be gone.
func (e *builtinExtension) Kill() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGKILL)
	<-e.done
	e.cmd = nil
}

// Stop kills the process.
func (e *builtinExtension) Stop() { e.Kill() }

// tickLedger is what the cluster recorded for one interval subscription:
// the runs it started (by scheduled tick) and the ticks it skipped.
type tickLedger struct {
	anchor    time.Time // the subscription's creation, cut to the second
	every     time.Duration
	fired     map[int64][]int64 // tick unix → run ids
	skipped   map[int64]int     // tick unix → skip events
	ranges    int               // range skip events (unlisted ticks)
	watermark time.Time
	runs      []*model.Run
}

// readLedger reads the runs, skip events and watermark of a subscription
// with a consistent read.
func readLedger(t *testing.T, admin *client.Client, pipeline, ext, sub string, every time.Duration) *tickLedger {
	t.Helper()
	ctx := context.Background()
	cl := admin.Consistent()
	s, err := cl.GetSubscription(ctx, pipeline, ext, sub)
	if err != nil {
		t.Fatalf("subscription: %v", err)
	}
	l := &tickLedger{anchor: time.UnixMilli(s.Created).Truncate(time.Second), every: every,
		fired: map[int64][]int64{}, skipped: map[int64]int{}, watermark: time.UnixMilli(s.Watermark)}
	for offset := 0; ; offset += 500 {
		runs, err := cl.ListRuns(ctx, pipeline, client.Page{Limit: 500, Offset: offset})
		if err != nil {
			t.Fatalf("runs: %v", err)
		}
		for _, r := range runs {
			tick, err := strconv.ParseInt(r.Variables["GOFER_EXTENSION_SCHEDULED_TIME"], 10, 64)
			if err != nil {
				t.Fatalf("run %d has no scheduled time: %v", r.RunID, r.Variables)
			}
			l.fired[tick] = append(l.fired[tick], r.RunID)
			l.runs = append(l.runs, r)
		}
		if len(runs) < 500 {
			break
		}
	}
	for offset := 0; ; offset += 500 {
		evs, err := cl.ListEvents(ctx, client.Page{Limit: 500, Offset: offset})
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		for _, e := range evs {
			if e.Kind != model.EventSkippedTick || e.PipelineID != pipeline || e.Details.String("subscription_id") != sub {
				continue
			}
			if e.Details.Bool("range") {
				l.ranges++
				continue
			}
			tick, _ := e.Details.Int("tick")
			l.skipped[tick]++
		}
		if len(evs) < 500 {
			break
		}
	}
	return l
}

// check asserts the invariant of exactly-once ticks: every tick after the
// anchor up to the watermark either started exactly one run or was
// recorded as skipped exactly once, never both; no other tick fired. It
// returns the counts.
func (l *tickLedger) check(t *testing.T) (fired, skipped int) {
	t.Helper()
	if l.ranges != 0 {
		t.Errorf("%d range skip events; the test expects every skipped tick listed", l.ranges)
	}
	var problems []string
	last := l.watermark.Unix()
	for tick := l.anchor.Add(l.every); tick.Unix() <= last; tick = tick.Add(l.every) {
		u := tick.Unix()
		runs, skips := l.fired[u], l.skipped[u]
		switch {
		case len(runs) == 1 && skips == 0:
			fired++
		case len(runs) == 0 && skips == 1:
			skipped++
		default:
			problems = append(problems, fmt.Sprintf("tick %d (%s): runs %v, skip events %d", u, tick.UTC().Format("15:04:05"), runs, skips))
		}
	}
	var stray []int64
	for u := range l.fired {
		if u <= l.anchor.Unix() || u > last || (u-l.anchor.Unix())%int64(l.every/time.Second) != 0 {
			stray = append(stray, u)
		}
	}
	for u := range l.skipped {
		if u <= l.anchor.Unix() || u > last || (u-l.anchor.Unix())%int64(l.every/time.Second) != 0 {
			stray = append(stray, u)
		}
	}
	sort.Slice(stray, func(i, j int) bool { return stray[i] < stray[j] })
	if len(stray) > 0 {
		problems = append(problems, fmt.Sprintf("ticks off the grid or after the watermark: %v", slices.Compact(stray)))
	}
	if len(problems) > 0 {
		t.Errorf("exactly-once violated (anchor %s, every %s, watermark %s):\n%s", l.anchor.UTC().Format(time.TimeOnly), l.every,
			l.watermark.UTC().Format(time.TimeOnly), strings.Join(problems, "\n"))
	}
	return fired, skipped
}

// ticksBetween lists the grid's ticks (unix seconds) in (from, to].
func (l *tickLedger) ticksBetween(from, to time.Time) []int64 {
	var out []int64
	for tick := l.anchor.Add(l.every); !tick.After(to); tick = tick.Add(l.every) {
		if tick.After(from) {
			out = append(out, tick.Unix())
		}
	}
	return out
}

// checkLatest asserts the catch_up latest policy: a skipped tick is always
// followed by another skipped tick or a fired one (the newest missed tick
// fires), never by nothing, up to the watermark.
func (l *tickLedger) checkLatest(t *testing.T) {
	t.Helper()
	step := int64(l.every / time.Second)
	for u := range l.skipped {
		next := u + step
		if next > l.watermark.Unix() {
			t.Errorf("tick %d was skipped but nothing after it was decided (watermark %d)", u, l.watermark.Unix())
			continue
		}
		if len(l.fired[next]) == 0 && l.skipped[next] == 0 {
			t.Errorf("tick %d was skipped and the next tick %d neither fired nor was skipped", u, next)
		}
	}
}

// supervisedExtension is a built-in extension in the container the
// leader's supervisor runs (gofer/extension-<kind>, imported from the
// server binary).
type supervisedExtension struct {
	t      *testing.T
	c      *Cluster
	id     string
	name   string
	secret string // the install's: the container to wait for has it
	killed string // the container id Kill killed
}

// superviseBuiltinExtension (re)installs the built-in extension kind with
// its built-in image and settings and waits until the supervisor runs it;
// it returns the token secret too.
func superviseBuiltinExtension(t *testing.T, c *Cluster, kind string, settings map[string]string) (*supervisedExtension, string) {
	t.Helper()
	ctx := context.Background()
	admin := c.Client()
	meta, err := admin.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := admin.InstallExtension(ctx, client.InstallRequest{ID: kind, Image: supervisor.BuiltinImage(kind, meta.Semver), Settings: settings})
	if err != nil {
		t.Fatalf("install %s: %v", kind, err)
	}
	h, err := c.Nodes[0].Health()
	if err != nil {
		t.Fatal(err)
	}
	e := &supervisedExtension{t: t, c: c, id: kind, name: supervisor.ContainerName(h.ClusterID, kind), secret: inst.Token.Secret}
	e.Start()
	return e, inst.Token.Secret
}

// Kill SIGKILLs the container.
func (e *supervisedExtension) Kill() {
	info, ok := supInspect(e.t, e.name)
	if !ok {
		e.t.Fatalf("no container %s to kill", e.name)
	}
	if err := runsDocker(e.t).ContainerKill(context.Background(), e.name, "KILL"); err != nil {
		e.t.Fatal(err)
	}
	e.killed = info.ID
}

// Start waits until a container of this install, other than the killed
// one, runs and the extension reports running.
func (e *supervisedExtension) Start() {
	WaitFor(e.t, 90*time.Second, func() error {
		info, ok := supInspect(e.t, e.name)
		if !ok || info.ID == e.killed || !info.State.Running || supEnv(info, "GOFER_EXTENSION_SYSTEM_SECRET") != e.secret {
			return fmt.Errorf("container %s of this install not (re)started yet", e.name)
		}
		return nil
	})
	waitExtensionState(e.t, e.c.Client(), e.id, model.ExtensionStateRunning)
}

// StartedAt is when the engine started the extension's current container.
func (e *supervisedExtension) StartedAt() time.Time {
	info, ok := supInspect(e.t, e.name)
	if !ok || info.State == nil {
		e.t.Fatalf("no container %s", e.name)
	}
	at, err := time.Parse(time.RFC3339Nano, info.State.StartedAt)
	if err != nil {
		e.t.Fatalf("container %s started at %q: %v", e.name, info.State.StartedAt, err)
	}
	return at
}

// Stop disables the extension's subscriptions (Gofer unsubscribes the
// extension, so it stops ticking) and waits until their watermarks stay
// put, so the ledger no longer moves. (Disabling the extension would not
// do: its ticks would keep passing unfired, each recorded as a skip.)
func (e *supervisedExtension) Stop() {
	ctx := context.Background()
	admin := e.c.Client()
	subs, err := admin.ListExtensionSubscriptions(ctx, e.id, client.Page{Limit: 1000})
	if err != nil {
		e.t.Fatalf("subscriptions of %s: %v", e.id, err)
	}
	for _, s := range subs {
		if _, err := admin.SetSubscriptionStatus(ctx, s.PipelineID, s.ExtensionID, s.SubscriptionID, model.SubscriptionDisabled); err != nil {
			e.t.Fatalf("disable subscription %s: %v", s.SubscriptionID, err)
		}
	}
	watermarks := func() string {
		subs, err := admin.Consistent().ListExtensionSubscriptions(ctx, e.id, client.Page{Limit: 1000})
		if err != nil {
			e.t.Fatalf("subscriptions of %s: %v", e.id, err)
		}
		var out []string
		for _, s := range subs {
			out = append(out, fmt.Sprint(s.SubscriptionID, "=", s.Watermark))
		}
		return strings.Join(out, " ")
	}
	last, since := watermarks(), time.Now()
	for deadline := time.Now().Add(time.Minute); time.Since(since) < 5*time.Second; {
		if time.Now().After(deadline) {
			e.t.Fatalf("the watermarks of %s still move a minute after its subscriptions were disabled: %s", e.id, last)
		}
		time.Sleep(500 * time.Millisecond)
		if w := watermarks(); w != last {
			last, since = w, time.Now()
		}
	}
}
