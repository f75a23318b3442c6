package fsm

import (
	"fmt"
	"sort"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// secretDetails names a secret in events (never its value).
func secretDetails(ns, pipeline, key string) model.EventDetails {
	if ns == "" {
		return model.EventDetails{"scope": "global", "key": key}
	}
	return pipelineDetails(ns, pipeline, "scope", "pipeline", "key", key)
}

func describeSecret(ns, pipeline, key string) string {
	if ns == "" {
		return fmt.Sprintf("global secret %q", key)
	}
	return fmt.Sprintf("secret %q of pipeline %s/%s", key, ns, pipeline)
}

func applySecretPut(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[SecretPut](body)
	if cmd.NamespaceID != "" {
		// A pipeline secret needs its pipeline: one stored for an id that
		// does not exist would be inherited by whatever takes the id.
		if _, err := mustPipeline(a, cmd.NamespaceID, cmd.PipelineID); err != nil {
			return nil, err
		}
	}
	existing, err := store.GetSecret(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.Key)
	if err != nil {
		return nil, err
	}
	if existing != nil && !cmd.Force {
		return nil, fmt.Errorf("%w: %s already exists; use force to replace it", ErrConflict, describeSecret(cmd.NamespaceID, cmd.PipelineID, cmd.Key))
	}
	recorded := store.SecretKeyCheck(a.tx)
	if err := checkSealingKey(a, recorded, cmd.KeyCheck); err != nil {
		return nil, err
	}
	s := &model.StoredSecret{Secret: model.Secret{NamespaceID: cmd.NamespaceID, PipelineID: cmd.PipelineID, Key: cmd.Key,
		Namespaces: cmd.Namespaces, Created: a.meta.Timestamp, Modified: a.meta.Timestamp}, Sealed: cmd.Sealed, KeyCheck: cmd.KeyCheck}
	if existing != nil {
		s.Created = existing.Created
		// Kept so a leader that takes over a task started with the old
		// value still masks it in the task's log.
		s.PreviousSealed, s.PreviousKeyCheck = existing.Sealed, existing.KeyCheck
		if s.PreviousKeyCheck == "" {
			s.PreviousKeyCheck = recorded // sealed before records named their key
		}
	}
	if err := store.PutSecret(a.tx, s); err != nil {
		return nil, err
	}
	out := s.Secret
	return &out, a.emitIn(cmd.NamespaceID, cmd.PipelineID, model.EventPutSecret, secretDetails(cmd.NamespaceID, cmd.PipelineID, cmd.Key))
}

// checkSealingKey refuses a value sealed under a key the cluster's other
// secrets are not under. While a rotation runs, values under its source
// or its target key are both accepted (the rotation re-seals the former).
// Otherwise the key check is recorded with the first secret, and once no
// secret is left a new key may take over.
func checkSealingKey(a *applyCtx, recorded, check string) error {
	rot, err := rotating(a)
	if err != nil {
		return err
	}
	if rot != nil {
		if check == rot.Target || check == rot.Source {
			return nil
		}
		return fmt.Errorf("%w: the leader's secret_store.encryption_key is neither the key this cluster's secrets are sealed with "+
			"nor the key the running rotation moves them to; every node needs both", ErrConflict)
	}
	if recorded == check {
		return nil
	}
	if recorded != "" && store.AnySecrets(a.tx) {
		return fmt.Errorf("%w: the leader's secret_store.encryption_key is not the key this cluster's secrets are sealed with; "+
			"every node needs the same key", ErrConflict)
	}
	return store.SetSecretKeyCheck(a.tx, check)
}

func applySecretDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[SecretRef](body)
	existing, err := store.GetSecret(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.Key)
	if err != nil {
		return nil, err
	}
	if existing == nil {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNotFound, describeSecret(cmd.NamespaceID, cmd.PipelineID, cmd.Key))
	}
	if err := store.DeleteSecret(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.Key); err != nil {
		return nil, err
	}
	return nil, a.emitIn(cmd.NamespaceID, cmd.PipelineID, model.EventDeletedSecret, secretDetails(cmd.NamespaceID, cmd.PipelineID, cmd.Key))
}

func objectDetails(r ObjectRef) model.EventDetails {
	if r.RunID == 0 {
		return pipelineDetails(r.NamespaceID, r.PipelineID, "scope", "pipeline", "key", r.Key)
	}
	return pipelineDetails(r.NamespaceID, r.PipelineID, "scope", "run", "run_id", r.RunID, "key", r.Key)
}

func describeObject(r ObjectRef) string {
	if r.RunID == 0 {
		return fmt.Sprintf("object %q of pipeline %s/%s", r.Key, r.NamespaceID, r.PipelineID)
	}
	return fmt.Sprintf("object %q of run %d of pipeline %s/%s", r.Key, r.RunID, r.NamespaceID, r.PipelineID)
}

func applyObjectPut(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ObjectPut](body)
	if _, err := mustPipeline(a, cmd.NamespaceID, cmd.PipelineID); err != nil {
		return nil, err
	}
	if cmd.RunID != 0 {
		r, err := store.GetRun(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.RunID)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, fmt.Errorf("%w: run %d of pipeline %s/%s does not exist", ErrNotFound, cmd.RunID, cmd.NamespaceID, cmd.PipelineID)
		}
		if r.StoreObjectsExpired {
			return nil, fmt.Errorf("%w: the objects of run %d have expired (object_store.run_object_expiry); it takes no new ones", ErrConflict, cmd.RunID)
		}
	}
	existing, err := store.GetObjectInfo(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.RunID, cmd.Key)
	if err != nil {
		return nil, err
	}
	if existing != nil && !cmd.Force {
		return nil, fmt.Errorf("%w: %s already exists; use force to replace it", ErrConflict, describeObject(cmd.ObjectRef))
	}
	if existing == nil && cmd.RunID != 0 && cmd.RunLimit > 0 && store.CountRunObjects(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.RunID) >= cmd.RunLimit {
		return nil, fmt.Errorf("%w: run %d already has %d objects, the most object_store.run_object_limit allows", ErrConflict, cmd.RunID, cmd.RunLimit)
	}
	if existing == nil && cmd.RunID == 0 && cmd.PipelineLimit > 0 {
		if err := evictPipelineObjects(a, cmd.NamespaceID, cmd.PipelineID, cmd.PipelineLimit-1); err != nil {
			return nil, err
		}
	}
	o := &model.Object{NamespaceID: cmd.NamespaceID, PipelineID: cmd.PipelineID, RunID: cmd.RunID, Key: cmd.Key,
		Size: int64(len(cmd.Data)), Created: a.meta.Timestamp}
	if err := store.PutObject(a.tx, o, cmd.Data); err != nil {
		return nil, err
	}
	return o, a.emitIn(cmd.NamespaceID, cmd.PipelineID, model.EventPutObject, objectDetails(cmd.ObjectRef))
}

// evictPipelineObjects deletes a pipeline's oldest objects until at most
// keep remain (the pipeline object limit is a ring buffer).
func evictPipelineObjects(a *applyCtx, ns, pipeline string, keep int) error {
	all, err := store.AllPipelineObjects(a.tx, ns, pipeline)
	if err != nil || len(all) <= keep {
		return err
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Created != all[j].Created {
			return all[i].Created < all[j].Created
		}
		return all[i].Key < all[j].Key
	})
	for _, o := range all[:len(all)-keep] {
		if err := store.DeleteObject(a.tx, ns, pipeline, 0, o.Key); err != nil {
			return err
		}
		if err := a.emitIn(ns, pipeline, model.EventEvictedObject, pipelineDetails(ns, pipeline, "key", o.Key)); err != nil {
			return err
		}
	}
	return nil
}

func applyObjectDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ObjectRef](body)
	existing, err := store.GetObjectInfo(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.RunID, cmd.Key)
	if err != nil {
		return nil, err
	}
	if existing == nil {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNotFound, describeObject(*cmd))
	}
	if err := store.DeleteObject(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.RunID, cmd.Key); err != nil {
		return nil, err
	}
	return nil, a.emitIn(cmd.NamespaceID, cmd.PipelineID, model.EventDeletedObject, objectDetails(*cmd))
}

// applyRunObjectsExpire deletes the objects of complete runs after the
// pipeline's previous object expiry point, up to Through.
func applyRunObjectsExpire(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[RunObjectsExpire](body)
	return expireRuns(a, cmd.NamespaceID, cmd.PipelineID, cmd.Through, model.EventExpiredRunObjects,
		func(p *model.Pipeline) *int64 { return &p.ObjectsExpiredThrough },
		func(r *model.Run) (bool, error) {
			if r.StoreObjectsExpired {
				return false, nil
			}
			if _, err := store.DeleteRunObjects(a.tx, r.NamespaceID, r.PipelineID, r.RunID); err != nil {
				return false, err
			}
			r.StoreObjectsExpired = true
			return true, nil
		})
}
