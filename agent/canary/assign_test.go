package canary

import (
	"math/rand/v2"
	"testing"
)

// The share of canary runs converges to the percent, whatever the
// deployment, for run ids as Gofer hands them out (1, 2, 3, …).
func TestAssignShareConverges(t *testing.T) {
	const runs = 10000
	for _, deployment := range []int64{1, 2, 7, 1 << 40} {
		for _, percent := range []int{1, 10, 25, 50, 90, 99} {
			p := Policy{Percent: percent}
			canaries := 0
			for run := int64(1); run <= runs; run++ {
				if Assign(p, deployment, run) {
					canaries++
				}
			}
			got := float64(canaries) * 100 / runs
			if got < float64(percent)-3 || got > float64(percent)+3 {
				t.Errorf("deployment %d at %d%%: %.2f%% of %d runs went to the canary, want within ±3 points",
					deployment, percent, got, runs)
			}
		}
	}
}

// A run's assignment depends on nothing but its ids: the same on every
// call, and the same whatever order runs are assigned in (a new leader
// after a failover, or a replica, walks runs in its own order).
func TestAssignStableAndOrderIndependent(t *testing.T) {
	p := Policy{Percent: 50}
	const deployment = 3
	first := make(map[int64]bool)
	for run := int64(1); run <= 1000; run++ {
		first[run] = Assign(p, deployment, run)
	}
	ids := make([]int64, 0, 1000)
	for run := range first {
		ids = append(ids, run)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, run := range ids {
		if got := Assign(p, deployment, run); got != first[run] {
			t.Fatalf("run %d: Assign = %v in shuffled order, %v before", run, got, first[run])
		}
	}
}

// Raising the percent only adds runs to the canary (a bucket below 20 is
// below 50), and the deployment id reshuffles which runs are canaries.
func TestAssignBucketsNestAndDependOnDeployment(t *testing.T) {
	same := 0
	for run := int64(1); run <= 1000; run++ {
		if Assign(Policy{Percent: 20}, 1, run) && !Assign(Policy{Percent: 50}, 1, run) {
			t.Fatalf("run %d is a canary at 20%% but not at 50%%", run)
		}
		if Bucket(1, run) == Bucket(2, run) {
			same++
		}
		if b := Bucket(1, run); b < 0 || b > 99 {
			t.Fatalf("run %d: bucket %d outside 0..99", run, b)
		}
	}
	if same > 100 { // about 10 expected by chance
		t.Fatalf("%d of 1000 runs have the same bucket in deployments 1 and 2", same)
	}
}

// The hash is pinned: a change would re-split runs during an upgrade,
// with old and new leaders disagreeing about runs already assigned.
func TestBucketIsPinned(t *testing.T) {
	got := []int{Bucket(1, 1), Bucket(1, 2), Bucket(2, 1), Bucket(12, 345)}
	want := pinnedBuckets
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("buckets = %v, want %v", got, want)
		}
	}
}

// Computed independently: FNV-1a 64 over the two ids as 8-byte big-endian
// integers, modulo 100.
var pinnedBuckets = []int{25, 92, 80, 79}
