package agent

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
)

// Fast failover on positive evidence.
//
// hashicorp/raft starts an election only after a follower's heartbeat
// timer (a random 1–2× heartbeat_timeout) finds the leader silent, and a
// follower refuses votes while it still believes in a leader, so after a
// leader crash the cluster typically waits 1.5–3× the timeout. When the
// leader's process is gone its raft port refuses connections: that is
// positive evidence, unlike silence, which may only be a slow network. On
// that evidence a follower shortens raft's timeouts to the lease timeout
// (the shortest raft accepts), so its next heartbeat check starts an
// election; once a leader is known again the configured timeouts return.
// A partition produces timeouts, not refusals, and keeps the normal, more
// patient behaviour.
//
// Survivors must not all campaign at once (split votes cost a full
// election timeout). Raft refuses a candidate while the voter still has a
// leader, and refuses a candidate whose log is shorter than the voter's,
// so the survivor with the longest log should campaign last: by then the
// others have given up on the old leader and will vote for it. Survivors
// therefore compare last log indexes (through /api/system/health) and
// stagger their elections in ascending order.

const (
	// livenessPoll is how often a follower checks its leader's silence.
	livenessPoll = 50 * time.Millisecond
	// probeDialTimeout bounds one probe of the leader's raft port.
	probeDialTimeout = 200 * time.Millisecond
	// electionStagger separates survivors' early elections.
	electionStagger = 50 * time.Millisecond
)

// watchLeaderLiveness runs until shutdown on every node.
func (a *Agent) watchLeaderLiveness() {
	normal := a.raft.ReloadableConfig()
	fast := normal
	fast.HeartbeatTimeout = a.cfg.Raft.LeaderLeaseTimeout.D()
	fast.ElectionTimeout = a.cfg.Raft.LeaderLeaseTimeout.D()
	if fast.HeartbeatTimeout >= normal.HeartbeatTimeout {
		return // nothing to gain: the timeouts are already as short as allowed
	}
	// Silence of two heartbeat intervals (raft sends one every tenth of
	// the heartbeat timeout) is worth a probe.
	probeAfter := normal.HeartbeatTimeout / 5

	ticker := time.NewTicker(livenessPoll)
	defer ticker.Stop()
	accelerated := false
	var deadLeader raft.ServerAddress
	for {
		select {
		case <-a.shutdownCh:
			if accelerated {
				_ = a.raft.ReloadConfig(normal)
			}
			return
		case <-ticker.C:
		}
		state := a.raft.State()
		leaderAddr, leaderID := a.raft.LeaderWithID()
		if accelerated {
			// Back to the configured timeouts once a (new) leader rules.
			if state == raft.Leader || (leaderAddr != "" && leaderAddr != deadLeader && state == raft.Follower) {
				if err := a.raft.ReloadConfig(normal); err == nil {
					accelerated, deadLeader = false, ""
					a.logger.Info("a leader is elected; raft timeouts back to normal")
				}
			}
			continue
		}
		if state != raft.Follower || leaderAddr == "" {
			continue
		}
		silence := time.Since(a.raft.LastContact())
		if silence < probeAfter {
			continue
		}
		if !refusesConnections(string(leaderAddr)) {
			continue
		}
		a.logger.Warn("the leader's raft port refuses connections; starting an election early",
			"leader", leaderAddr, "silent_for", silence.Round(time.Millisecond))
		// Raft checks the leader's silence against the heartbeat timeout
		// when the timer fires (at once, after a reload that shortens it),
		// so wait until the silence reaches the shortened timeout, plus
		// this node's place in the order of survivors.
		rank := a.electionRank(leaderID)
		if wait := fast.HeartbeatTimeout - time.Since(a.raft.LastContact()) + 10*time.Millisecond + time.Duration(rank)*electionStagger; wait > 0 {
			select {
			case <-a.shutdownCh:
				return
			case <-time.After(wait):
			}
		}
		if err := a.raft.ReloadConfig(fast); err != nil {
			a.logger.Warn("could not shorten raft timeouts", "error", err)
			continue
		}
		accelerated, deadLeader = true, leaderAddr
	}
}

// refusesConnections reports whether a TCP connect to addr is actively
// refused (nothing listens there). A timeout or any other error is not
// evidence and reports false.
func refusesConnections(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, probeDialTimeout)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// electionRank is how many other survivors should campaign before this
// node: those with a shorter log (or an equal log and a smaller id). The
// node with the most complete log goes last and wins. Survivors that do
// not answer within the probe timeout are left out.
func (a *Agent) electionRank(deadLeader raft.ServerID) int {
	f := a.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	own := a.raft.LastIndex()
	ctx, cancel := context.WithTimeout(context.Background(), probeDialTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	rank := 0
	for _, srv := range f.Configuration().Servers {
		id := string(srv.ID)
		if srv.ID == deadLeader || id == a.nodeID || srv.Suffrage != raft.Voter {
			continue
		}
		var apiURL string
		_ = a.fsm.ViewCommitted(func(tx *bbolt.Tx) error {
			if rec, err := store.GetServer(tx, id); err == nil && rec != nil {
				apiURL = rec.APIAddr
			}
			return nil
		})
		if apiURL == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := a.fetchHealth(ctx, apiURL)
			if err != nil {
				return
			}
			if h.LastLogIndex < own || (h.LastLogIndex == own && id < a.nodeID) {
				mu.Lock()
				rank++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return rank
}
