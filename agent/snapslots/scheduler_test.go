package snapslots

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/agent/clock"
)

// fakeNode is a raft node whose log grows by perStep entries between
// decisions; a snapshot empties the count and records when it was taken.
type fakeNode struct {
	mu      sync.Mutex
	self    string
	leader  bool
	pending uint64
	perStep uint64
	clk     clock.Clock
	taken   []time.Time
}

func (n *fakeNode) View() (View, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending += n.perStep
	return View{Self: n.self, Voters: voters, Leader: n.leader, Pending: n.pending}, nil
}

func (n *fakeNode) Snapshot() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending = 0
	n.taken = append(n.taken, n.clk.Now())
	return nil
}

// Three schedulers on one fake clock, every node's log always past the
// threshold within a cycle (5 entries a second, 100 to go, 30 s cycles): each follower snapshots only inside its own slot, the leader
// only when its log passes twice the threshold, and never two at one time.
func TestSchedulersTakeTurns(t *testing.T) {
	fake := clock.NewFake(time.Unix(6000, 0))
	p := Policy{Slot: 10 * time.Second, Threshold: 100}
	nodes := []*fakeNode{
		{self: "node-a", leader: true, perStep: 5, clk: fake},
		{self: "node-b", perStep: 5, clk: fake},
		{self: "node-c", perStep: 5, clk: fake},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range nodes {
		armed := fake.Armed()
		s := &Scheduler{Policy: p, Check: time.Second, Clock: fake, Node: n, Logger: hclog.NewNullLogger()}
		wg.Go(func() { s.Run(ctx) })
		<-armed
	}
	for fake.Now().Before(time.Unix(6000, 0).Add(5 * time.Minute)) {
		// Each step fires every scheduler's timer; wait until all three
		// have decided and armed their next timer.
		for fake.Timers() < 3 {
			time.Sleep(time.Millisecond) // yield to the schedulers' goroutines; no timing is asserted
		}
		fake.Set(fake.NextDeadline())
	}
	cancel()
	wg.Wait()

	var all []time.Time
	for i, n := range nodes {
		if len(n.taken) == 0 {
			t.Fatalf("%s never snapshotted", n.self)
		}
		for _, at := range n.taken {
			if !p.SlotOpen(at, i, 3) {
				t.Errorf("%s snapshotted at %v, outside its slot", n.self, at)
			}
			for _, other := range all {
				if other.Equal(at) {
					t.Errorf("two snapshots at %v", at)
				}
			}
		}
		all = append(all, n.taken...)
	}
	// Followers take one per cycle (30 s) in 5 minutes; the leader only
	// every other cycle, since it waits for 2x the threshold.
	if got := len(nodes[1].taken); got < 9 {
		t.Errorf("node-b took %d snapshots in 5 minutes, want one per 30 s cycle", got)
	}
	if got, followers := len(nodes[0].taken), len(nodes[1].taken); got >= followers {
		t.Errorf("the leader took %d snapshots, the follower %d: the leader should defer", got, followers)
	}
}

// A node whose slot keeps being missed (here it never opens: a huge slot
// it is not first in) still snapshots once the log passes 4x the threshold.
func TestSafetyValve(t *testing.T) {
	fake := clock.NewFake(time.Unix(0, 0))
	n := &fakeNode{self: "node-c", perStep: 50, clk: fake}
	s := &Scheduler{Policy: Policy{Slot: time.Hour, Threshold: 100}, Check: time.Second, Clock: fake, Node: n,
		Logger: hclog.NewNullLogger()}
	for range 8 {
		s.step(fake.Now())
		fake.Advance(time.Second)
	}
	if len(n.taken) != 1 || n.pending != 0 {
		t.Fatalf("took %d snapshots (want 1, at 400 entries)", len(n.taken))
	}
	if want := time.Unix(7, 0); !n.taken[0].Equal(want) {
		t.Fatalf("valve snapshot at %v, want %v (8th decision, 400 entries)", n.taken[0], want)
	}
}
