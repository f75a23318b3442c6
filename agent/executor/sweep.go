package executor

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
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
	if !clock.Sleep(ctx, e.clock, 2*time.Second) {
		return
	}
	for {
		e.sweep(ctx)
		if !clock.Sleep(ctx, e.clock, e.cfg.SweepInterval) {
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
	var orphans []scheduler.Container
	if err := e.state.View(func(tx *bbolt.Tx) error {
		for _, c := range containers {
			if _, ok := e.draining.Load(c.Name); ok {
				continue
			}
			live, err := isLive(tx, c)
			if err != nil {
				return err
			}
			if !live {
				orphans = append(orphans, c)
			}
		}
		return nil
	}); err != nil {
		e.logger.Warn("sweep could not read state", "error", err)
		return 0
	}
	// Orphans are removed by force and in parallel: nothing will record
	// their result, and a graceful stop of each in turn could take the
	// sweep minutes (a shell as PID 1 ignores SIGTERM). The scheduler
	// bounds how many removals reach the engine at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	removed := 0
	for _, c := range orphans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.sched.Remove(ctx, c.Name); err != nil {
				if ctx.Err() == nil {
					e.logger.Warn("sweep could not remove container", "container", c.Name, "error", err)
				}
				return
			}
			mu.Lock()
			removed++
			mu.Unlock()
			e.logger.Info("removed a container that belongs to no live attempt", "container", c.Name, "state", c.Status.State)
		}()
	}
	wg.Wait()
	return removed
}

// isLive reports whether a container is the current attempt of a task
// that is scheduled or running.
func isLive(tx *bbolt.Tx, c scheduler.Container) (bool, error) {
	if c.Labels[scheduler.LabelExtension] != "" {
		// An extension's container (agent/supervisor): not a task's, and
		// not the executor's to sweep.
		return true, nil
	}
	ns, pipeline, run, task, attempt, ok := attemptFromLabels(c.Labels)
	if !ok {
		return false, nil
	}
	t, err := store.GetTask(tx, ns, pipeline, run, task)
	if err != nil || t == nil {
		return false, err
	}
	return t.Attempt == attempt && t.Container == c.Name &&
		(t.State == model.TaskStateScheduled || t.State == model.TaskStateRunning), nil
}
