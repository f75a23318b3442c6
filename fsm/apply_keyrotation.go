package fsm

import (
	"fmt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

func rotationDetails(r *model.KeyRotation) model.EventDetails {
	d := model.EventDetails{"source_key_check": r.Source, "target_key_check": r.Target, "state": r.State}
	if r.Aborted {
		d["aborted"] = true
	}
	return d
}

// rotating returns the running rotation, or nil.
func rotating(a *applyCtx) (*model.KeyRotation, error) {
	r, err := store.GetKeyRotation(a.tx)
	if err != nil || r == nil || r.State != model.KeyRotationRotating {
		return nil, err
	}
	return r, nil
}

func applyKeyRotationStart(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[KeyRotationStart](body)
	if cmd.Abort && cmd.RollbackTo != "" {
		last, err := store.GetKeyRotation(a.tx)
		if err != nil {
			return nil, err
		}
		if last != nil && last.Aborted && last.Target == cmd.RollbackTo {
			return last, nil // already rolling (or rolled) back to that key: aborting twice is a no-op
		}
	}
	cur, err := rotating(a)
	if err != nil {
		return nil, err
	}
	recorded := store.SecretKeyCheck(a.tx)
	if cmd.Source != recorded {
		return nil, fmt.Errorf("%w: the cluster's recorded encryption key changed while the rotation was being started; try again", ErrConflict)
	}
	var next *model.KeyRotation
	switch {
	case cmd.Abort:
		if cur == nil {
			return nil, fmt.Errorf("%w: no encryption key rotation is running, so there is none to abort", ErrConflict)
		}
		if cmd.RollbackTo != "" && cur.Source != cmd.RollbackTo {
			return nil, fmt.Errorf("%w: the running rotation (from key %s to %s) is not the one this abort was to roll back to key %s; "+
				"look at its status and try again", ErrConflict, orNone(cur.Source), cur.Target, cmd.RollbackTo)
		}
		if cur.Source == "" {
			return nil, fmt.Errorf("%w: the running rotation started before any secret was stored, so there is no previous key to roll back to", ErrConflict)
		}
		next = &model.KeyRotation{State: model.KeyRotationRotating, Source: cur.Target, Target: cur.Source, Aborted: true}
	case cmd.Target == "":
		return nil, fmt.Errorf("%w: target_key_check is empty", ErrInvalid)
	case cur != nil && cur.Target == cmd.Target:
		return cur, nil // already rotating to this key: starting again while it runs is a no-op
	case cur != nil:
		return nil, fmt.Errorf("%w: a rotation to key %s is running; wait for it or abort it first", ErrConflict, cur.Target)
	default:
		remaining, _, err := store.CountSealed(a.tx, cmd.Target)
		if err != nil {
			return nil, err
		}
		if recorded == cmd.Target && remaining.Sum() == 0 {
			return nil, fmt.Errorf("%w: every sealed value is already under the leader's encryption key %s; nothing to rotate", ErrConflict, cmd.Target)
		}
		next = &model.KeyRotation{State: model.KeyRotationRotating, Source: recorded, Target: cmd.Target}
	}
	next.Started, next.StartedBy = a.meta.Timestamp, a.meta.Actor
	if err := store.PutKeyRotation(a.tx, next); err != nil {
		return nil, err
	}
	return next, a.emit(model.EventKeyRotationStarted, rotationDetails(next))
}

func applySecretsReseal(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[SecretsReseal](body)
	cur, err := rotating(a)
	if err != nil {
		return nil, err
	}
	if cur == nil || cur.Target != cmd.Target {
		return nil, fmt.Errorf("%w: no rotation to key %s is running", ErrConflict, cmd.Target)
	}
	// One bbolt transaction covers a whole batch, so every item is checked
	// before the first write (fsm/DESIGN.md, "Check first, then write").
	for _, it := range cmd.Items {
		if it.Kind != store.SealedSecret && it.Kind != store.SealedRunToken {
			return nil, fmt.Errorf("%w: unknown sealed value kind %q", ErrInvalid, it.Kind)
		}
	}
	var res ResealResult
	for _, it := range cmd.Items {
		n, err := resealItem(a, cmd.Target, it)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			res.Skipped++
		}
		res.Resealed += n
	}
	cur.Resealed += int64(res.Resealed)
	return &res, store.PutKeyRotation(a.tx, cur)
}

// resealItem swaps one record's ciphertexts when the record still holds
// the values the leader opened; it returns how many it replaced.
func resealItem(a *applyCtx, target string, it ResealItem) (int, error) {
	switch it.Kind {
	case store.SealedSecret:
		s, err := store.GetSecret(a.tx, it.NamespaceID, it.PipelineID, it.Key)
		if err != nil || s == nil || seal.Digest(s.Sealed) != it.Was || seal.Digest(s.PreviousSealed) != it.PreviousWas {
			return 0, err
		}
		n := 0
		if len(it.Sealed) > 0 {
			s.Sealed, s.KeyCheck, n = it.Sealed, target, n+1
		}
		if len(it.PreviousSealed) > 0 && len(s.PreviousSealed) > 0 {
			s.PreviousSealed, s.PreviousKeyCheck, n = it.PreviousSealed, target, n+1
		}
		if n == 0 {
			return 0, nil
		}
		return n, store.PutSecret(a.tx, s)
	case store.SealedRunToken:
		t, err := store.GetToken(a.tx, it.TokenID)
		if err != nil || t == nil || len(it.Sealed) == 0 || seal.Digest(t.Sealed) != it.Was {
			return 0, err
		}
		t.Sealed, t.KeyCheck = it.Sealed, target
		return 1, store.PutToken(a.tx, t)
	}
	return 0, fmt.Errorf("%w: unknown sealed value kind %q", ErrInvalid, it.Kind)
}

func applyKeyRotationFinish(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[KeyRotationFinish](body)
	cur, err := rotating(a)
	if err != nil {
		return nil, err
	}
	if cur == nil || cur.Target != cmd.Target {
		return nil, fmt.Errorf("%w: no rotation to key %s is running", ErrConflict, cmd.Target)
	}
	remaining, _, err := store.CountSealed(a.tx, cmd.Target)
	if err != nil {
		return nil, err
	}
	if n := remaining.Sum(); n > 0 {
		return nil, fmt.Errorf("%w: %d sealed values are not yet under key %s", ErrConflict, n, cmd.Target)
	}
	if err := store.SetSecretKeyCheck(a.tx, cmd.Target); err != nil {
		return nil, err
	}
	cur.State, cur.Finished = model.KeyRotationDone, a.meta.Timestamp
	if err := store.PutKeyRotation(a.tx, cur); err != nil {
		return nil, err
	}
	return cur, a.emit(model.EventKeyRotationFinished, rotationDetails(cur))
}

// orNone names an empty key check in messages.
func orNone(check string) string {
	if check == "" {
		return "(none)"
	}
	return check
}
