package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

func runDetails(r *model.Run, kv ...any) model.EventDetails {
	return pipelineDetails(r.NamespaceID, r.PipelineID, append([]any{"run_id", r.RunID}, kv...)...)
}

// applyRunCreate allocates the next run id and creates the run with one
// waiting task execution per task of the live version.
func applyRunCreate(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[RunCreate](body)
	p, err := mustPipeline(a, cmd.NamespaceID, cmd.PipelineID)
	if err != nil {
		return nil, err
	}
	if cmd.IdempotencyKey != "" {
		if id, hash := store.GetRunIDByKey(a.tx, p.NamespaceID, p.PipelineID, cmd.IdempotencyKey); id != 0 {
			if hash != "" && cmd.RequestHash != "" && hash != cmd.RequestHash {
				return nil, fmt.Errorf("%w: run %d was started with this key by a different request", ErrIdempotencyMismatch, id)
			}
			existing, err := store.GetRun(a.tx, p.NamespaceID, p.PipelineID, id)
			if err != nil {
				return nil, err
			}
			if existing != nil {
				return &RunCreated{Run: existing, Existing: true}, nil
			}
			// Run retention deleted the run and kept its key (ids are
			// never reused, so a key naming a missing run means that):
			// starting another would run the request twice.
			return nil, fmt.Errorf("%w: run %d started with this idempotency key was deleted by run retention", ErrConflict, id)
		}
	}
	var trigger *triggerCheck
	if cmd.Extension != "" {
		// Scoped by extension, not by token: a retry after the token
		// rotated still finds the first run.
		if trigger, err = checkTrigger(a, cmd); err != nil {
			return nil, err
		}
		if trigger != nil && trigger.existing != 0 {
			existing, err := store.GetRun(a.tx, p.NamespaceID, p.PipelineID, trigger.existing)
			if err != nil {
				return nil, err
			}
			if existing != nil {
				return &RunCreated{Run: existing, Existing: true}, nil
			}
			// The run was deleted with its history; the key still
			// stands for it: a tick never fires twice.
			return nil, fmt.Errorf("%w: trigger key %q already started run %d, which no longer exists", ErrConflict, cmd.TriggerKey, trigger.existing)
		}
	}
	sys, err := store.GetSystem(a.tx)
	if err != nil {
		return nil, err
	}
	if sys.IgnorePipelineRunEvents {
		return nil, fmt.Errorf("%w: new runs are paused cluster-wide (event ingress is off); resume with 'gofer system resume-runs'", ErrConflict)
	}
	if p.State != model.PipelineStateActive {
		return nil, fmt.Errorf("%w: pipeline %q is disabled; enable it with 'gofer pipeline enable %s'", ErrConflict, p.PipelineID, p.PipelineID)
	}
	if p.LiveVersion == 0 {
		return nil, fmt.Errorf("%w: pipeline %q has no live version; deploy one with 'gofer pipeline config deploy %s %d'", ErrConflict, p.PipelineID, p.PipelineID, p.LatestVersion)
	}
	cfg, err := mustConfig(a, p.NamespaceID, p.PipelineID, p.LiveVersion)
	if err != nil {
		return nil, err
	}
	// The run id is allocated here, so the canary split is decided here.
	split := &model.Run{RunID: p.LastRunID + 1}
	if cfg, err = assignCanary(a, p, split, cfg, cmd.RetryOf); err != nil {
		return nil, err
	}

	needsToken := cmd.Token != nil && slices.ContainsFunc(cfg.Tasks, func(t *sdk.TaskConfig) bool { return t.InjectAPIToken })
	if needsToken {
		if err := checkRunTokenKey(a, cmd.Token); err != nil {
			return nil, err
		}
	}
	seq, err := store.NextRunSeq(a.tx)
	if err != nil {
		return nil, err
	}
	p.LastRunID++
	run := &model.Run{
		NamespaceID:    p.NamespaceID,
		PipelineID:     p.PipelineID,
		RunID:          p.LastRunID,
		ConfigVersion:  cfg.Version,
		State:          model.RunStatePending,
		Status:         model.RunStatusUnknown,
		Created:        a.meta.Timestamp,
		Variables:      cmd.Variables,
		Initiator:      cmd.Initiator,
		IdempotencyKey: cmd.IdempotencyKey,
		Parallelism:    cfg.Parallelism,
		TimeoutMillis:  (&sdk.PipelineConfig{Timeout: cfg.Timeout}).TimeoutDuration().Milliseconds(),
		RetryOf:        cmd.RetryOf,
		Seq:            seq,
		UID:            a.index,
		DeploymentID:   split.DeploymentID,
		Canary:         split.Canary,
	}
	if run.Variables == nil {
		run.Variables = map[string]string{}
	}
	if needsToken {
		if err := createRunToken(a, run, *cmd.Token); err != nil {
			return nil, err
		}
	}
	if err := store.PutPipeline(a.tx, p); err != nil {
		return nil, err
	}
	if err := store.PutRun(a.tx, run); err != nil {
		return nil, err
	}
	if err := store.AddActiveRun(a.tx, run); err != nil {
		return nil, err
	}
	if cmd.IdempotencyKey != "" {
		if err := store.PutRunKey(a.tx, p.NamespaceID, p.PipelineID, cmd.IdempotencyKey, run.RunID, cmd.RequestHash); err != nil {
			return nil, err
		}
	}
	if trigger != nil {
		if err := recordTrigger(a, cmd, trigger, run.RunID); err != nil {
			return nil, err
		}
	}
	if a.slimTasks {
		// Each task execution names this version; deleting it must keep
		// it while one of them remains.
		if err := store.ReferConfig(a.tx, run.NamespaceID, run.PipelineID, cfg.Version, uint64(len(cfg.Tasks))); err != nil {
			return nil, err
		}
	}
	for _, t := range cfg.Tasks {
		te := &model.TaskExecution{
			NamespaceID: run.NamespaceID,
			PipelineID:  run.PipelineID,
			RunID:       run.RunID,
			RunUID:      run.UID,
			TaskID:      t.ID,
			Task:        t,
			State:       model.TaskStateWaiting,
			Status:      model.TaskStatusUnknown,
			Variables:   maps.Clone(t.Variables),
		}
		if a.slimTasks {
			te.ConfigVersion = cfg.Version // PutTask stores it instead of Task
		}
		if err := store.PutTask(a.tx, te); err != nil {
			return nil, err
		}
	}
	return &RunCreated{Run: run}, a.emitIn(run.NamespaceID, run.PipelineID, model.EventQueuedRun, queuedDetails(run))
}

func mustRun(a *applyCtx, ref RunRef) (*model.Run, error) {
	r, err := store.GetRun(a.tx, ref.NamespaceID, ref.PipelineID, ref.RunID)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: pipeline %q has no run %d", ErrNotFound, ref.PipelineID, ref.RunID)
	}
	return r, nil
}

func applyRunStart(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[RunStart](body)
	r, err := mustRun(a, cmd.RunRef)
	if err != nil {
		return nil, err
	}
	if r.State != model.RunStatePending {
		return nil, fmt.Errorf("%w: run %d is %s, not pending", ErrConflict, r.RunID, r.State)
	}
	if r.Cancel != nil {
		return nil, fmt.Errorf("%w: run %d is being cancelled", ErrConflict, r.RunID)
	}
	r.State, r.Started = model.RunStateRunning, a.meta.Timestamp
	if err := store.PutRun(a.tx, r); err != nil {
		return nil, err
	}
	return r, a.emitIn(r.NamespaceID, r.PipelineID, model.EventStartedRun, runDetails(r))
}

// applyRunFinish ends a run once every task is complete.
func applyRunFinish(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[RunFinish](body)
	r, err := mustRun(a, cmd.RunRef)
	if err != nil {
		return nil, err
	}
	if r.State == model.RunStateComplete {
		return nil, fmt.Errorf("%w: run %d is already complete", ErrConflict, r.RunID)
	}
	tasks, err := store.ListTaskRecords(a.tx, r.NamespaceID, r.PipelineID, r.RunID)
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		if !t.Terminal() {
			return nil, fmt.Errorf("%w: run %d still has task %q %s", ErrConflict, r.RunID, t.TaskID, t.State)
		}
	}
	switch cmd.Status {
	case model.RunStatusSuccessful, model.RunStatusFailed, model.RunStatusCancelled:
	default:
		return nil, fmt.Errorf("%w: run status %q", ErrInvalid, cmd.Status)
	}
	reason := cmd.Reason
	r.State, r.Status, r.StatusReason, r.Ended = model.RunStateComplete, cmd.Status, &reason, a.meta.Timestamp
	if err := store.PutRun(a.tx, r); err != nil {
		return nil, err
	}
	if err := store.RemoveActiveRun(a.tx, r); err != nil {
		return nil, err
	}
	if err := revokeRunToken(a, r); err != nil {
		return nil, err
	}
	if err := a.emitIn(r.NamespaceID, r.PipelineID, model.EventCompletedRun, runDetails(r, "status", string(r.Status), "reason", reason.Reason)); err != nil {
		return nil, err
	}
	// After completed_run, so its counted_canary_run follows it.
	return r, countCanaryRun(a, r)
}

// applyRunCancel marks a run and its unfinished tasks for cancellation;
// the executor stops what runs and resolves the rest.
func applyRunCancel(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[RunCancel](body)
	r, err := mustRun(a, cmd.RunRef)
	if err != nil {
		return nil, err
	}
	if r.State == model.RunStateComplete {
		return nil, fmt.Errorf("%w: run %d is already complete (%s)", ErrConflict, r.RunID, r.Status)
	}
	if r.Cancel != nil {
		return r, nil
	}
	tasks, err := store.ListTaskRecords(a.tx, r.NamespaceID, r.PipelineID, r.RunID)
	if err != nil {
		return nil, err
	}
	c := cmd.Cancel
	c.Requested = a.meta.Timestamp
	r.Cancel = &c
	if err := store.PutRun(a.tx, r); err != nil {
		return nil, err
	}
	for _, t := range tasks {
		if t.Terminal() || t.Cancel != nil {
			continue
		}
		tc := c
		t.Cancel = &tc
		if err := store.PutTask(a.tx, t); err != nil {
			return nil, err
		}
	}
	return r, a.emitIn(r.NamespaceID, r.PipelineID, model.EventCancellingRun, runDetails(r, "reason", c.Reason, "by", c.By))
}

// checkRunTokenKey applies the secrets' rule (checkSealingKey) to a run
// token: it must be sealed under the cluster's key (or, while a rotation
// runs, its source or target). A leader that lacks the cluster's key would
// otherwise seal tokens no other leader can open, and they would count as
// values left to re-seal with no rotation running. Tokens from before
// records named their key carry no check and are taken as they are.
func checkRunTokenKey(a *applyCtx, tok *model.StoredToken) error {
	if len(tok.Sealed) == 0 || tok.KeyCheck == "" {
		return nil
	}
	recorded := store.SecretKeyCheck(a.tx)
	if err := checkSealingKey(a, recorded, tok.KeyCheck); err != nil {
		return fmt.Errorf("%w: the leader does not hold the encryption key this cluster's sealed values are under (key check %s), "+
			"so it cannot seal the run's API token (inject_api_token); configure that key as secret_store.encryption_key "+
			"(or in secret_store.previous_encryption_keys while rotating) on every node", ErrConflict, orNone(recorded))
	}
	return nil
}

// createRunToken stores the run's own API token, scoped to its pipeline.
func createRunToken(a *applyCtx, run *model.Run, tok model.StoredToken) error {
	tok.User = fmt.Sprintf("run:%s/%s/%d", run.NamespaceID, run.PipelineID, run.RunID)
	tok.Roles = nil
	tok.Permissions = model.RunTokenPermissions(run.NamespaceID, run.PipelineID)
	tok.Metadata = map[string]string{"namespace_id": run.NamespaceID, "pipeline_id": run.PipelineID,
		"run_id": strconv.FormatInt(run.RunID, 10), "system_generated_run_token": "true"}
	tok.Created = a.meta.Timestamp
	if err := store.PutToken(a.tx, &tok); err != nil {
		return err
	}
	run.TokenID = tok.ID
	a.tokensChanged = true
	return nil
}

// revokeRunToken deletes a finished run's API token.
func revokeRunToken(a *applyCtx, r *model.Run) error {
	if r.TokenID == "" {
		return nil
	}
	tok, err := store.GetToken(a.tx, r.TokenID)
	if err != nil || tok == nil {
		return err
	}
	a.tokensChanged = true
	return store.DeleteToken(a.tx, tok)
}

// revokeRunTokensOf deletes the tokens of the unfinished runs of a
// pipeline (or of every pipeline of the namespace when pipeline is "")
// that is being deleted: a pipeline created later under the same id must
// not be open to them. Finished runs' tokens are already gone.
func revokeRunTokensOf(a *applyCtx, ns, pipeline string) error {
	active, err := store.ActiveRuns(a.tx)
	if err != nil {
		return err
	}
	for _, r := range active {
		if r.NamespaceID == ns && (pipeline == "" || r.PipelineID == pipeline) {
			if err := revokeRunToken(a, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// queuedDetails are a queued run's event details; a run a canary split
// also names its deployment and arm, so the event explains the version.
func queuedDetails(r *model.Run) model.EventDetails {
	if r.DeploymentID == 0 {
		return runDetails(r, "config_version", r.ConfigVersion)
	}
	return runDetails(r, "config_version", r.ConfigVersion, "deployment_id", r.DeploymentID, "canary", r.Canary)
}
