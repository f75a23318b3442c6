package fsm

import (
	"fmt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// applyRunsDelete deletes the named runs of a pipeline that run retention
// may delete, with their task executions, logs and run objects, and
// emits one event for the batch. The leader chose the runs from its
// state; the apply re-checks each against the committed state and the
// limits in the command, so it decides the same on every replica and
// never deletes a run that became ineligible (see retainedRun).
func applyRunsDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[RunsDelete](body)
	if len(cmd.RunIDs) > MaxRunsDeleted {
		return nil, fmt.Errorf("%w: run_ids names %d runs, at most %d may be deleted at once", ErrInvalid, len(cmd.RunIDs), MaxRunsDeleted)
	}
	if cmd.Keep < 0 || cmd.EndedBefore < 0 {
		return nil, fmt.Errorf("%w: keep and ended_before must be 0 (no limit) or more", ErrInvalid)
	}
	p, err := mustPipeline(a, cmd.NamespaceID, cmd.PipelineID)
	if err != nil {
		return nil, err
	}
	activeCanary, err := undecidedCanary(a, p)
	if err != nil {
		return nil, err
	}
	// The count limit's boundary is read once, before any delete: the
	// runs deleted are older than it, so it does not move in the batch.
	keepFrom := store.NthNewestRunID(a.tx, p.NamespaceID, p.PipelineID, cmd.Keep)
	res := &RunsDeleted{}
	var from, through int64
	for _, id := range cmd.RunIDs {
		r, err := store.GetRun(a.tx, p.NamespaceID, p.PipelineID, id)
		if err != nil {
			return nil, err
		}
		if r == nil || retainedRun(a, p, r, activeCanary) {
			res.Skipped++
			continue
		}
		byCount := keepFrom != 0 && r.RunID < keepFrom
		byAge := cmd.EndedBefore != 0 && r.Ended != 0 && r.Ended < cmd.EndedBefore
		if !byCount && !byAge {
			res.Skipped++
			continue
		}
		if err := store.DeleteRun(a.tx, r); err != nil {
			return nil, err
		}
		res.Deleted++
		if from == 0 || r.RunID < from {
			from = r.RunID
		}
		through = max(through, r.RunID)
	}
	if res.Deleted == 0 {
		return res, nil
	}
	return res, a.emitIn(p.NamespaceID, p.PipelineID, model.EventDeletedRuns, pipelineDetails(p.NamespaceID, p.PipelineID,
		"runs", res.Deleted, "from_run", from, "through_run", through))
}

// retainedRun reports whether retention must keep r whatever its limits
// say: a run still going (its tasks, logs and token are in use), the
// pipeline's newest run (its last outcome stays visible), a run whose
// task logs are still open (a collector may still be writing them; the
// log closer ends them soon), and a run an undecided canary deployment
// counts (the evidence of a decision still to be made, on either arm).
func retainedRun(a *applyCtx, p *model.Pipeline, r *model.Run, activeCanary int64) bool {
	switch {
	case r.State != model.RunStateComplete:
		return true
	case r.RunID == p.LastRunID:
		return true
	case activeCanary != 0 && r.DeploymentID == activeCanary:
		return true
	}
	return store.RunHasOpenLogs(a.tx, r)
}

// undecidedCanary is the id of p's canary deployment that has not been
// decided yet, or 0.
func undecidedCanary(a *applyCtx, p *model.Pipeline) (int64, error) {
	if p.ActiveCanary == 0 {
		return 0, nil
	}
	d, err := store.GetDeployment(a.tx, p.NamespaceID, p.PipelineID, p.ActiveCanary)
	if err != nil || d == nil || d.Canary == nil || d.Canary.Decision != nil {
		return 0, err
	}
	return d.DeploymentID, nil
}
