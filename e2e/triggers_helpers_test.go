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

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// builtinExtension is a built-in extension running as the supervisor will
// run it: `gofer service extension <kind>` with the supervisor's
// environment. Here it is a host process; startBuiltinExtension is the one
// place to swap for the supervised container (gofer/extension-<kind>).
type builtinExtension struct {
	t       testing.TB
	kind    string
	env     []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
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
	e.cmd, e.done = cmd, done
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
			if e.Kind != model.EventSkippedTick || e.PipelineID != pipeline || e.Details["subscription_id"] != sub {
				continue
			}
			if e.Details["range"] == "true" {
				l.ranges++
				continue
			}
			tick, _ := strconv.ParseInt(e.Details["tick"], 10, 64)
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
		if u <= l.anchor.Unix() || u > last {
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
