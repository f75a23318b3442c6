package snapslots

import (
	"testing"
	"time"
)

var voters = []string{"node-c", "node-a", "node-b"} // positions: a=0, b=1, c=2

func TestDecide(t *testing.T) {
	p := Policy{Slot: 10 * time.Second, Threshold: 100}
	cycleStart := time.Unix(3000, 0) // a multiple of the 30 s cycle: node-a's slot opens
	cases := []struct {
		name string
		v    View
		want Reason
	}{
		{"below threshold", View{Now: cycleStart, Self: "node-a", Voters: voters, Pending: 99}, NotDue},
		{"own slot, first half", View{Now: cycleStart.Add(4 * time.Second), Self: "node-a", Voters: voters, Pending: 100}, InSlot},
		{"own slot, second half", View{Now: cycleStart.Add(5 * time.Second), Self: "node-a", Voters: voters, Pending: 100}, WaitSlot},
		{"another voter's slot", View{Now: cycleStart, Self: "node-b", Voters: voters, Pending: 300}, WaitSlot},
		{"second voter's slot", View{Now: cycleStart.Add(11 * time.Second), Self: "node-b", Voters: voters, Pending: 100}, InSlot},
		{"leader defers below 2x", View{Now: cycleStart, Self: "node-a", Voters: voters, Leader: true, Pending: 199}, LeaderDefers},
		{"leader in its slot past 2x", View{Now: cycleStart, Self: "node-a", Voters: voters, Leader: true, Pending: 200}, InSlot},
		{"leader out of its slot past 2x", View{Now: cycleStart.Add(20 * time.Second), Self: "node-a", Voters: voters, Leader: true, Pending: 399}, WaitSlot},
		{"lone leader does not defer", View{Now: cycleStart, Self: "node-a", Voters: []string{"node-a"}, Leader: true, Pending: 100}, InSlot},
		{"many entries alone do not break turns", View{Now: cycleStart, Self: "node-c", Voters: voters, Pending: 100000}, WaitSlot},
		{"waited just under two cycles", View{Now: cycleStart, Self: "node-c", Voters: voters, Pending: 100, DueSince: cycleStart.Add(-59 * time.Second)}, WaitSlot},
		{"valve after two cycles, out of slot", View{Now: cycleStart, Self: "node-c", Voters: voters, Pending: 100, DueSince: cycleStart.Add(-60 * time.Second)}, Overdue},
		{"valve, leader past 2x", View{Now: cycleStart.Add(20 * time.Second), Self: "node-a", Voters: voters, Leader: true, Pending: 200, DueSince: cycleStart.Add(-time.Minute)}, Overdue},
		{"no valve for a deferring leader", View{Now: cycleStart.Add(20 * time.Second), Self: "node-a", Voters: voters, Leader: true, Pending: 150, DueSince: cycleStart.Add(-time.Hour)}, LeaderDefers},
		{"non-voter has no slot", View{Now: cycleStart, Self: "node-x", Voters: voters, Pending: 100}, NoSlot},
		{"one snapshot per turn", View{Now: cycleStart.Add(4 * time.Second), Self: "node-a", Voters: voters, Pending: 100, LastStart: cycleStart}, WaitSlot},
		{"last turn's snapshot does not count", View{Now: cycleStart.Add(time.Second), Self: "node-a", Voters: voters, Pending: 100, LastStart: cycleStart.Add(-25 * time.Second)}, InSlot},
		{"duplicate ids count once", View{Now: cycleStart.Add(21 * time.Second), Self: "node-c", Voters: append(voters, "node-c"), Pending: 100}, InSlot},
	}
	for _, c := range cases {
		if got := p.Decide(c.v); got != c.want {
			t.Errorf("%s: Decide = %q, want %q", c.name, got, c.want)
		}
	}
}

// At every instant at most one voter's slot is open, each voter's opens
// once per cycle for half a slot, and NextOpen points at the opening.
func TestSlotsNeverOverlap(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5} {
		p := Policy{Slot: 7 * time.Second, Threshold: 1}
		base := time.Unix(1_700_000_000, 123)
		open := make([]time.Duration, n)
		step := 250 * time.Millisecond
		for d := time.Duration(0); d < 3*time.Duration(n)*p.Slot; d += step {
			now := base.Add(d)
			count := 0
			for pos := range n {
				if p.SlotOpen(now, pos, n) {
					count++
					open[pos] += step
				}
				next := p.NextOpen(now, pos, n)
				if next.Before(now) || !p.SlotOpen(next, pos, n) {
					t.Fatalf("n=%d pos=%d at %v: NextOpen %v is not an open instant", n, pos, now, next)
				}
				if next.After(now) && p.SlotOpen(next.Add(-time.Nanosecond), pos, n) {
					t.Fatalf("n=%d pos=%d: NextOpen %v is not the first open instant", n, pos, next)
				}
			}
			if count > 1 {
				t.Fatalf("n=%d at %v: %d slots open at once", n, now, count)
			}
		}
		for pos, got := range open {
			// three cycles of half a slot each
			if want := 3 * p.Slot / 2; got < want-step || got > want+step {
				t.Errorf("n=%d pos=%d open for %v over three cycles, want about %v", n, pos, got, want)
			}
		}
	}
}

func TestSlotsBeforeEpoch(t *testing.T) {
	p := Policy{Slot: time.Second}
	now := time.Unix(-10, 0) // a multiple of the 2 s cycle: position 0 opens
	if !p.SlotOpen(now, 0, 2) || p.SlotOpen(now, 1, 2) {
		t.Fatal("slots before the epoch are misaligned")
	}
}

func TestTurnStart(t *testing.T) {
	p := Policy{Slot: 10 * time.Second}
	for _, c := range []struct {
		now  int64
		pos  int
		want int64
	}{{3000, 0, 3000}, {3004, 0, 3000}, {3029, 0, 3000}, {3004, 1, 2980}, {3015, 1, 3010}, {3009, 2, 2990}, {-5, 0, -30}} {
		if got := p.TurnStart(time.Unix(c.now, 0), c.pos, 3); got.Unix() != c.want {
			t.Errorf("TurnStart(%d, pos %d) = %d, want %d", c.now, c.pos, got.Unix(), c.want)
		}
	}
}
