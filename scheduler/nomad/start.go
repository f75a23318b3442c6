package nomad

import (
	"context"
	"fmt"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// Start implements scheduler.Scheduler: register the attempt's batch job,
// then wait (blocking queries) until Nomad has placed it and its task has
// started, or ended without starting — Docker's Start
// returns once the container runs, and the executor and the conformance
// suite rely on a started task after Start. A job Nomad cannot place (no
// capacity) keeps Start waiting as queued work, at most placement_timeout
// after its submission: then the job is stopped and Start returns nil,
// Wait and Inspect reporting it exited 128 with Nomad's reason. When ctx
// ends first the error wraps ErrUnavailable, and the job stays
// registered: a retry finds it and waits again.
//
// The job is registered with EnforceIndex and a modify index of 0, which
// Nomad accepts only if no job has that id: the register is the commit
// point, as Docker's create is. A second Start of the same attempt gets
// Nomad's "job already exists" answer and reads the job instead:
//   - a job whose task has started (or ended, or was stopped) gives
//     ErrAlreadyExists, and the executor adopts it;
//   - a job still waiting for placement or for its image is the same
//     attempt on its way: Nomad will start it, so Start waits for that
//     and returns nil (Docker's "a create in flight is waited for").
func (s *Scheduler) Start(ctx context.Context, req scheduler.StartRequest) error {
	if err := validate(req); err != nil {
		return err
	}
	if req.NeverPull && !req.AlwaysPull {
		// The docker driver pulls whatever is missing on the client
		// node; there is no way to forbid that per task.
		s.log.Debug("NeverPull is not enforced by Nomad", "name", req.Name)
	}
	rctx, cancel := s.short(ctx)
	_, _, err := s.cli.Jobs().RegisterOpts(s.jobFor(req), &nomadapi.RegisterOptions{EnforceIndex: true, ModifyIndex: 0}, s.write(rctx))
	cancel()
	switch {
	case err == nil:
		s.log.Debug("registered job", "name", req.Name, "image", req.Image)
		return s.awaitStart(ctx, req.Name)
	case duplicate(err):
	default:
		return classify("register", req.Name, err)
	}
	st, err := s.Inspect(ctx, req.Name)
	if err != nil {
		return err
	}
	switch st.State {
	case scheduler.StateCreated:
		s.log.Info("the job of this attempt is registered already and not started yet: Nomad starts it", "name", req.Name)
		return s.awaitStart(ctx, req.Name)
	case scheduler.StateNotFound:
		// Purged between our register and our read: nothing runs, so
		// registering afresh is the caller's retry to make.
		return fmt.Errorf("nomad: register %s: the job vanished after a duplicate answer: %w", req.Name, scheduler.ErrUnavailable)
	}
	return fmt.Errorf("nomad: register %s: %w (state %s)", req.Name, scheduler.ErrAlreadyExists, st.State)
}

// awaitStart waits with blocking queries until the job's task has started
// or the job has ended or gone (Wait and Inspect tell the rest). A job
// still unplaced after placement_timeout is ended by conclude (stopped,
// exited 128 with Nomad's reason), so Start returns then instead of
// waiting for capacity forever; a lost allocation is ended likewise.
func (s *Scheduler) awaitStart(ctx context.Context, name string) error {
	b := block{wait: blockingWait}
	for {
		snap, err := s.readAt(ctx, "start", name, b)
		if err != nil {
			return err
		}
		st, err := s.conclude(ctx, "start", name, snap)
		if err != nil {
			return err
		}
		if st.State != scheduler.StateCreated {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("nomad: start %s: registered, not started yet: %w: %w", name, scheduler.ErrUnavailable, ctx.Err())
		}
		b = s.nextBlock(snap, b)
	}
}
