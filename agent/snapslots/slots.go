// Package snapslots decides when this node may take an automatic raft
// snapshot, so that the nodes of a cluster never snapshot at the same
// moment (see DESIGN.md beside this file).
package snapslots

import (
	"slices"
	"time"
)

// Reason says why a snapshot is (or is not) due.
type Reason string

const (
	// NotDue: fewer entries than the threshold since the last snapshot.
	NotDue Reason = ""
	// WaitSlot: due, but this node's time slot is not open, or it already
	// started a snapshot in this turn (one per turn: under load the log
	// passes the threshold again while the first one is written).
	WaitSlot Reason = "wait_slot"
	// LeaderDefers: due, but the leader leaves snapshots to its followers
	// until its log passes LeaderFactor × threshold.
	LeaderDefers Reason = "leader_defers"
	// InSlot: due and this node's slot is open.
	InSlot Reason = "slot"
	// NoSlot: due on a node that has no slot (a non-voter, or one not yet
	// in the configuration), which is not part of the quorum.
	NoSlot Reason = "no_slot"
	// Overdue: the node has waited ValveCycles whole cycles of turns with a
	// snapshot due (its slots were missed, or its snapshots failed);
	// snapshot regardless of slots so the log never grows without bound.
	Overdue Reason = "overdue"
)

// Take reports whether r means "snapshot now".
func (r Reason) Take() bool { return r == InSlot || r == NoSlot || r == Overdue }

const (
	// ValveCycles whole cycles of turns with a snapshot due make a node
	// snapshot at once, slot or not. The valve counts time, not entries: a
	// busy cluster appends many times the threshold in one cycle (measured:
	// 4× the default threshold within 10 s), and an entry-count valve
	// would fire on every node at once, which is what the turns prevent.
	ValveCycles = 2
	// LeaderFactor × threshold entries make the leader use its own slot.
	LeaderFactor = 2
)

// Policy is the cluster-wide rule. Every node must use the same Slot for
// the slots to line up; the threshold may differ without harm.
type Policy struct {
	// Slot is the length of each voter's turn. A node starts a snapshot
	// only in the first half of its slot, so a snapshot that takes less
	// than half a slot ends before the next voter's slot begins.
	Slot time.Duration
	// Threshold is the number of log entries since the last snapshot that
	// makes a snapshot due.
	Threshold uint64
}

// View is what a node knows when it decides.
type View struct {
	Now time.Time
	// Self is this node's server id; Voters the ids of the voters in the
	// latest raft configuration (any order).
	Self   string
	Voters []string
	Leader bool
	// Pending is the number of log entries since the last snapshot.
	Pending uint64
	// DueSince is when this node found a snapshot due and had to wait for
	// its slot (zero: it is not waiting); the scheduler keeps it.
	DueSince time.Time
	// LastStart is when this node last started a snapshot in its slot
	// (zero: never); the scheduler keeps it.
	LastStart time.Time
}

// Decide says whether this node should snapshot now, and why.
func (p Policy) Decide(v View) Reason {
	if p.Threshold == 0 || v.Pending < p.Threshold {
		return NotDue
	}
	pos, n := Position(v.Self, v.Voters)
	if pos < 0 {
		return NoSlot
	}
	if v.Leader && n > 1 && v.Pending < LeaderFactor*p.Threshold {
		return LeaderDefers
	}
	if !v.DueSince.IsZero() && v.Now.Sub(v.DueSince) >= ValveCycles*p.Cycle(n) {
		return Overdue
	}
	if !p.SlotOpen(v.Now, pos, n) || !v.LastStart.Before(p.TurnStart(v.Now, pos, n)) {
		return WaitSlot
	}
	return InSlot
}

// TurnStart is when the most recent slot of the voter at pos of n began,
// at or before now.
func (p Policy) TurnStart(now time.Time, pos, n int) time.Time {
	slot, cycle, into := p.intoCycle(now, n)
	ns := now.UnixNano()
	back := into - int64(pos)*slot
	if back < 0 {
		back += cycle
	}
	return time.Unix(0, ns-back)
}

// Cycle is the length of one round of turns of n voters.
func (p Policy) Cycle(n int) time.Duration { return time.Duration(n) * p.Slot }

// Position is self's place among the sorted voter ids and the number of
// voters; -1 when self is not a voter.
func Position(self string, voters []string) (int, int) {
	sorted := slices.Clone(voters)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	return slices.Index(sorted, self), len(sorted)
}

// SlotOpen reports whether the voter at pos of n may start a snapshot at
// now: the wall clock is cut into cycles of n slots counted from the Unix
// epoch (so every node agrees without talking, up to clock skew), and a
// voter may start in the first half of its own slot.
func (p Policy) SlotOpen(now time.Time, pos, n int) bool {
	if p.Slot <= 0 || n <= 0 || pos < 0 || pos >= n {
		return false
	}
	slot, _, into := p.intoCycle(now, n)
	start := int64(pos) * slot
	return into >= start && into < start+slot/2
}

// NextOpen is the earliest time at or after now when the slot of the voter
// at pos of n opens (now itself when it is open).
func (p Policy) NextOpen(now time.Time, pos, n int) time.Time {
	if p.SlotOpen(now, pos, n) {
		return now
	}
	slot, cycle, into := p.intoCycle(now, n)
	ns := now.UnixNano()
	start := int64(pos) * slot
	wait := start - into
	if wait <= 0 {
		wait += cycle
	}
	return time.Unix(0, ns+wait)
}

// intoCycle gives, in nanoseconds, the slot and cycle lengths for n voters
// and how far now is into the current cycle (cycles count from the Unix
// epoch, so every node cuts the clock the same way).
func (p Policy) intoCycle(now time.Time, n int) (slot, cycle, into int64) {
	slot = int64(p.Slot)
	cycle = slot * int64(n)
	into = now.UnixNano() % cycle
	if into < 0 {
		into += cycle
	}
	return slot, cycle, into
}
