package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/clock"
)

// mockState is committed state as the watcher sees it: deployments with
// their policy, start and per-version stats, and an applier that keeps
// the first decision and refuses any other with ErrAlreadyDecided, as
// the FSM's will.
type mockState struct {
	mu          sync.Mutex
	deployments []*mockDeployment
	// lagging makes ActiveCanaries list decided canaries too (a read
	// that has not caught up with a decision).
	lagging bool
	// Errors injected into the next call of each method (then cleared).
	listErr  error
	statsErr map[int64]error
	// decideErr fails the next Decide; committed says whether the
	// decision was applied before the error (outcome unknown to the
	// caller, like a leadership lost after the entry committed).
	decideErr       error
	decideCommitted bool
	decideCalls     int
}

type mockDeployment struct {
	c              Canary
	stable, canary Stats
	decisions      []Decision // applied; more than one is the bug we test for
	decidedBy      string
}

func newMockState() *mockState { return &mockState{statsErr: map[int64]error{}} }

func (m *mockState) add(id int64, p Policy, started time.Time) *mockDeployment {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &mockDeployment{c: Canary{Namespace: "default", Pipeline: "p", DeploymentID: id,
		StableVersion: 1, CanaryVersion: 2, Policy: p, Started: started}}
	m.deployments = append(m.deployments, d)
	return d
}

// finish records run runID of deployment d as completed, on the version
// Assign gives it, failed or not according to failCanary/failStable.
func (m *mockState) finish(d *mockDeployment, runID int64, failCanary, failStable bool, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, failed := &d.stable, failStable
	if Assign(d.c.Policy, d.c.DeploymentID, runID) {
		s, failed = &d.canary, failCanary
	}
	s.Completed++
	if failed {
		s.Failed++
	}
	s.Durations = append(s.Durations, took)
}

func (m *mockState) ActiveCanaries(context.Context) ([]Canary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.listErr; err != nil {
		m.listErr = nil
		return nil, err
	}
	var out []Canary
	for _, d := range m.deployments {
		if len(d.decisions) == 0 || m.lagging {
			out = append(out, d.c)
		}
	}
	return out, nil
}

func (m *mockState) Stats(_ context.Context, c Canary) (Stats, Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.statsErr[c.DeploymentID]; err != nil {
		delete(m.statsErr, c.DeploymentID)
		return Stats{}, Stats{}, err
	}
	d := m.find(c.DeploymentID)
	clone := func(s Stats) Stats { s.Durations = append([]time.Duration(nil), s.Durations...); return s }
	return clone(d.stable), clone(d.canary), nil
}

func (m *mockState) Decide(_ context.Context, c Canary, dec Decision) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.decideCalls++
	err, committed := m.decideErr, m.decideCommitted
	m.decideErr, m.decideCommitted = nil, false
	if err != nil && !committed {
		return err
	}
	if applyErr := m.apply(c.DeploymentID, dec, "watcher"); applyErr != nil {
		return applyErr
	}
	return err
}

// apply is the applier: the first decision wins.
func (m *mockState) apply(id int64, dec Decision, by string) error {
	d := m.find(id)
	if len(d.decisions) > 0 {
		return fmt.Errorf("deployment %d: %w", id, ErrAlreadyDecided)
	}
	d.decisions = append(d.decisions, dec)
	d.decidedBy = by
	return nil
}

func (m *mockState) find(id int64) *mockDeployment {
	for _, d := range m.deployments {
		if d.c.DeploymentID == id {
			return d
		}
	}
	panic(fmt.Sprintf("no deployment %d", id))
}

func (m *mockState) decisions(d *mockDeployment) []Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Decision(nil), d.decisions...)
}

func mustTick(t *testing.T, w *Watcher) time.Time {
	t.Helper()
	next, err := w.Tick(context.Background())
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	return next
}

func wantDecision(t *testing.T, m *mockState, d *mockDeployment, outcome Outcome, reason string) Decision {
	t.Helper()
	got := m.decisions(d)
	if len(got) != 1 {
		t.Fatalf("deployment %d has %d decisions %+v, want exactly 1", d.c.DeploymentID, len(got), got)
	}
	if got[0].Outcome != outcome || !strings.Contains(got[0].Reason, reason) {
		t.Fatalf("decision = %s %q, want %s containing %q", got[0].Outcome, got[0].Reason, outcome, reason)
	}
	return got[0]
}

func wantUndecided(t *testing.T, m *mockState, d *mockDeployment) {
	t.Helper()
	if got := m.decisions(d); len(got) != 0 {
		t.Fatalf("deployment %d decided %+v, want no decision yet", d.c.DeploymentID, got)
	}
}

// Version 2 fails every run, deployed as a canary at 50%: runs split by
// Assign, the watcher ticks after each completes, and the canary is
// rolled back once, as soon as its failures spend the budget.
func TestWatcherRollsBackFailingCanaryAt50Percent(t *testing.T) {
	clk := clock.NewFake(t0)
	m := newMockState()
	d := m.add(1, Policy{Percent: 50, Runs: 4, Duration: time.Hour, MaxFailureIncrease: 10}, t0)
	w := NewWatcher(m, clk, nil)
	for run := int64(1); run <= 20; run++ {
		clk.Advance(time.Minute)
		m.finish(d, run, true, false, 10*time.Second)
		mustTick(t, w)
	}
	// 1 failure of 4 required runs is 25% > 0% + 10: the first canary
	// failure decides at once (an early rollback), at the Tick after it.
	first := firstCanaryRunAfter(d.c.Policy, 1, 0)
	dec := wantDecision(t, m, d, RollBack, "canary failed 1 of 1 runs so far; even if the other 3 of 4 required runs succeed, 1 of 4 (25%) > stable")
	if want := t0.Add(time.Duration(first) * time.Minute); !dec.At.Equal(want) {
		t.Errorf("decided at %v, want %v, the Tick after run %d (the first canary run)", dec.At, want, first)
	}
	if m.decideCalls != 1 {
		t.Fatalf("Decide called %d times, want 1", m.decideCalls)
	}
}

func TestWatcherPromotesHealthyCanary(t *testing.T) {
	clk := clock.NewFake(t0)
	m := newMockState()
	d := m.add(1, Policy{Percent: 50, Runs: 5, Duration: time.Hour, MaxFailureIncrease: 10}, t0)
	w := NewWatcher(m, clk, nil)
	run := int64(0)
	for m.decisionsCount(d) == 0 && run < 1000 {
		run++
		clk.Advance(time.Minute)
		m.finish(d, run, false, false, time.Second)
		mustTick(t, w)
	}
	dec := wantDecision(t, m, d, Promote, "canary failed 0 of 5 runs (0%) <= stable failed 0 of")
	if !dec.At.Equal(clk.Now()) {
		t.Errorf("decision At = %v, want the clock's %v", dec.At, clk.Now())
	}
	for range 3 {
		mustTick(t, w)
	}
	wantDecision(t, m, d, Promote, "")
}

func (m *mockState) decisionsCount(d *mockDeployment) int { return len(m.decisions(d)) }

// A canary waits until it has its runs or its duration has passed, and
// Tick names the end of the duration as the time to look again.
func TestWatcherWaitsForRunsOrDuration(t *testing.T) {
	p := Policy{Percent: 50, Runs: 3, Duration: 10 * time.Minute, MaxFailureIncrease: 0}
	clk := clock.NewFake(t0)
	m := newMockState()
	byRuns := m.add(1, p, t0)
	byTime := m.add(2, p, t0.Add(time.Minute)) // ends at t0+11m
	w := NewWatcher(m, clk, nil)
	canaryRuns := func(id int64, n int) {
		for run := int64(1); n > 0; run++ {
			if Assign(p, id, run) {
				m.finish(m.find(id), run, false, false, time.Second)
				n--
			}
		}
	}
	canaryRuns(1, 2)
	canaryRuns(2, 1)
	if next := mustTick(t, w); !next.Equal(t0.Add(10 * time.Minute)) {
		t.Fatalf("Tick asked to wake at %v, want the first duration end %v", next, t0.Add(10*time.Minute))
	}
	wantUndecided(t, m, byRuns)
	wantUndecided(t, m, byTime)

	m.finish(byRuns, firstCanaryRunAfter(p, 1, 100), false, false, time.Second)
	clk.Advance(10*time.Minute - time.Nanosecond)
	if next := mustTick(t, w); !next.Equal(t0.Add(11 * time.Minute)) {
		t.Fatalf("Tick asked to wake at %v, want %v", next, t0.Add(11*time.Minute))
	}
	wantDecision(t, m, byRuns, Promote, "canary failed 0 of 3 runs")
	wantUndecided(t, m, byTime)

	clk.Set(t0.Add(11*time.Minute - time.Nanosecond))
	mustTick(t, w)
	wantUndecided(t, m, byTime)
	clk.Set(t0.Add(11 * time.Minute))
	if next := mustTick(t, w); !next.IsZero() {
		t.Fatalf("Tick asked to wake at %v with nothing waiting", next)
	}
	wantDecision(t, m, byTime, Promote, "canary failed 0 of 1 runs")
}

func firstCanaryRunAfter(p Policy, deployment, after int64) int64 {
	for run := after + 1; ; run++ {
		if Assign(p, deployment, run) {
			return run
		}
	}
}

func TestWatcherP95Bound(t *testing.T) {
	p := Policy{Percent: 50, Runs: 2, Duration: time.Hour, MaxFailureIncrease: 10, MaxP95: 30 * time.Second}
	clk := clock.NewFake(t0)
	m := newMockState()
	slow := m.add(1, p, t0)
	fast := m.add(2, p, t0)
	m.finish(slow, firstCanaryRunAfter(p, 1, 0), false, false, 10*time.Second)
	m.finish(slow, firstCanaryRunAfter(p, 1, firstCanaryRunAfter(p, 1, 0)), false, false, 45*time.Second)
	m.finish(fast, firstCanaryRunAfter(p, 2, 0), false, false, 10*time.Second)
	m.finish(fast, firstCanaryRunAfter(p, 2, firstCanaryRunAfter(p, 2, 0)), false, false, 30*time.Second)
	mustTick(t, NewWatcher(m, clk, nil))
	wantDecision(t, m, slow, RollBack, "canary p95 duration 45s > bound 30s (over 2 runs)")
	wantDecision(t, m, fast, Promote, "canary p95 duration 30s <= bound 30s")
}

// A leader decides, then loses leadership before it hears that the
// decision committed; the next leader's new Watcher over the same state
// (a read that still lists the canary) must not add a second decision.
// And a leader that died before deciding leaves the decision to the next.
func TestWatcherAfterFailoverDecidesExactlyOnce(t *testing.T) {
	p := Policy{Percent: 50, Runs: 1, Duration: time.Hour, MaxFailureIncrease: 0}
	clk := clock.NewFake(t0)
	m := newMockState()
	lost := m.add(1, p, t0)
	undecided := m.add(2, p, t0)
	m.finish(lost, firstCanaryRunAfter(p, 1, 0), true, false, time.Second)

	m.decideErr, m.decideCommitted = errors.New("leadership lost"), true
	old := NewWatcher(m, clk, nil)
	if _, err := old.Tick(context.Background()); err == nil || !strings.Contains(err.Error(), "leadership lost") {
		t.Fatalf("Tick = %v, want the leadership lost error", err)
	}
	wantDecision(t, m, lost, RollBack, "")
	wantUndecided(t, m, undecided)

	// The new leader: a new Watcher, the same committed state, a read
	// that lags the decision; and the second canary's run completes.
	m.lagging = true
	m.finish(undecided, firstCanaryRunAfter(p, 2, 0), false, false, time.Second)
	clk.Advance(time.Minute)
	next := NewWatcher(m, clk, nil)
	for range 3 {
		mustTick(t, next)
	}
	first := wantDecision(t, m, lost, RollBack, "canary failed 1 of 1 runs (100%)")
	if !first.At.Equal(t0) {
		t.Fatalf("the kept decision is from %v, want the first leader's at %v", first.At, t0)
	}
	wantDecision(t, m, undecided, Promote, "")
}

// Errors from State leave the canary undecided, and the next Tick
// retries it; no error path yields a second decision.
func TestWatcherRetriesStateErrors(t *testing.T) {
	p := Policy{Percent: 50, Runs: 1, Duration: time.Hour, MaxFailureIncrease: 0}
	clk := clock.NewFake(t0)
	m := newMockState()
	a := m.add(1, p, t0)
	b := m.add(2, p, t0)
	m.finish(a, firstCanaryRunAfter(p, 1, 0), false, false, time.Second)
	m.finish(b, firstCanaryRunAfter(p, 2, 0), false, false, time.Second)
	w := NewWatcher(m, clk, nil)

	m.listErr = errors.New("not ready")
	if _, err := w.Tick(context.Background()); err == nil {
		t.Fatal("Tick with a failing list returned no error")
	}
	wantUndecided(t, m, a)

	// A stats error for one canary does not hold the other back.
	m.statsErr[1] = errors.New("read failed")
	m.decideErr = errors.New("not leader") // nothing written
	_, err := w.Tick(context.Background())
	if err == nil || !strings.Contains(err.Error(), "read failed") || !strings.Contains(err.Error(), "not leader") {
		t.Fatalf("Tick = %v, want both errors", err)
	}
	wantUndecided(t, m, a)
	wantUndecided(t, m, b)

	mustTick(t, w)
	wantDecision(t, m, a, Promote, "")
	wantDecision(t, m, b, Promote, "")
	calls := m.decideCalls
	m.lagging = true
	mustTick(t, w) // both listed again: refused, taken as done
	if m.decideCalls != calls+2 {
		t.Fatalf("Decide calls = %d, want %d", m.decideCalls, calls+2)
	}
	wantDecision(t, m, a, Promote, "")
	wantDecision(t, m, b, Promote, "")
}

// A human's rollback arrives first: the watcher's later decision is
// refused and the human's stays.
func TestWatcherDefersToEarlierHumanDecision(t *testing.T) {
	p := Policy{Percent: 50, Runs: 1, Duration: time.Hour}
	clk := clock.NewFake(t0)
	m := newMockState()
	d := m.add(1, p, t0)
	m.finish(d, firstCanaryRunAfter(p, 1, 0), false, false, time.Second)
	m.mu.Lock()
	if err := m.apply(1, Decision{Outcome: RollBack, Reason: "rolled back by alice", At: t0}, "human"); err != nil {
		t.Fatal(err)
	}
	m.mu.Unlock()
	m.lagging = true
	mustTick(t, NewWatcher(m, clk, nil))
	wantDecision(t, m, d, RollBack, "rolled back by alice")
}

// State that cannot be evidence is an error for that canary, never a
// decision.
func TestWatcherRefusesBadInputs(t *testing.T) {
	clk := clock.NewFake(t0)
	tests := []struct {
		name   string
		p      Policy
		canary Stats
		want   string
	}{
		{"invalid policy", Policy{Percent: 0, Runs: 1, Duration: time.Hour}, Stats{Completed: 1}, "canary_percent"},
		{"more failures than runs", Policy{Percent: 50, Runs: 1, Duration: time.Hour}, Stats{Completed: 1, Failed: 2}, "canary stats"},
		{"p95 bound without durations", Policy{Percent: 50, Runs: 1, Duration: time.Hour, MaxP95: time.Second}, Stats{Completed: 1}, "p95 bound needs all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMockState()
			d := m.add(1, tt.p, t0)
			d.canary = tt.canary
			_, err := NewWatcher(m, clk, nil).Tick(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Tick = %v, want an error containing %q", err, tt.want)
			}
			wantUndecided(t, m, d)
		})
	}
}

// Runs go on completing until the decision commits, but the record keeps
// only the first MaxRuns canary durations: a canary with more completions
// than that must still be decided, on the stored durations.
func TestWatcherP95OverCappedDurations(t *testing.T) {
	p := Policy{Percent: 50, Runs: 10, Duration: time.Hour, MaxFailureIncrease: 10, MaxP95: 30 * time.Second}
	clk := clock.NewFake(t0)
	m := newMockState()
	d := m.add(1, p, t0)
	d.stable.Completed = 20
	d.canary.Completed = MaxRuns + 5
	for range MaxRuns {
		d.canary.Durations = append(d.canary.Durations, 10*time.Second)
	}
	mustTick(t, NewWatcher(m, clk, nil))
	wantDecision(t, m, d, Promote, "canary p95 duration 10s <= bound 30s")
}
