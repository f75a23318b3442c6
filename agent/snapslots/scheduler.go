package snapslots

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/agent/clock"
)

// Node is what the scheduler needs from the raft node it serves.
type Node interface {
	// View reports the node's place and log (Now is filled in by the
	// scheduler from its clock).
	View() (View, error)
	// Snapshot takes a snapshot through raft's user-snapshot API, which
	// compacts the log like an automatic one.
	Snapshot() error
}

// Observer hears about every snapshot the scheduler takes (metrics).
type Observer interface {
	Started(reason Reason)
	Finished(reason Reason, took time.Duration, err error)
}

// Scheduler replaces raft's own snapshot timer: raft would let every node
// snapshot at about the same log index, so it is given a threshold it never
// reaches and this loop asks for snapshots in the node's slot instead.
type Scheduler struct {
	Policy Policy
	// Check is how often the scheduler looks when nothing is due; it also
	// wakes when the node's slot opens.
	Check    time.Duration
	Clock    clock.Clock
	Node     Node
	Observer Observer
	Logger   hclog.Logger

	dueSince  time.Time // see View.DueSince
	lastStart time.Time // see View.LastStart
}

// Run decides and snapshots until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	c := clock.Or(s.Clock)
	for {
		wait := s.step(c.Now())
		if !clock.Sleep(ctx, c, wait) {
			return
		}
	}
}

// step makes one decision, snapshots if it says so, and returns how long
// to wait before the next one.
func (s *Scheduler) step(now time.Time) time.Duration {
	v, err := s.Node.View()
	if err != nil {
		s.Logger.Warn("snapshot scheduler cannot read the raft state", "error", err)
		return s.Check
	}
	v.Now, v.DueSince, v.LastStart = now, s.dueSince, s.lastStart
	reason := s.Policy.Decide(v)
	switch {
	case reason == NotDue || reason == LeaderDefers:
		s.dueSince = time.Time{}
	case s.dueSince.IsZero():
		s.dueSince = now
	}
	if !reason.Take() {
		if reason == WaitSlot {
			pos, n := Position(v.Self, v.Voters)
			next := s.Policy.NextOpen(now, pos, n)
			if !next.After(now) { // open, but this turn's snapshot was taken
				next = s.Policy.NextOpen(now.Add(s.Policy.Slot/2), pos, n)
			}
			if until := next.Sub(now); until < s.Check {
				return max(until, time.Millisecond)
			}
		}
		return s.Check
	}
	if reason == InSlot {
		s.lastStart = now
	}
	if s.take(v, reason) {
		s.dueSince = time.Time{}
	}
	return s.Check
}

// take snapshots and reports whether it succeeded.
func (s *Scheduler) take(v View, reason Reason) bool {
	c := clock.Or(s.Clock)
	start := v.Now // the instant of the decision, which the slot rule judged
	s.Logger.Info("snapshot starting", "reason", string(reason), "entries_since_last", v.Pending,
		"start_unix_ms", start.UnixMilli())
	if s.Observer != nil {
		s.Observer.Started(reason)
	}
	err := s.Node.Snapshot()
	end := c.Now()
	took := end.Sub(start)
	if s.Observer != nil {
		s.Observer.Finished(reason, took, err)
	}
	if err != nil {
		s.Logger.Warn("snapshot failed", "reason", string(reason), "error", err, "took", took,
			"start_unix_ms", start.UnixMilli(), "end_unix_ms", end.UnixMilli())
		return false
	}
	s.Logger.Info("snapshot finished", "reason", string(reason), "took", took,
		"start_unix_ms", start.UnixMilli(), "end_unix_ms", end.UnixMilli())
	if reason == InSlot && took > s.Policy.Slot/2 {
		s.Logger.Warn("a snapshot took longer than half a snapshot slot and may have overlapped the next node's; "+
			"raise raft.snapshot_slot or raft.snapshot_write_rate", "took", took, "slot", s.Policy.Slot)
	}
	return true
}
