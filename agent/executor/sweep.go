package executor

import (
	"context"
	"time"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// sweepLoop removes, every SweepInterval, containers labelled with this
// cluster that belong to no live attempt: leftovers of a deposed leader,
// finished containers a crash kept from being removed, runs of deleted
// pipelines (G7).
func (e *Executor) sweepLoop(ctx context.Context) {
	// Give recovery a moment to record what it adopts before the first
	// sweep; a container whose attempt is live is never touched anyway.
	if !sleep(ctx, 2*time.Second) {
		return
	}
	for {
		e.sweep(ctx)
		if !sleep(ctx, e.cfg.SweepInterval) {
			return
		}
	}
}

// Sweep runs one sweep now (tests and benchmarks call it directly).
func (e *Executor) Sweep(ctx context.Context) int { return e.sweep(ctx) }

func (e *Executor) sweep(ctx context.Context) int {
	containers, err := e.sched.List(ctx, map[string]string{LabelCluster: e.cfg.ClusterID})
	if err != nil {
		if ctx.Err() == nil {
			e.logger.Warn("sweep could not list containers", "error", err)
		}
		return 0
	}
	removed := 0
	for _, c := range containers {
		if e.live(c) {
			continue
		}
		if c.Status.State == scheduler.StateRunning || c.Status.State == scheduler.StateCreated {
			if err := e.sched.Stop(ctx, c.Name, e.cfg.StopGrace); err != nil {
				e.logger.Warn("sweep could not stop container", "container", c.Name, "error", err)
				continue
			}
		}
		if err := e.sched.Remove(ctx, c.Name); err != nil {
			e.logger.Warn("sweep could not remove container", "container", c.Name, "error", err)
			continue
		}
		removed++
		e.logger.Info("removed a container that belongs to no live attempt", "container", c.Name, "state", c.Status.State)
	}
	return removed
}

// live reports whether a container is the current attempt of a task that
// is scheduled or running.
func (e *Executor) live(c scheduler.Container) bool {
	ns, pipeline, run, task, attempt, ok := attemptFromLabels(c.Labels)
	if !ok {
		return false
	}
	var t *model.TaskExecution
	_ = e.fsm.View(func(tx *bbolt.Tx) (err error) {
		t, err = store.GetTask(tx, ns, pipeline, run, task)
		return err
	})
	return t != nil && t.Attempt == attempt && t.Container == c.Name &&
		(t.State == model.TaskStateScheduled || t.State == model.TaskStateRunning)
}
