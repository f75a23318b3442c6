package nomad

import (
	"context"
	"fmt"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// Stop implements scheduler.Scheduler: deregister the job without purging
// it, so its allocation and final state stay readable, and wait until
// Nomad reports the allocation ended. Nomad sends SIGTERM, waits the
// task's kill_timeout, then SIGKILLs; the kill timeout is fixed when the
// job is registered (Options.StopGrace), so grace only bounds how long
// Stop waits for the end (with APITimeout on top).
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
	if !jobStopped(snap.job) {
		if err := s.deregister(ctx, name, false); err != nil {
			return err
		}
	}
	grace = max(grace, s.killTimeout(snap.job))
	wctx, cancel := context.WithTimeout(ctx, grace+s.opts.APITimeout)
	defer cancel()
	// A job without an allocation is done once stopped, and no
	// allocation change would wake a blocking query: read it again at
	// once (it may have been placed meanwhile).
	index := snap.index
	if snap.alloc == nil {
		index = 0
	}
	for {
		snap, err := s.read(wctx, "stop", name, index)
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("nomad: stop %s: the allocation did not end within %s: %w", name, grace+s.opts.APITimeout, scheduler.ErrUnavailable)
			}
			return err
		}
		if st := describe(snap); st.State == scheduler.StateNotFound || st.State == scheduler.StateExited {
			return nil
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
