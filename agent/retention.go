package agent

import (
	"context"
	"time"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// deleteRunsPastRetention applies run retention (docs/runs.md, "Run
// retention"): for each pipeline it reads from its state which finished
// runs are past the pipeline's limits (its live config's run_retention,
// else the server's) and deletes them in batches of at most
// runRetentionBatch runs and runRetentionBatchTasks task executions, one
// RunsDelete each, and at most runRetentionBatchesPerPass batches per
// pipeline in one pass (the rest waits for the next). The age cut-off is
// computed here, from the leader's clock, and travels in the command. No
// entry is written for a pipeline with nothing to delete.
func (p *pruner) deleteRunsPastRetention(ctx context.Context) {
	// One read finds every pipeline's first batch; only a pipeline whose
	// batch was full is read again.
	var first []fsm.RunsDelete
	now := p.clock.Now()
	_ = p.state.View(func(tx *bbolt.Tx) error {
		return store.ForEachPipeline(tx, func(pl *model.Pipeline) error {
			if cmd, ok := p.runsDeleteFor(tx, pl, now); ok {
				first = append(first, cmd)
			}
			return nil
		})
	})
	for _, cmd := range first {
		batches := 0
		for ok := true; ok && ctx.Err() == nil; cmd, ok = p.nextRunsDelete(cmd.NamespaceID, cmd.PipelineID) {
			// The next read says whether more is left (a batch the
			// task cap cut short names fewer runs than a full one).
			if batches++; !p.applyRunsDelete(ctx, cmd) || batches == runRetentionBatchesPerPass {
				break
			}
		}
	}
}

// applyRunsDelete applies one batch and says whether it deleted anything
// (if not, nothing more qualified since the read: the next pass retries).
func (p *pruner) applyRunsDelete(ctx context.Context, cmd fsm.RunsDelete) bool {
	res, err := applyChecked(ctx, p.apply, fsm.CmdRunsDelete, cmd)
	if err != nil {
		if ctx.Err() == nil {
			p.logger.Warn("deleting runs past retention failed", "namespace", cmd.NamespaceID, "pipeline", cmd.PipelineID, "error", err)
		}
		return false
	}
	done, err := fsm.ResultAs[fsm.RunsDeleted](res)
	if err != nil || done == nil || done.Deleted == 0 {
		return false
	}
	p.logger.Info("deleted runs past retention", "namespace", cmd.NamespaceID, "pipeline", cmd.PipelineID,
		"runs", done.Deleted, "from_run", cmd.RunIDs[0], "through_run", cmd.RunIDs[len(cmd.RunIDs)-1])
	return true
}

// nextRunsDelete reads the next batch of one pipeline's runs past its
// retention; ok is false when there is none.
func (p *pruner) nextRunsDelete(ns, pipeline string) (cmd fsm.RunsDelete, ok bool) {
	now := p.clock.Now()
	_ = p.state.View(func(tx *bbolt.Tx) error {
		pl, err := store.GetPipeline(tx, ns, pipeline)
		if err != nil || pl == nil {
			return err
		}
		cmd, ok = p.runsDeleteFor(tx, pl, now)
		return nil
	})
	return cmd, ok
}

// runsDeleteFor builds the command deleting pl's oldest runs past its
// retention at now; ok is false when none is.
func (p *pruner) runsDeleteFor(tx *bbolt.Tx, pl *model.Pipeline, now time.Time) (cmd fsm.RunsDelete, ok bool) {
	keep, age, ok := p.runRetentionOf(tx, pl)
	if !ok {
		return cmd, false
	}
	cmd = fsm.RunsDelete{NamespaceID: pl.NamespaceID, PipelineID: pl.PipelineID, Keep: keep}
	if age > 0 {
		// A cut-off at or before the epoch deletes nothing by age, and
		// the applier would refuse it (a negative one) with the count
		// limit in the same entry: no age limit then.
		cmd.EndedBefore = max(now.Add(-age).UnixMilli(), 0)
	}
	ids, err := fsm.RunsPastRetention(tx, pl, cmd.Keep, cmd.EndedBefore, runRetentionBatch, runRetentionBatchTasks)
	if err != nil {
		p.logger.Warn("reading runs past retention failed", "namespace", pl.NamespaceID, "pipeline", pl.PipelineID, "error", err)
		return cmd, false
	}
	cmd.RunIDs = ids
	return cmd, len(ids) > 0
}

// runRetentionOf is the retention that applies to pl: its live config's
// run_retention when it sets one, else the server's. ok is false when the
// live config cannot be read: the pipeline is skipped (and logged), not
// given the server's retention, which might delete runs its own setting
// keeps.
func (p *pruner) runRetentionOf(tx *bbolt.Tx, pl *model.Pipeline) (keep int64, age time.Duration, ok bool) {
	if pl.LiveVersion != 0 {
		rr, err := store.ConfigRunRetention(tx, pl.NamespaceID, pl.PipelineID, pl.LiveVersion)
		if err != nil {
			p.logger.Warn("skipping run retention: the live config's run_retention cannot be read",
				"namespace", pl.NamespaceID, "pipeline", pl.PipelineID, "version", pl.LiveVersion, "error", err)
			return 0, 0, false
		}
		if rr != nil {
			return rr.Count, rr.AgeDuration(), true
		}
	}
	return p.cfg.RunRetentionCount, p.cfg.RunRetentionAge, true
}
