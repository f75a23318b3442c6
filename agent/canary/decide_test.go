package canary

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

func secs(ns ...int) []time.Duration {
	ds := make([]time.Duration, len(ns))
	for i, n := range ns {
		ds[i] = time.Duration(n) * time.Second
	}
	return ds
}

func TestDecide(t *testing.T) {
	base := Policy{Percent: 50, Runs: 4, Duration: 10 * time.Minute, MaxFailureIncrease: 10}
	withP95 := base
	withP95.MaxP95 = 30 * time.Second
	tests := []struct {
		name           string
		p              Policy
		elapsed        time.Duration
		stable, canary Stats
		want           Outcome
		reason         string // exact when it starts with "=", else a substring
	}{
		{"waits for runs", base, time.Minute, Stats{Completed: 5}, Stats{Completed: 3, Durations: secs(1, 1, 1)},
			Wait, "=canary completed 3 of 4 runs, 1m0s of 10m0s observed"},
		{"early rollback when one failure already spends the budget", base, time.Minute, Stats{Completed: 10, Failed: 1}, Stats{Completed: 1, Failed: 1},
			// 1 of 4 = 25% > 10% + 10: certainly over budget.
			RollBack, "even if the other 3 of 4 required runs succeed, 1 of 4 (25%) > stable failed 1 of 10 runs (10%) + 10 points"},
		{"waits while the budget can still hold", Policy{Percent: 50, Runs: 10, Duration: time.Hour, MaxFailureIncrease: 10}, time.Minute,
			Stats{}, Stats{Completed: 2, Failed: 1}, Wait, "canary completed 2 of 10 runs"},
		{"early rollback at 50% with stable 0%", Policy{Percent: 50, Runs: 10, Duration: time.Hour, MaxFailureIncrease: 10}, time.Minute,
			Stats{}, Stats{Completed: 2, Failed: 2},
			RollBack, "=canary failed 2 of 2 runs so far; even if the other 8 of 10 required runs succeed, 2 of 10 (20%) > stable 0% (no completed run) + 10 points"},
		{"rolls back a failing canary", base, time.Minute, Stats{Completed: 4}, Stats{Completed: 4, Failed: 3},
			RollBack, "=canary failed 3 of 4 runs (75%) > stable failed 0 of 4 runs (0%) + 10 points"},
		{"promotes a healthy canary", base, time.Minute, Stats{Completed: 4}, Stats{Completed: 4},
			Promote, "=canary failed 0 of 4 runs (0%) <= stable failed 0 of 4 runs (0%) + 10 points"},
		{"promotes at exactly the budget", Policy{Percent: 50, Runs: 10, Duration: time.Hour, MaxFailureIncrease: 10}, time.Minute,
			Stats{Completed: 10, Failed: 1}, Stats{Completed: 10, Failed: 2},
			Promote, "canary failed 2 of 10 runs (20%) <= stable failed 1 of 10 runs (10%) + 10 points"},
		{"equal rates compare exactly", Policy{Percent: 50, Runs: 3, Duration: time.Hour}, time.Minute,
			Stats{Completed: 6, Failed: 2}, Stats{Completed: 3, Failed: 1},
			Promote, "canary failed 1 of 3 runs (33.3%) <= stable failed 2 of 6 runs (33.3%) + 0 points"},
		{"a failing stable version raises the bar", base, time.Minute, Stats{Completed: 10, Failed: 5}, Stats{Completed: 4, Failed: 2},
			Promote, "(50%) <= stable failed 5 of 10 runs (50%)"},
		{"more runs than required are all counted", base, time.Minute, Stats{Completed: 4}, Stats{Completed: 6, Failed: 1},
			RollBack, "canary failed 1 of 6 runs (16.7%) > stable"},
		{"decides at duration end on what completed", base, 10 * time.Minute, Stats{Completed: 4}, Stats{Completed: 2},
			Promote, "canary failed 0 of 2 runs"},
		{"rolls back at duration end with failures", base, 10 * time.Minute, Stats{}, Stats{Completed: 2, Failed: 1},
			RollBack, "canary failed 1 of 2 runs (50%) > stable 0% (no completed run) + 10 points"},
		{"nothing completed within the duration", base, 10 * time.Minute, Stats{Completed: 4}, Stats{},
			RollBack, "=no canary run completed within 10m0s"},
		{"p95 within the bound", withP95, time.Minute, Stats{}, Stats{Completed: 4, Durations: secs(10, 20, 30, 5)},
			Promote, "; canary p95 duration 30s <= bound 30s"},
		{"p95 over the bound", withP95, time.Minute, Stats{}, Stats{Completed: 4, Durations: secs(10, 20, 31, 5)},
			RollBack, "canary p95 duration 31s > bound 30s (over 4 runs)"},
		{"p95 is not judged early", withP95, time.Minute, Stats{}, Stats{Completed: 1, Durations: secs(90)},
			Wait, "canary completed 1 of 4 runs"},
		{"failures are reported before slowness", withP95, time.Minute, Stats{}, Stats{Completed: 4, Failed: 4, Durations: secs(90, 90, 90, 90)},
			RollBack, "=canary failed 4 of 4 runs (100%) > stable 0% (no completed run) + 10 points"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0.Add(tt.elapsed)
			d := Decide(now, tt.p, t0, tt.stable, tt.canary)
			if d.Outcome != tt.want {
				t.Fatalf("outcome = %s (%s), want %s", d.Outcome, d.Reason, tt.want)
			}
			if !d.At.Equal(now) {
				t.Errorf("At = %v, want %v", d.At, now)
			}
			if exact, ok := strings.CutPrefix(tt.reason, "="); ok {
				if d.Reason != exact {
					t.Errorf("reason = %q, want %q", d.Reason, exact)
				}
			} else if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestP95NearestRank(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{secs(7), 7 * time.Second},
		{secs(3, 1, 2), 3 * time.Second},
		{secs(hundred...), 95 * time.Second},
	}
	for _, tt := range tests {
		in := append([]time.Duration(nil), tt.in...)
		if got := P95(tt.in); got != tt.want {
			t.Errorf("P95(%v) = %v, want %v", tt.in, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.in[i] {
				t.Fatalf("P95 reordered its input")
			}
		}
	}
}

func TestStatsCheck(t *testing.T) {
	for _, s := range []Stats{{Completed: -1}, {Completed: 1, Failed: -1}, {Completed: 1, Failed: 2}, {Completed: 1, Durations: secs(1, 2)}} {
		if s.Check() == nil {
			t.Errorf("Check(%+v) = nil, want an error", s)
		}
	}
	if err := (Stats{Completed: 2, Failed: 1, Durations: secs(1)}).Check(); err != nil {
		t.Errorf("Check of valid stats = %v", err)
	}
}
