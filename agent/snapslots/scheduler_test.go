package snapslots

import (
	"context"
	"errors"
	"runtime"
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

// runTurns runs three schedulers (node-a the leader) on one fake clock for
// d, each node's log growing by perStep entries a second.
func runTurns(t *testing.T, p Policy, perStep uint64, d time.Duration) []*fakeNode {
	t.Helper()
	start := time.Unix(6000, 0)
	fake := clock.NewFake(start)
	nodes := []*fakeNode{
		{self: "node-a", leader: true, perStep: perStep, clk: fake},
		{self: "node-b", perStep: perStep, clk: fake},
		{self: "node-c", perStep: perStep, clk: fake},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range nodes {
		armed := fake.Armed()
		s := &Scheduler{Policy: p, Check: time.Second, Clock: fake, Node: n, Logger: hclog.NewNullLogger()}
		wg.Go(func() { s.Run(ctx) })
		<-armed
	}
	for fake.Now().Before(start.Add(d)) {
		// Each step fires every scheduler's timer; wait until all three
		// have decided and armed their next timer.
		for fake.Timers() < 3 {
			runtime.Gosched() // let the schedulers' goroutines run
		}
		fake.Set(fake.NextDeadline())
	}
	cancel()
	wg.Wait()
	return nodes
}

// A log that passes the threshold again within one turn (50 entries a
// second, 100 to go, 5 s of open slot) still gets one snapshot per turn
// on every node, the leader included (it is past twice the threshold).
func TestOneSnapshotPerTurn(t *testing.T) {
	p := Policy{Slot: 10 * time.Second, Threshold: 100}
	nodes := runTurns(t, p, 50, 5*time.Minute)
	for i, n := range nodes {
		turns := map[int64]bool{}
		for _, at := range n.taken {
			if !p.SlotOpen(at, i, 3) {
				t.Errorf("%s snapshotted at %v, outside its slot", n.self, at)
			}
			turn := p.TurnStart(at, i, 3).Unix()
			if turns[turn] {
				t.Errorf("%s took two snapshots in the turn starting %d", n.self, turn)
			}
			turns[turn] = true
		}
		if len(n.taken) < 9 {
			t.Errorf("%s took %d snapshots in 10 cycles", n.self, len(n.taken))
		}
	}
}

// Three schedulers on one fake clock, every node's log always past the
// threshold within a cycle (5 entries a second, 100 to go, 30 s cycles): each follower snapshots only inside its own slot, the leader
// only when its log passes twice the threshold, and never two at one time.
func TestSchedulersTakeTurns(t *testing.T) {
	p := Policy{Slot: 10 * time.Second, Threshold: 100}
	nodes := runTurns(t, p, 5, 5*time.Minute)
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

// failingNode's snapshots fail; the scheduler's attempts are recorded.
type failingNode struct {
	clk      clock.Clock
	attempts []attempt
}

type attempt struct {
	at     time.Time
	reason Reason
}

func (n *failingNode) View() (View, error) {
	return View{Self: "node-c", Voters: voters, Pending: 500}, nil
}

func (n *failingNode) Snapshot() error { return errors.New("disk full") }

func (n *failingNode) Started(r Reason) { n.attempts = append(n.attempts, attempt{n.clk.Now(), r}) }

func (n *failingNode) Finished(Reason, time.Duration, error) {}

// A node whose snapshots keep failing in its slot (or whose slots are
// missed) stops waiting for its turn after two whole cycles: the safety
// valve, so its log cannot grow without bound.
func TestSafetyValve(t *testing.T) {
	fake := clock.NewFake(time.Unix(0, 0)) // node-c's slot opens at 20 s of each 30 s cycle
	n := &failingNode{clk: fake}
	p := Policy{Slot: 10 * time.Second, Threshold: 100}
	s := &Scheduler{Policy: p, Check: time.Second, Clock: fake, Node: n, Observer: n, Logger: hclog.NewNullLogger()}
	for range 70 {
		s.step(fake.Now())
		fake.Advance(time.Second)
	}
	var firstOverdue time.Time
	for _, a := range n.attempts {
		switch a.reason {
		case InSlot:
			if !p.SlotOpen(a.at, 2, 3) {
				t.Fatalf("slot attempt at %v outside the slot", a.at)
			}
		case Overdue:
			if firstOverdue.IsZero() {
				firstOverdue = a.at
			}
		default:
			t.Fatalf("attempt for reason %q", a.reason)
		}
	}
	// Due since 0 s; two cycles are 60 s.
	if want := time.Unix(60, 0); !firstOverdue.Equal(want) {
		t.Fatalf("first overdue attempt at %v, want %v; attempts %v", firstOverdue, want, n.attempts)
	}
	if p.SlotOpen(firstOverdue, 2, 3) {
		t.Fatal("the valve case should fall outside the slot to prove anything")
	}
}
