package fsm

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// applyRunsDelete deletes the named runs of a pipeline that run retention
// may delete, with their task executions, logs and run objects, and
// emits one event for the batch. The leader chose the runs from its
// state; the apply re-checks each against the committed state and the
// limits in the command, so it decides the same on every replica and
// never deletes a run that became ineligible (retention.deletes).
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
	rules, err := newRetention(a.tx, p, cmd.Keep, cmd.EndedBefore)
	if err != nil {
		return nil, err
	}
	res := &RunsDeleted{}
	var from, through int64
	for _, id := range cmd.RunIDs {
		r, err := store.GetRun(a.tx, p.NamespaceID, p.PipelineID, id)
		if err != nil {
			return nil, err
		}
		if r == nil || !rules.deletes(r) {
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

// retention decides which of one pipeline's runs run retention deletes.
// The leader uses it to choose (RunsPastRetention) and every replica to
// re-check (applyRunsDelete), so both read the same rule.
type retention struct {
	tx          *bbolt.Tx
	p           *model.Pipeline
	endedBefore int64
	// keepFrom is the id of the pipeline's Keep-th newest run: runs
	// older than it are past the count limit (0: none are). It is read
	// once, before any delete; the runs deleted are older, so it does
	// not move within a batch.
	keepFrom int64
	// activeCanary is the undecided canary deployment (0: none).
	activeCanary int64
}

func newRetention(tx *bbolt.Tx, p *model.Pipeline, keep, endedBefore int64) (*retention, error) {
	active, err := undecidedCanary(tx, p)
	if err != nil {
		return nil, err
	}
	return &retention{tx: tx, p: p, endedBefore: endedBefore, activeCanary: active,
		keepFrom: keepFromRunID(tx, p, keep)}, nil
}

// keepFromRunID is the id of p's keep-th newest stored run, or 0 when
// no stored run is older than it. Finding it walks keep keys, on the
// leader every pass and on every replica every RunsDelete, so first one
// seek rules out the common case cheaply: when the ids from the oldest
// stored run up to LastRunID number keep or fewer, there are at most keep
// runs and none is past the count. 0 and the oldest id then decide alike
// (no stored run is older than the oldest), so the answer is the one the
// walk would give.
func keepFromRunID(tx *bbolt.Tx, p *model.Pipeline, keep int64) int64 {
	if keep <= 0 {
		return 0
	}
	oldest := store.OldestRunID(tx, p.NamespaceID, p.PipelineID)
	if oldest == 0 || p.LastRunID-oldest+1 <= keep {
		return 0
	}
	return nthNewestRunID(tx, p.NamespaceID, p.PipelineID, keep)
}

// nthNewestRunID is store.NthNewestRunID; a test counts its calls.
var nthNewestRunID = store.NthNewestRunID

// past reports whether r is past a limit: older than the Keep-th newest
// run, or ended before the age cut-off.
func (rt *retention) past(r *model.Run) bool {
	byCount := rt.keepFrom != 0 && r.RunID < rt.keepFrom
	byAge := rt.endedBefore != 0 && r.Ended != 0 && r.Ended < rt.endedBefore
	return byCount || byAge
}

// deletes reports whether retention deletes r: past a limit and not kept
// whatever the limits say (kept).
func (rt *retention) deletes(r *model.Run) bool { return rt.past(r) && !rt.kept(r) }

// kept reports whether retention must keep r whatever its limits say: a
// run still going (its tasks, logs and token are in use), the pipeline's
// newest run (its last outcome stays visible), a run whose task logs are
// still open (a collector may still be writing them; the log closer ends
// them soon), and a run an undecided canary deployment counts (the
// evidence of a decision still to be made, on either arm).
func (rt *retention) kept(r *model.Run) bool {
	switch {
	case r.State != model.RunStateComplete:
		return true
	case r.RunID == rt.p.LastRunID:
		return true
	case rt.activeCanary != 0 && r.DeploymentID == rt.activeCanary:
		return true
	}
	return store.RunHasOpenLogs(rt.tx, r)
}

// beyond reports whether no run from r on can be past a limit, so a scan
// oldest first may stop: r is not older than the Keep-th newest run and
// was created after the age cut-off (a run ends after it is created, and
// ids grow with creation time — but for leader clock skew, which only
// defers a run to a later pass).
func (rt *retention) beyond(r *model.Run) bool {
	return (rt.keepFrom == 0 || r.RunID >= rt.keepFrom) && (rt.endedBefore == 0 || r.Created >= rt.endedBefore)
}

// RunsPastRetention returns, oldest first, up to maxRuns runs of p that
// run retention deletes under the limits keep (runs beyond the newest
// keep; 0 none) and endedBefore (epoch ms; 0 none), with at most maxTasks
// task executions between them — but always the first such run, whatever
// its size — so one RunsDelete stays a bounded entry and apply (a run
// takes its task records and their logs with it). The leader reads it
// from its state to fill a RunsDelete; the apply checks each run again.
func RunsPastRetention(tx *bbolt.Tx, p *model.Pipeline, keep, endedBefore int64, maxRuns, maxTasks int) ([]int64, error) {
	if keep <= 0 && endedBefore <= 0 {
		return nil, nil
	}
	rt, err := newRetention(tx, p, keep, endedBefore)
	if err != nil {
		return nil, err
	}
	var out []int64
	tasks := 0
	err = store.ForEachRun(tx, p.NamespaceID, p.PipelineID, func(r *model.Run) bool {
		if rt.beyond(r) {
			return false
		}
		if !rt.deletes(r) {
			return true
		}
		n := store.CountTaskRecords(tx, r.NamespaceID, r.PipelineID, r.RunID)
		if len(out) > 0 && tasks+n > maxTasks {
			return false
		}
		out, tasks = append(out, r.RunID), tasks+n
		return len(out) < maxRuns
	})
	return out, err
}

// undecidedCanary is the id of p's canary deployment that has not been
// decided yet, or 0.
func undecidedCanary(tx *bbolt.Tx, p *model.Pipeline) (int64, error) {
	if p.ActiveCanary == 0 {
		return 0, nil
	}
	d, err := store.GetDeployment(tx, p.NamespaceID, p.PipelineID, p.ActiveCanary)
	if err != nil || d == nil || d.Canary == nil || d.Canary.Decision != nil {
		return 0, err
	}
	return d.DeploymentID, nil
}
