package fsm

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/goferhq/gofer/agent/canary"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// Canary deployments (docs/pipelines.md, "Canary deployments";
// agent/canary/DESIGN.md, "Contract with the wiring"): the start is a
// ConfigDeploy with strategy "canary", the split happens in
// applyRunCreate, the evidence in applyRunFinish, and the one decision
// is CmdDeploymentDecide.

// ErrAlreadyDecided refuses a second decision of a canary deployment. It
// is a conflict (409 at the API); the leader's watcher takes it as done.
var ErrAlreadyDecided = fmt.Errorf("%w: canary deployment already decided", ErrConflict)

// CanaryPolicy turns the stored policy into the decision logic's,
// validating it: every error names the field, wrapped in ErrInvalid.
func CanaryPolicy(p *model.CanaryPolicy) (canary.Policy, error) {
	if p == nil {
		return canary.Policy{}, fmt.Errorf("%w: canary: a canary deployment needs its policy", ErrInvalid)
	}
	out := canary.Policy{Percent: p.Percent, Runs: p.Runs, MaxFailureIncrease: p.MaxFailureIncrease}
	var errs []error
	d, err := time.ParseDuration(p.Duration)
	if err != nil {
		errs = append(errs, fmt.Errorf("canary_duration: must be a duration such as \"10m\", got %q", p.Duration))
	}
	out.Duration = d
	if p.MaxP95Duration != "" {
		if out.MaxP95, err = time.ParseDuration(p.MaxP95Duration); err != nil {
			errs = append(errs, fmt.Errorf("max_p95_duration: must be a duration such as \"30s\" (or omitted), got %q", p.MaxP95Duration))
		}
	}
	if len(errs) == 0 {
		if err := out.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return canary.Policy{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return out, nil
}

// startCanary records a canary deployment of cmd.Version. The live
// version does not change: new runs are split from now on.
func startCanary(a *applyCtx, cmd *ConfigDeploy, p *model.Pipeline, target *model.PipelineConfig) (any, error) {
	policy, err := CanaryPolicy(cmd.Canary)
	if err != nil {
		return nil, err
	}
	if p.ActiveCanary != 0 {
		return nil, fmt.Errorf("%w: pipeline %q already has canary deployment %d running; promote, roll it back or abort it first",
			ErrConflict, p.PipelineID, p.ActiveCanary)
	}
	if p.LiveVersion == 0 {
		return nil, fmt.Errorf("%w: pipeline %q has no live version to compare a canary with; deploy one with strategy immediate first", ErrConflict, p.PipelineID)
	}
	ts := a.meta.Timestamp
	d := &model.Deployment{
		NamespaceID:  p.NamespaceID,
		PipelineID:   p.PipelineID,
		DeploymentID: p.LastDeployment + 1,
		StartVersion: p.LiveVersion,
		EndVersion:   target.Version,
		Started:      ts,
		State:        model.DeploymentStateRunning,
		Status:       model.DeploymentStatusUnknown,
		Actor:        a.meta.Actor,
		Strategy:     model.DeploymentStrategyCanary,
		Canary: &model.DeploymentCanary{
			Policy:        *cmd.Canary,
			StableVersion: p.LiveVersion,
			CanaryVersion: target.Version,
			Started:       ts,
		},
	}
	p.LastDeployment, p.ActiveCanary, p.Modified = d.DeploymentID, d.DeploymentID, ts
	if err := store.PutPipeline(a.tx, p); err != nil {
		return nil, err
	}
	if err := store.PutDeployment(a.tx, d); err != nil {
		return nil, err
	}
	details := pipelineDetails(p.NamespaceID, p.PipelineID,
		"deployment_id", d.DeploymentID, "start_version", d.StartVersion, "end_version", d.EndVersion,
		"strategy", model.DeploymentStrategyCanary, "canary_percent", policy.Percent, "canary_runs", policy.Runs,
		"canary_duration", policy.Duration.String())
	if a.releaseSteps {
		// The whole policy, so the event alone says what will decide.
		details["stable_version"], details["canary_version"] = d.Canary.StableVersion, d.Canary.CanaryVersion
		// A decimal string: event details hold no floats (model.EventDetails).
		details["max_failure_increase"] = strconv.FormatFloat(policy.MaxFailureIncrease, 'f', -1, 64)
		if policy.MaxP95 > 0 {
			details["max_p95_duration"] = policy.MaxP95.String()
		}
	}
	return d, a.emitIn(p.NamespaceID, p.PipelineID, model.EventStartedDeployment, details)
}

// assignCanary points a new run at the canary version when the
// pipeline's active canary takes it (canary.Assign: a pure function of
// the deployment and run ids, so every replica agrees). A retry of a run
// of the same canary deployment keeps that run's arm and version instead
// (retryOf names it; read from committed state, so still deterministic).
// It returns the config the run uses.
func assignCanary(a *applyCtx, p *model.Pipeline, run *model.Run, live *model.PipelineConfig, retryOf int64) (*model.PipelineConfig, error) {
	if p.ActiveCanary == 0 || a.legacyFormat {
		return live, nil
	}
	d, err := store.GetDeployment(a.tx, p.NamespaceID, p.PipelineID, p.ActiveCanary)
	if err != nil || d == nil || d.Canary == nil || d.Canary.Decision != nil {
		return live, err
	}
	if retryOf != 0 {
		original, err := store.GetRun(a.tx, p.NamespaceID, p.PipelineID, retryOf)
		if err != nil {
			return nil, err
		}
		// A retry repeats its run: a fresh split would send the retry
		// of a failed canary run to the stable version (or the other
		// way round) and mix the arms' evidence.
		if original != nil && original.DeploymentID == d.DeploymentID {
			cfg, err := mustConfig(a, p.NamespaceID, p.PipelineID, original.ConfigVersion)
			if err != nil {
				return nil, err
			}
			run.DeploymentID, run.Canary = d.DeploymentID, original.Canary
			return cfg, nil
		}
	}
	// The stored Percent directly: the policy was validated when the
	// canary started, and validating it again here would let a later,
	// stricter Validate change what replaying this entry does (and
	// refuse this run id for good).
	run.DeploymentID = d.DeploymentID
	if !canary.Assign(canary.Policy{Percent: d.Canary.Policy.Percent}, d.DeploymentID, run.RunID) {
		return live, nil
	}
	cfg, err := mustConfig(a, p.NamespaceID, p.PipelineID, d.Canary.CanaryVersion)
	if err != nil {
		return nil, err
	}
	run.Canary = true
	return cfg, nil
}

// countCanaryRun adds a finished run to its deployment's evidence: only
// runs the still-undecided deployment split, only successful or failed.
// The record keeps the counts; a canary run's duration goes under its own
// key (store.PutCanaryDuration), so a run finish writes a small record and
// one 8-byte value however many runs were counted. Entries older than
// envelope version 4 append the duration to the record instead, as the
// binaries that wrote them did.
func countCanaryRun(a *applyCtx, r *model.Run) error {
	if r.DeploymentID == 0 || r.Status == model.RunStatusCancelled {
		return nil
	}
	d, err := store.GetDeployment(a.tx, r.NamespaceID, r.PipelineID, r.DeploymentID)
	if err != nil || d == nil || d.Canary == nil || d.Canary.Decision != nil {
		return err
	}
	dc := d.Canary
	arm, armName := &dc.Stable, "stable"
	if r.Canary {
		arm, armName = &dc.Canary, "canary"
	}
	start := r.Started
	if start == 0 {
		start = r.Created
	}
	ms := max(r.Ended-start, 0)
	// Durations of the first MaxRuns canary runs are kept: every counted
	// canary run before them kept one, so the count says how many there
	// are, wherever they are.
	if r.Canary {
		switch {
		case !a.releaseSteps && len(arm.DurationsMillis) < canary.MaxRuns:
			arm.DurationsMillis = append(arm.DurationsMillis, ms)
		case a.releaseSteps && arm.Completed < canary.MaxRuns:
			if err := store.PutCanaryDuration(a.tx, d.NamespaceID, d.PipelineID, d.DeploymentID, r.RunID, ms); err != nil {
				return err
			}
		}
	}
	arm.Completed++
	if r.Status == model.RunStatusFailed {
		arm.Failed++
	}
	if err := store.PutDeployment(a.tx, d); err != nil {
		return err
	}
	if !a.releaseSteps {
		return nil
	}
	return a.emitIn(d.NamespaceID, d.PipelineID, model.EventCountedCanaryRun, pipelineDetails(d.NamespaceID, d.PipelineID,
		"deployment_id", d.DeploymentID, "run_id", r.RunID, "arm", armName, "version", r.ConfigVersion,
		"status", string(r.Status), "duration_ms", ms, "canary_runs", dc.Policy.Runs,
		"stable_completed", dc.Stable.Completed, "stable_failed", dc.Stable.Failed,
		"canary_completed", dc.Canary.Completed, "canary_failed", dc.Canary.Failed))
}

// canaryDurations is every duration counted for the canary arm of d:
// those in the record (older entries) and those under per-run keys.
func canaryDurations(a *applyCtx, d *model.Deployment) []time.Duration {
	keyed := store.CanaryDurations(a.tx, d.NamespaceID, d.PipelineID, d.DeploymentID)
	out := make([]time.Duration, 0, len(d.Canary.Canary.DurationsMillis)+len(keyed))
	for _, ms := range append(slices.Clone(d.Canary.Canary.DurationsMillis), keyed...) {
		out = append(out, time.Duration(ms)*time.Millisecond)
	}
	return out
}

// applyDeploymentDecide records a canary's one decision and acts on it.
func applyDeploymentDecide(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[DeploymentDecide](body)
	switch cmd.Outcome {
	case model.CanaryPromote, model.CanaryRollback, model.CanaryAbort:
	default:
		return nil, fmt.Errorf("%w: outcome: must be %q, %q or %q, got %q", ErrInvalid,
			model.CanaryPromote, model.CanaryRollback, model.CanaryAbort, cmd.Outcome)
	}
	p, err := mustPipeline(a, cmd.NamespaceID, cmd.PipelineID)
	if err != nil {
		return nil, err
	}
	d, err := store.GetDeployment(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.DeploymentID)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("%w: pipeline %q has no deployment %d", ErrNotFound, cmd.PipelineID, cmd.DeploymentID)
	}
	if d.Canary == nil {
		return nil, fmt.Errorf("%w: deployment %d is not a canary deployment", ErrConflict, d.DeploymentID)
	}
	if dec := d.Canary.Decision; dec != nil {
		return nil, fmt.Errorf("%w: deployment %d was decided %s by %s", ErrAlreadyDecided, d.DeploymentID, dec.Outcome, dec.Actor)
	}
	at := cmp.Or(cmd.At, a.meta.Timestamp)
	actor := cmp.Or(cmd.Actor, a.meta.Actor)
	d.Canary.Decision = &model.CanaryDecision{Outcome: cmd.Outcome, Reason: cmd.Reason, At: at, Actor: actor}
	d.State, d.Ended = model.DeploymentStateComplete, at
	d.Status = model.DeploymentStatusFailed
	if cmd.Outcome == model.CanaryPromote {
		d.Status = model.DeploymentStatusSuccess
		if err := makeLive(a, p, d.Canary.CanaryVersion); err != nil {
			return nil, err
		}
	}
	if p.ActiveCanary == d.DeploymentID {
		p.ActiveCanary = 0
	}
	p.Modified = a.meta.Timestamp
	if err := store.PutPipeline(a.tx, p); err != nil {
		return nil, err
	}
	if err := store.PutDeployment(a.tx, d); err != nil {
		return nil, err
	}
	details := pipelineDetails(p.NamespaceID, p.PipelineID,
		"deployment_id", d.DeploymentID, "start_version", d.StartVersion, "end_version", d.EndVersion,
		"strategy", model.DeploymentStrategyCanary, "outcome", cmd.Outcome, "reason", cmd.Reason, "decided_by", actor,
		"live_version", p.LiveVersion)
	if !a.releaseSteps {
		return d, a.emitIn(p.NamespaceID, p.PipelineID, model.EventCompletedDeployment, details)
	}
	// The numbers the decision was taken on: the counts when it
	// committed, and the canary's p95 over its kept durations.
	dc := d.Canary
	details["stable_version"], details["canary_version"] = dc.StableVersion, dc.CanaryVersion
	details["stable_completed"], details["stable_failed"] = dc.Stable.Completed, dc.Stable.Failed
	details["canary_completed"], details["canary_failed"] = dc.Canary.Completed, dc.Canary.Failed
	if ds := canaryDurations(a, d); len(ds) > 0 {
		details["canary_p95_ms"] = canary.P95(ds).Milliseconds()
	}
	if cmd.Outcome == model.CanaryPromote {
		if err := emitLiveSwitch(a, p, d, dc.StableVersion); err != nil {
			return nil, err
		}
	}
	return d, a.emitIn(p.NamespaceID, p.PipelineID, model.EventCompletedDeployment, details)
}

// emitLiveSwitch records that deployment d changed p's live version from
// from to p.LiveVersion (envelope version 4 on).
func emitLiveSwitch(a *applyCtx, p *model.Pipeline, d *model.Deployment, from int64) error {
	strategy := cmp.Or(d.Strategy, model.DeploymentStrategyImmediate)
	return a.emitIn(p.NamespaceID, p.PipelineID, model.EventSwitchedLiveVersion, pipelineDetails(p.NamespaceID, p.PipelineID,
		"deployment_id", d.DeploymentID, "strategy", strategy, "from_version", from, "to_version", p.LiveVersion))
}

// makeLive deprecates the live version and makes version live (p is
// updated, not stored).
func makeLive(a *applyCtx, p *model.Pipeline, version int64) error {
	target, err := mustConfig(a, p.NamespaceID, p.PipelineID, version)
	if err != nil {
		return err
	}
	if p.LiveVersion != 0 && p.LiveVersion != version {
		previous, err := store.GetConfig(a.tx, p.NamespaceID, p.PipelineID, p.LiveVersion)
		if err != nil {
			return err
		}
		if previous != nil {
			previous.State, previous.Deprecated = model.ConfigStateDeprecated, a.meta.Timestamp
			if err := store.PutConfig(a.tx, previous); err != nil {
				return err
			}
		}
	}
	target.State, target.Deprecated = model.ConfigStateLive, 0
	if err := store.PutConfig(a.tx, target); err != nil {
		return err
	}
	p.LiveVersion = version
	return nil
}
