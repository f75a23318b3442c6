package fsm

import (
	"fmt"
	"maps"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// pipelineDetails are an event's details naming its pipeline, plus kv:
// pairs of a key and its value (string, int, int64 or bool).
func pipelineDetails(ns, p string, kv ...any) model.EventDetails {
	d := model.EventDetails{"namespace_id": ns, "pipeline_id": p}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

func applyConfigRegister(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ConfigRegister](body)
	ns, id := cmd.NamespaceID, cmd.Config.ID
	if _, err := mustNamespace(a, ns); err != nil {
		return nil, err
	}
	p, err := store.GetPipeline(a.tx, ns, id)
	if err != nil {
		return nil, err
	}
	created := p == nil
	if created {
		p = &model.Pipeline{NamespaceID: ns, PipelineID: id, State: model.PipelineStateActive, Created: a.meta.Timestamp}
	}
	p.LatestVersion++
	p.Modified = a.meta.Timestamp
	cfg := &model.PipelineConfig{
		NamespaceID:  ns,
		PipelineID:   id,
		Version:      p.LatestVersion,
		Name:         cmd.Config.Name,
		Description:  cmd.Config.Description,
		Parallelism:  cmd.Config.Parallelism,
		Timeout:      cmd.Config.Timeout,
		RunRetention: cmd.Config.RunRetention,
		Tasks:        cmd.Config.Tasks,
		State:        model.ConfigStateUnreleased,
		Registered:   a.meta.Timestamp,
		Hash:         cmd.Hash,
	}
	if err := store.PutPipeline(a.tx, p); err != nil {
		return nil, err
	}
	if err := store.PutConfig(a.tx, cfg); err != nil {
		return nil, err
	}
	if created {
		if err := a.emitIn(ns, id, model.EventCreatedPipeline, pipelineDetails(ns, id)); err != nil {
			return nil, err
		}
	}
	if err := a.emitIn(ns, id, model.EventRegisteredConfig, pipelineDetails(ns, id, "version", cfg.Version)); err != nil {
		return nil, err
	}
	return cfg, pruneVersions(a, p, cmd.Retention)
}

// protectedVersion reports whether version v of p must survive pruning
// and deletion: the live version, and both arms of the active canary
// deployment (run creation reads the canary's config, and a promote
// makes it live; losing it would fail every run and the decision).
func protectedVersion(a *applyCtx, p *model.Pipeline, v int64) (bool, error) {
	if v == p.LiveVersion {
		return true, nil
	}
	if p.ActiveCanary == 0 {
		return false, nil
	}
	d, err := store.GetDeployment(a.tx, p.NamespaceID, p.PipelineID, p.ActiveCanary)
	if err != nil || d == nil || d.Canary == nil || d.Canary.Decision != nil {
		return false, err
	}
	return v == d.Canary.CanaryVersion || v == d.Canary.StableVersion, nil
}

// pruneVersions deletes the oldest versions beyond retention, never a
// protected one (protectedVersion). While a canary runs it also never
// deletes the version just registered (live and canary may take the whole
// retention, and more versions then stay). Without a canary it prunes as
// it always did, so replaying an older entry stores the same versions on
// every binary (fsm/DESIGN.md, "Upgrades"): retention 1 with an older live
// version still deletes the version just registered.
func pruneVersions(a *applyCtx, p *model.Pipeline, retention int) error {
	if retention <= 0 {
		return nil
	}
	versions := store.ConfigVersions(a.tx, p.NamespaceID, p.PipelineID)
	excess := len(versions) - retention
	for _, v := range versions {
		if excess <= 0 || (v == p.LatestVersion && p.ActiveCanary != 0) {
			break
		}
		protected, err := protectedVersion(a, p, v)
		if err != nil {
			return err
		}
		if protected {
			continue
		}
		if err := store.DeleteConfig(a.tx, p.NamespaceID, p.PipelineID, v); err != nil {
			return err
		}
		excess--
		if err := a.emitIn(p.NamespaceID, p.PipelineID, model.EventPrunedConfig, pipelineDetails(p.NamespaceID, p.PipelineID, "version", v)); err != nil {
			return err
		}
	}
	return nil
}

func mustPipeline(a *applyCtx, ns, id string) (*model.Pipeline, error) {
	if _, err := mustNamespace(a, ns); err != nil {
		return nil, err
	}
	p, err := store.GetPipeline(a.tx, ns, id)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%w: pipeline %q does not exist in namespace %q", ErrNotFound, id, ns)
	}
	return p, nil
}

func mustConfig(a *applyCtx, ns, id string, version int64) (*model.PipelineConfig, error) {
	c, err := store.GetConfig(a.tx, ns, id, version)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("%w: pipeline %q has no config version %d", ErrNotFound, id, version)
	}
	return c, nil
}

// applyConfigDeploy makes a version live in one step: the previous live
// version is deprecated and a completed deployment is recorded.
func applyConfigDeploy(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ConfigDeploy](body)
	p, err := mustPipeline(a, cmd.NamespaceID, cmd.PipelineID)
	if err != nil {
		return nil, err
	}
	target, err := mustConfig(a, cmd.NamespaceID, cmd.PipelineID, cmd.Version)
	if err != nil {
		return nil, err
	}
	if target.State == model.ConfigStateLive {
		return nil, fmt.Errorf("%w: version %d of pipeline %q is already live", ErrConflict, cmd.Version, cmd.PipelineID)
	}
	switch cmd.Strategy {
	case "", model.DeploymentStrategyImmediate:
	case model.DeploymentStrategyCanary:
		return startCanary(a, cmd, p, target)
	default:
		return nil, fmt.Errorf("%w: strategy: must be %q or %q, got %q", ErrInvalid, model.DeploymentStrategyImmediate, model.DeploymentStrategyCanary, cmd.Strategy)
	}
	if p.ActiveCanary != 0 {
		return nil, fmt.Errorf("%w: pipeline %q has canary deployment %d running; promote, roll it back or abort it first", ErrConflict, p.PipelineID, p.ActiveCanary)
	}
	var previous *model.PipelineConfig
	if p.LiveVersion != 0 {
		if previous, err = store.GetConfig(a.tx, p.NamespaceID, p.PipelineID, p.LiveVersion); err != nil {
			return nil, err
		}
	}

	ts := a.meta.Timestamp
	d := &model.Deployment{
		NamespaceID:  p.NamespaceID,
		PipelineID:   p.PipelineID,
		DeploymentID: p.LastDeployment + 1,
		StartVersion: p.LiveVersion,
		EndVersion:   cmd.Version,
		Started:      ts,
		Ended:        ts,
		State:        model.DeploymentStateComplete,
		Status:       model.DeploymentStatusSuccess,
		Actor:        a.meta.Actor,
	}
	if a.legacyFormat {
		d.State, d.Status = model.DeploymentStateCompleteLegacy, model.DeploymentStatusSuccessLegacy
	}
	if previous != nil {
		previous.State = model.ConfigStateDeprecated
		previous.Deprecated = ts
		if err := store.PutConfig(a.tx, previous); err != nil {
			return nil, err
		}
	}
	target.State = model.ConfigStateLive
	target.Deprecated = 0
	if err := store.PutConfig(a.tx, target); err != nil {
		return nil, err
	}
	p.LiveVersion, p.LastDeployment, p.Modified = cmd.Version, d.DeploymentID, ts
	if err := store.PutPipeline(a.tx, p); err != nil {
		return nil, err
	}
	if err := store.PutDeployment(a.tx, d); err != nil {
		return nil, err
	}
	details := pipelineDetails(p.NamespaceID, p.PipelineID,
		"deployment_id", d.DeploymentID, "start_version", d.StartVersion, "end_version", d.EndVersion)
	if a.releaseSteps {
		details["strategy"] = model.DeploymentStrategyImmediate
	}
	if err := a.emitIn(p.NamespaceID, p.PipelineID, model.EventStartedDeployment, details); err != nil {
		return nil, err
	}
	if a.releaseSteps {
		if err := emitLiveSwitch(a, p, d, d.StartVersion); err != nil {
			return nil, err
		}
		details = maps.Clone(details)
		details["live_version"] = p.LiveVersion
	}
	return d, a.emitIn(p.NamespaceID, p.PipelineID, model.EventCompletedDeployment, details)
}

func applyConfigDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ConfigDelete](body)
	p, err := mustPipeline(a, cmd.NamespaceID, cmd.PipelineID)
	if err != nil {
		return nil, err
	}
	if cmd.Version != p.LiveVersion {
		protected, err := protectedVersion(a, p, cmd.Version)
		if err != nil {
			return nil, err
		}
		if protected {
			return nil, fmt.Errorf("%w: version %d of pipeline %q is an arm of canary deployment %d; decide it first", ErrConflict, cmd.Version, cmd.PipelineID, p.ActiveCanary)
		}
	}
	c, err := mustConfig(a, cmd.NamespaceID, cmd.PipelineID, cmd.Version)
	if err != nil {
		return nil, err
	}
	if c.State == model.ConfigStateLive {
		return nil, fmt.Errorf("%w: version %d of pipeline %q is live; deploy another version first", ErrConflict, cmd.Version, cmd.PipelineID)
	}
	if err := store.DeleteConfig(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.Version); err != nil {
		return nil, err
	}
	return nil, a.emitIn(cmd.NamespaceID, cmd.PipelineID, model.EventDeletedConfig, pipelineDetails(cmd.NamespaceID, cmd.PipelineID, "version", cmd.Version))
}

func applyPipelineSetState(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[PipelineSetState](body)
	if cmd.State != model.PipelineStateActive && cmd.State != model.PipelineStateDisabled {
		return nil, fmt.Errorf("%w: pipeline state must be %q or %q", ErrInvalid, model.PipelineStateActive, model.PipelineStateDisabled)
	}
	p, err := mustPipeline(a, cmd.NamespaceID, cmd.PipelineID)
	if err != nil {
		return nil, err
	}
	if p.State == cmd.State {
		return p, nil
	}
	p.State, p.Modified = cmd.State, a.meta.Timestamp
	if err := store.PutPipeline(a.tx, p); err != nil {
		return nil, err
	}
	kind := model.EventEnabledPipeline
	if cmd.State == model.PipelineStateDisabled {
		kind = model.EventDisabledPipeline
	}
	return p, a.emitIn(p.NamespaceID, p.PipelineID, kind, pipelineDetails(p.NamespaceID, p.PipelineID))
}

func applyPipelineDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[PipelineDelete](body)
	if _, err := mustPipeline(a, cmd.NamespaceID, cmd.PipelineID); err != nil {
		return nil, err
	}
	if err := revokeRunTokensOf(a, cmd.NamespaceID, cmd.PipelineID); err != nil {
		return nil, err
	}
	if err := store.DeletePipeline(a.tx, cmd.NamespaceID, cmd.PipelineID); err != nil {
		return nil, err
	}
	return nil, a.emitIn(cmd.NamespaceID, cmd.PipelineID, model.EventDeletedPipeline, pipelineDetails(cmd.NamespaceID, cmd.PipelineID))
}
