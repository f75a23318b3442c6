package fsm

import (
	"fmt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// applyClusterInit seeds a new cluster once; later inits (a second leader
// racing the first) change nothing and return the existing id.
func applyClusterInit(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ClusterInit](body)
	if existing := store.ClusterID(a.tx); existing != "" {
		return existing, nil
	}
	if err := store.SetClusterID(a.tx, cmd.ClusterID); err != nil {
		return nil, err
	}
	for _, r := range cmd.Roles {
		if err := store.PutRole(a.tx, r); err != nil {
			return nil, err
		}
	}
	if err := store.PutNamespace(a.tx, &cmd.Namespace); err != nil {
		return nil, err
	}
	if err := store.PutSystem(a.tx, &model.System{}); err != nil {
		return nil, err
	}
	if err := a.emit(model.EventInitializedCluster, model.EventDetails{"cluster_id": cmd.ClusterID}); err != nil {
		return nil, err
	}
	return cmd.ClusterID, nil
}

func applyServerUpsert(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ServerUpsert](body)
	existing, err := store.GetServer(a.tx, cmd.Server.ID)
	if err != nil {
		return nil, err
	}
	s := cmd.Server
	if existing != nil {
		if existing.RaftAddr == s.RaftAddr && existing.APIAddr == s.APIAddr && existing.Version == s.Version {
			return existing, nil
		}
		s.Joined = existing.Joined
	}
	if err := store.PutServer(a.tx, &s); err != nil {
		return nil, err
	}
	if existing == nil {
		if err := a.emit(model.EventJoinedServer, model.EventDetails{"server_id": s.ID, "raft_addr": s.RaftAddr, "api_addr": s.APIAddr}); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

func applyServerRemove(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ServerRemove](body)
	existing, err := store.GetServer(a.tx, cmd.ID)
	if err != nil || existing == nil {
		return nil, err
	}
	if err := store.DeleteServer(a.tx, cmd.ID); err != nil {
		return nil, err
	}
	return nil, a.emit(model.EventRemovedServer, model.EventDetails{"server_id": cmd.ID})
}

func applySystemUpdate(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[SystemUpdate](body)
	sys, err := store.GetSystem(a.tx)
	if err != nil {
		return nil, err
	}
	if cmd.IgnorePipelineRunEvents != nil {
		sys.IgnorePipelineRunEvents = *cmd.IgnorePipelineRunEvents
	}
	if err := store.PutSystem(a.tx, sys); err != nil {
		return nil, err
	}
	err = a.emit(model.EventUpdatedSystem, model.EventDetails{
		"ignore_pipeline_run_events": sys.IgnorePipelineRunEvents,
	})
	return sys, err
}

func applyPrune(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[Prune](body)
	if len(cmd.TriggerKeys) > MaxPrunedTriggerKeys {
		return nil, fmt.Errorf("%w: trigger_keys: %d listed, at most %d", ErrInvalid, len(cmd.TriggerKeys), MaxPrunedTriggerKeys)
	}
	var res PruneResult
	var err error
	if cmd.EventsBefore > 0 {
		if res.Events, err = store.PruneEvents(a.tx, cmd.EventsBefore, cmd.Max); err != nil {
			return nil, err
		}
	}
	if cmd.IdempotencyBefore > 0 {
		if res.Idempotency, err = store.PruneIdempotency(a.tx, cmd.IdempotencyBefore, cmd.Max); err != nil {
			return nil, err
		}
	}
	switch {
	case cmd.TriggerKeysBefore > 0 && len(cmd.TriggerKeys) > 0:
		for _, r := range cmd.TriggerKeys {
			deleted, err := store.DeleteTriggerKeyBefore(a.tx, r, cmd.TriggerKeysBefore)
			if err != nil {
				return nil, err
			}
			if deleted {
				res.TriggerKeys++
			}
		}
	case cmd.TriggerKeysBefore > 0:
		if res.TriggerKeys, err = store.PruneTriggerKeys(a.tx, cmd.TriggerKeysBefore, cmd.Max); err != nil {
			return nil, err
		}
	}
	return &res, nil
}

func applyEventDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[EventDelete](body)
	e, err := store.GetEvent(a.tx, cmd.ID)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%w: event %d does not exist", ErrNotFound, cmd.ID)
	}
	return nil, store.DeleteEvent(a.tx, cmd.ID)
}
