package docker

import (
	"context"
	"fmt"
	"math"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/goferhq/gofer/scheduler"
)

// Stop implements scheduler.Scheduler: the engine sends SIGTERM (or the
// image's STOPSIGNAL), waits grace, then SIGKILLs. Docker counts grace in
// whole seconds, so it is rounded up: a task never gets less than asked.
// grace <= 0 means Options.StopGrace.
func (s *Scheduler) Stop(ctx context.Context, name string, grace time.Duration) error {
	if grace <= 0 {
		grace = s.opts.StopGrace
	}
	info, found, err := s.resolve(ctx, "stop", name)
	if err != nil || !found {
		return err
	}
	secs := int(math.Ceil(grace.Seconds()))
	// The engine answers only once the container is down: allow the grace
	// on top of the usual call budget.
	sctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+s.opts.APITimeout)
	defer cancel()
	err = s.cli.ContainerStop(sctx, info.ID, container.StopOptions{Timeout: &secs})
	if err == nil || notFound(err) { // exited (304) is nil already; removed meanwhile is fine
		return nil
	}
	return classify("stop", name, err)
}

// Remove implements scheduler.Scheduler: a forced remove (a running
// container is SIGKILLed; call Stop first for a graceful end) that also
// deletes its anonymous volumes, so swept task containers leave nothing
// behind. A removal already in progress (409) counts as done: another
// caller owns it, and if it fails the container shows as dead and the
// sweep tries again.
func (s *Scheduler) Remove(ctx context.Context, name string) error {
	info, found, err := s.resolve(ctx, "remove", name)
	if err != nil || !found {
		return err
	}
	release, err := s.acquire(ctx)
	if err != nil {
		return fmt.Errorf("docker: remove %s: %w: %w", name, scheduler.ErrUnavailable, err)
	}
	defer release()
	rctx, cancel := s.short(ctx)
	defer cancel()
	err = s.cli.ContainerRemove(rctx, info.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err == nil || notFound(err) || (refused(err) && cerrdefs.IsConflict(err)) {
		return nil
	}
	return classify("remove", name, err)
}
