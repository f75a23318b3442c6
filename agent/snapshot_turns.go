package agent

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/snapslots"
)

// Automatic snapshots (agent/snapslots/DESIGN.md): raft is configured with
// a snapshot threshold it never reaches, and runSnapshotTurns asks raft for
// a snapshot (its user-snapshot API, which compacts the log the same way)
// only in this node's time slot, so voters never snapshot together.
func (a *Agent) runSnapshotTurns() {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-a.shutdownCh
		cancel()
	}()
	s := &snapslots.Scheduler{
		Policy: snapslots.Policy{Slot: a.cfg.Raft.SnapshotSlot.D(), Threshold: a.cfg.Raft.SnapshotThreshold},
		// Look at least four times a slot, so no open half-slot is missed.
		Check:    min(a.cfg.Raft.SnapshotInterval.D(), a.cfg.Raft.SnapshotSlot.D()/4),
		Clock:    clock.Real{},
		Node:     raftSnapshots{a},
		Observer: snapshotMetrics{a},
		Logger:   a.logger.Named("snapshots"),
	}
	s.Run(ctx)
}

// raftSnapshots is this node's raft as the scheduler sees it.
type raftSnapshots struct{ a *Agent }

func (r raftSnapshots) View() (snapslots.View, error) {
	f := r.a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return snapslots.View{}, err
	}
	var voters []string
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, string(s.ID))
		}
	}
	metas, err := r.a.snapshots.List()
	if err != nil {
		return snapslots.View{}, err
	}
	var snapIndex uint64
	if len(metas) > 0 {
		snapIndex = metas[0].Index
	}
	var pending uint64
	if last := r.a.raft.LastIndex(); last > snapIndex {
		pending = last - snapIndex
	}
	return snapslots.View{Self: r.a.nodeID, Voters: voters, Leader: r.a.raft.State() == raft.Leader, Pending: pending}, nil
}

func (r raftSnapshots) Snapshot() error {
	err := r.a.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return err
}

type snapshotMetrics struct{ a *Agent }

func (m snapshotMetrics) Started(reason snapslots.Reason) {
	m.a.metrics.SnapshotStarted(string(reason))
}

func (m snapshotMetrics) Finished(reason snapslots.Reason, took time.Duration, err error) {
	m.a.metrics.SnapshotFinished(string(reason), took, err)
}
