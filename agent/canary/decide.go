package canary

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Stats is the committed evidence about one version's runs since the
// deployment started. Completed counts runs that reached a result
// (succeeded or failed); Failed is how many of them failed. Durations
// holds one entry per completed run (needed for the canary when the
// policy bounds p95; the stable version's may be empty).
type Stats struct {
	Completed int
	Failed    int
	Durations []time.Duration
}

// Check reports stats that cannot be evidence (negative counts, more
// failures than completions, more durations than runs), so a bug in the
// state layer stops a decision instead of producing a wrong one.
func (s Stats) Check() error {
	switch {
	case s.Completed < 0 || s.Failed < 0:
		return fmt.Errorf("negative counts: %d completed, %d failed", s.Completed, s.Failed)
	case s.Failed > s.Completed:
		return fmt.Errorf("%d failed of only %d completed", s.Failed, s.Completed)
	case len(s.Durations) > s.Completed:
		return fmt.Errorf("%d durations for %d completed runs", len(s.Durations), s.Completed)
	}
	return nil
}

// Outcome is what a decision says to do with the canary. Strings, so a
// stored decision reads the same in JSON, events and the CLI.
type Outcome string

const (
	// Wait: not enough evidence yet; nothing is recorded.
	Wait Outcome = "wait"
	// Promote: the canary version becomes the live version.
	Promote Outcome = "promote"
	// RollBack: the stable version stays live and the canary ends.
	RollBack Outcome = "rollback"
)

// Decision is the outcome and, in words with the numbers used, why.
type Decision struct {
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason"`
	// At is the time the decision was made (the watcher's clock). The
	// raft command carries it, so the applier stays deterministic.
	At time.Time `json:"at"`
}

// Decide applies policy p to a canary that started at started, given the
// stable and canary versions' stats at now. It is pure: the same inputs
// give the same decision on any node.
//
// The rules, in order:
//  1. Before p.Runs canary runs completed and before p.Duration passed,
//     wait — unless the failure budget is already certainly spent: the
//     canary's failures divided by p.Runs (its lowest possible rate, even
//     if every remaining required run succeeds) already exceed the
//     stable rate plus p.MaxFailureIncrease. Then roll back at once:
//     waiting would only run more users' runs on a version that will be
//     rolled back anyway. "Certain" is against the stable rate observed
//     now, which is the rate the final decision would also use.
//  2. If no canary run completed by the end of p.Duration, roll back: no
//     evidence of health is not evidence of health, and the stable
//     version is the known one.
//  3. Roll back if the canary failure rate exceeds the stable rate plus
//     p.MaxFailureIncrease points. A stable version with no completed run
//     counts as 0% failures: the strict reading, so a canary is never
//     promoted on the strength of missing comparison data.
//  4. Roll back if p.MaxP95 > 0 and the canary's p95 duration (nearest
//     rank over Durations) exceeds it. Slowness is not judged early: a
//     few slow first runs can be outweighed by later ones.
//  5. Otherwise promote ("at most the stable rate plus the increase").
//
// When p.Duration ends with fewer than p.Runs completed, the decision is
// made on the runs that did complete.
func Decide(now time.Time, p Policy, started time.Time, stable, canary Stats) Decision {
	d := Decision{At: now}
	elapsed := now.Sub(started)
	budget := fmt.Sprintf("stable %s + %s points", describeStable(stable), points(p.MaxFailureIncrease))
	if canary.Completed < p.Runs && elapsed < p.Duration {
		if canary.Failed > 0 && exceeds(canary.Failed, p.Runs, stable, p.MaxFailureIncrease) {
			d.Outcome = RollBack
			d.Reason = fmt.Sprintf("canary failed %d of %d runs so far; even if the other %d of %d required runs succeed, %d of %d (%s) > %s",
				canary.Failed, canary.Completed, p.Runs-canary.Completed, p.Runs,
				canary.Failed, p.Runs, percent(canary.Failed, p.Runs), budget)
			return d
		}
		d.Outcome = Wait
		d.Reason = fmt.Sprintf("canary completed %d of %d runs, %s of %s observed",
			canary.Completed, p.Runs, elapsed.Round(time.Second), p.Duration)
		return d
	}
	if canary.Completed == 0 {
		d.Outcome = RollBack
		d.Reason = fmt.Sprintf("no canary run completed within %s", p.Duration)
		return d
	}
	failures := fmt.Sprintf("canary failed %d of %d runs (%s)", canary.Failed, canary.Completed, percent(canary.Failed, canary.Completed))
	if exceeds(canary.Failed, canary.Completed, stable, p.MaxFailureIncrease) {
		d.Outcome = RollBack
		d.Reason = failures + " > " + budget
		return d
	}
	d.Reason = failures + " <= " + budget
	if p.MaxP95 > 0 {
		p95 := P95(canary.Durations)
		if p95 > p.MaxP95 {
			d.Outcome = RollBack
			d.Reason = fmt.Sprintf("canary p95 duration %s > bound %s (over %d runs); %s", p95, p.MaxP95, len(canary.Durations), d.Reason)
			return d
		}
		d.Reason += fmt.Sprintf("; canary p95 duration %s <= bound %s", p95, p.MaxP95)
	}
	d.Outcome = Promote
	return d
}

// exceeds reports whether failed of n runs is a higher failure rate than
// stable's plus increase percentage points. It compares cross-multiplied
// counts, so equal rates such as 1 of 3 and 2 of 6 are equal exactly.
func exceeds(failed, n int, stable Stats, increase float64) bool {
	sFailed, sCompleted := stable.Failed, stable.Completed
	if sCompleted == 0 {
		sFailed, sCompleted = 0, 1 // no stable evidence: 0%
	}
	lhs := float64(failed) * 100 * float64(sCompleted)
	rhs := float64(sFailed)*100*float64(n) + increase*float64(n)*float64(sCompleted)
	return lhs > rhs
}

// P95 is the nearest-rank 95th percentile of ds (the smallest value with
// at least 95% of the values at or below it); 0 for none. Nearest rank
// returns a duration some run actually took, which a reason can cite.
func P95(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	rank := (95*len(sorted) + 99) / 100 // ceil(0.95 n)
	return sorted[rank-1]
}

func describeStable(s Stats) string {
	if s.Completed == 0 {
		return "0% (no completed run)"
	}
	return fmt.Sprintf("failed %d of %d runs (%s)", s.Failed, s.Completed, percent(s.Failed, s.Completed))
}

// percent formats failed of n as a percentage with at most one decimal.
func percent(failed, n int) string {
	if n == 0 {
		return "0%"
	}
	return points(float64(failed)*100/float64(n)) + "%"
}

func points(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}
