package nomad

import (
	"context"
	"errors"
	"fmt"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// Stop implements scheduler.Scheduler with grace honoured. Nomad's own
// stop (a deregister) sends SIGTERM and SIGKILLs after the task's
// kill_timeout, which is fixed when the job is registered; so a task that
// runs is signalled directly instead (the allocation signal API): SIGTERM,
// then, if it has not ended within grace, SIGKILL. The job is deregistered
// afterwards without purging, so its allocation and final state stay
// readable and Nomad counts it stopped. A task that has not started yet
// (waiting for placement or its image) cannot be signalled: the job is
// deregistered, which ends it without running. Stop returns once Nomad
// reports the allocation ended.
func (s *Scheduler) Stop(ctx context.Context, name string, grace time.Duration) error {
	snap, err := s.read(ctx, "stop", name, 0)
	if err != nil {
		return err
	}
	st, err := s.conclude(ctx, "stop", name, snap)
	if err != nil {
		return err
	}
	if st.State == scheduler.StateNotFound || st.State == scheduler.StateExited {
		return nil
	}
	if st.State == scheduler.StateRunning && !jobStopped(snap.job) {
		if err := s.signal(ctx, snap, "SIGTERM"); err == nil {
			ended, err := s.awaitEnd(ctx, name, snap.index, grace)
			if err != nil || ended {
				return errors.Join(err, s.deregister(ctx, name, false))
			}
			if err := s.signal(ctx, snap, "SIGKILL"); err == nil {
				_, err := s.awaitEnd(ctx, name, snap.index, s.opts.APITimeout)
				return errors.Join(err, s.deregister(ctx, name, false))
			}
		}
		// The task could not be signalled (it ended or is restarting
		// in between): Nomad's stop does the rest.
	}
	if !jobStopped(snap.job) {
		if err := s.deregister(ctx, name, false); err != nil {
			return err
		}
	}
	// A job without an allocation is done once stopped, and no
	// allocation change would wake a blocking query: read it again at
	// once (it may have been placed meanwhile).
	index := snap.index
	if snap.alloc == nil {
		index = 0
	}
	limit := max(grace, s.killTimeout(snap.job)) + s.opts.APITimeout
	ended, err := s.awaitEnd(ctx, name, index, limit)
	if err == nil && !ended {
		err = fmt.Errorf("nomad: stop %s: the allocation did not end within %s: %w", name, limit, scheduler.ErrUnavailable)
	}
	return err
}

// signal sends sig to the job's task through its allocation.
func (s *Scheduler) signal(ctx context.Context, snap snapshot, sig string) error {
	sctx, cancel := s.short(ctx)
	defer cancel()
	err := s.cli.Allocations().Signal(&nomadapi.Allocation{ID: snap.alloc.ID, NodeID: snap.alloc.NodeID}, s.query(sctx, nil), taskName, sig)
	if err != nil {
		s.log.Debug("signalling the task failed", "name", *snap.job.ID, "signal", sig, "error", err)
		return classify("signal "+sig, *snap.job.ID, err)
	}
	return nil
}

// awaitEnd waits with blocking queries, at most limit, until the job's
// allocation has ended (or the job is gone); ended is false when limit
// passed first. index 0 reads at once before blocking. An error is ctx's
// or the agent's.
func (s *Scheduler) awaitEnd(ctx context.Context, name string, index uint64, limit time.Duration) (ended bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		snap, err := s.read(wctx, "stop", name, index)
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return false, nil
			}
			return false, err
		}
		if st := describe(snap); st.State == scheduler.StateNotFound || st.State == scheduler.StateExited {
			return true, nil
		}
		index = max(snap.index, 1)
	}
}

// Remove implements scheduler.Scheduler: deregister and purge the job.
// Nomad stops a running allocation first (with its kill timeout; call
// Stop first to wait for a graceful end). A missing job is not an error.
func (s *Scheduler) Remove(ctx context.Context, name string) error {
	if err := checkName("remove", name); err != nil {
		return err
	}
	return s.deregister(ctx, name, true)
}

// deregister stops (and with purge, deletes) the job; a 404 is done.
func (s *Scheduler) deregister(ctx context.Context, name string, purge bool) error {
	dctx, cancel := s.short(ctx)
	defer cancel()
	_, _, err := s.cli.Jobs().DeregisterOpts(name, &nomadapi.DeregisterOptions{Purge: purge}, s.write(dctx))
	if err == nil || notFound(err) {
		return nil
	}
	return classify("deregister", name, err)
}

func jobStopped(job *nomadapi.Job) bool { return job != nil && job.Stop != nil && *job.Stop }

// killTimeout is the registered task's kill timeout (Options.StopGrace
// when the job does not say).
func (s *Scheduler) killTimeout(job *nomadapi.Job) time.Duration {
	if job != nil {
		for _, g := range job.TaskGroups {
			for _, t := range g.Tasks {
				if t != nil && t.Name == taskName && t.KillTimeout != nil {
					return *t.KillTimeout
				}
			}
		}
	}
	return s.opts.StopGrace
}
