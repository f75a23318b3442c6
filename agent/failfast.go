package agent

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
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

const (
	// livenessPoll is how often a follower checks its leader's silence.
	livenessPoll = 50 * time.Millisecond
	// probeDialTimeout bounds one probe of the leader's raft port.
	probeDialTimeout = 200 * time.Millisecond
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
		leaderAddr, _ := a.raft.LeaderWithID()
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
		// so wait until the silence reaches the shortened timeout.
		if wait := fast.HeartbeatTimeout - silence + 10*time.Millisecond; wait > 0 {
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
