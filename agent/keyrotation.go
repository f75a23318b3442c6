package agent

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/agent/reconcile"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// rotationBatchBytes bounds the JSON of the items one re-seal command
// carries. A command travels as JSON, where a []byte is base64 (4/3 of its
// size), so the worker measures each item's encoding, not its ciphertext,
// and stops before the item that would cross this. Half the raft entry
// limit (maxEntrySize) leaves ample room for the envelope, the meta fields
// and the target, and keeps entries that share the connection with
// heartbeats moderate. One item always fits on its own: a secret is at
// most 64 KiB (api/secrets.go), so its value and previous value encode to
// about 175 KiB; TestReSealBatchesFitARaftEntry holds that.
const rotationBatchBytes = maxEntrySize / 2

// rotationIdleWait is how long the worker waits for a state change before
// it looks again on its own.
const rotationIdleWait = 30 * time.Second

// errNothingOpened means every value left under the old key failed to
// open with this leader's keys: the rotation cannot progress here.
var errNothingOpened = errors.New("no value left under the old key opens with this leader's keys")

// keyRotator is the leader service that carries out an encryption key
// rotation recorded in state (fsm/DESIGN.md, "Key rotation"): it re-seals
// values in batches, each one raft command with compare-and-swap digests,
// and records the rotation done once nothing is left under another key.
// All it knows comes from state, so a new leader resumes where the old
// one stopped.
type keyRotator struct {
	state    leadership.StateReader
	keys     *seal.Keyring
	apply    leadership.Applier
	clock    clock.Clock
	batch    int
	interval time.Duration
	logger   hclog.Logger

	// cursor is where the last applied batch stopped scanning, for the
	// rotation to cursorTarget: the next batch resumes after it, so a pass
	// decodes each record once instead of once per batch (tokens include
	// every user token). It lives only here; a new leader starts from the
	// beginning, and the scan wraps around, so records skipped by a
	// compare-and-swap are met again. Finishing never trusts it: only a
	// whole circle with nothing stale, and the FSM's own count, finish.
	cursor       *store.SealedPos
	cursorTarget string
	// scanned counts records read by batch scans (tests hold it linear).
	scanned int
}

// rotationConfig is what the key rotator needs from the node's
// configuration.
type rotationConfig struct {
	// Keys holds this leader's keys; nil: no secret_store.encryption_key.
	Keys *seal.Keyring
	// Batch is how many values one re-seal command carries at most.
	Batch int
	// Interval is the pause after each batch (0: none).
	Interval time.Duration
}

func newKeyRotator(cfg rotationConfig, d leadership.Deps) *keyRotator {
	return &keyRotator{state: d.State, keys: cfg.Keys, apply: d.Apply, clock: clock.Or(d.Clock),
		batch: cfg.Batch, interval: cfg.Interval, logger: d.Logger}
}

// Run works until ctx ends: a step, then the next one after the batch
// interval if it made progress, at the next state change (or after
// rotationIdleWait) if it did not, and with backoff (1 s doubling to
// 30 s) if it failed.
func (k *keyRotator) Run(ctx context.Context) error {
	reconcile.NewLoop(reconcile.LoopConfig{
		Pass: func(ctx context.Context) (reconcile.Result, error) {
			progressed, err := k.step(ctx)
			if err != nil || !progressed {
				return reconcile.Result{}, err
			}
			next := k.clock.Now().Add(k.interval)
			return reconcile.Result{Hold: next, Wake: next}, nil
		},
		// Only rotation commands wake it (and a restore): waking on every
		// write would make each pass's View force the state file's group
		// commit.
		Changes:    func() <-chan struct{} { return k.state.KeyRotationChanges().Changed() },
		Idle:       rotationIdleWait,
		MinBackoff: time.Second,
		MaxBackoff: 30 * time.Second,
		Clock:      k.clock,
		Logger:     k.logger,
	}).Run(ctx)
	return nil
}

// step does one unit of work: one re-seal batch, or the finish. It
// reports whether it changed anything.
func (k *keyRotator) step(ctx context.Context) (bool, error) {
	var rot *model.KeyRotation
	var items []fsm.ResealItem
	var failed int
	var next *store.SealedPos
	var err error
	if err := k.state.View(func(tx *bbolt.Tx) (err error) {
		if rot, err = store.GetKeyRotation(tx); err != nil || rot == nil || rot.State != model.KeyRotationRotating {
			return err
		}
		if k.cursorTarget != rot.Target {
			k.cursor, k.cursorTarget = nil, rot.Target
		}
		items, failed, next, err = k.batchOf(tx, rot.Target, k.cursor)
		return err
	}); err != nil {
		return false, err
	}
	if rot == nil || rot.State != model.KeyRotationRotating {
		return false, nil
	}
	if failed > 0 {
		k.logger.Error("sealed values do not open with this leader's keys; the rotation cannot finish until they are deleted or the key is configured",
			"count", failed, "target", rot.Target)
	}
	if len(items) == 0 {
		if failed > 0 {
			return false, errNothingOpened
		}
		if _, err = applyChecked(ctx, k.apply, fsm.CmdKeyRotationFinish, fsm.KeyRotationFinish{Target: rot.Target}); err != nil {
			return false, err
		}
		k.logger.Info("key rotation done", "key_check", rot.Target, "resealed", rot.Resealed)
		return true, nil
	}
	res, err := applyChecked(ctx, k.apply, fsm.CmdSecretsReseal, fsm.SecretsReseal{Target: rot.Target, Items: items})
	if err != nil {
		return false, err
	}
	k.cursor = next
	if r, _ := fsm.ResultAs[fsm.ResealResult](res); r != nil {
		k.logger.Debug("re-sealed a batch", "values", r.Resealed, "skipped", r.Skipped)
	}
	return true, nil
}

// batchOf opens and re-seals, from just after `from` around to it, up to
// the batch size of records not wholly under target, keeping the batch's
// encoding under rotationBatchBytes. next is where the following batch
// resumes: the last record this one dealt with. failed counts values no
// key of this leader opens.
func (k *keyRotator) batchOf(tx *bbolt.Tx, target string, from *store.SealedPos) (items []fsm.ResealItem, failed int, next *store.SealedPos, err error) {
	box := k.keys.ForCheck(target)
	if box == nil {
		return nil, 0, nil, errors.New("this leader does not hold the rotation's target key " + target)
	}
	next = from
	size := 0
	err = store.ForEachSealedFrom(tx, from, func(r *store.SealedRecord, pos store.SealedPos) error {
		k.scanned++
		if !r.Stale(target) {
			next = &pos
			return nil
		}
		loc := locationOf(r)
		it := fsm.ResealItem{Kind: r.Kind, NamespaceID: r.NamespaceID, PipelineID: r.PipelineID, Key: r.Key, TokenID: r.TokenID,
			Was: seal.Digest(r.Sealed), PreviousWas: seal.Digest(r.PreviousSealed)}
		var err error
		if r.KeyCheck != target {
			if it.Sealed, err = k.reseal(box, r.Sealed, loc); err != nil {
				failed++
				next = &pos
				return nil
			}
		}
		if len(r.PreviousSealed) > 0 && r.PreviousKeyCheck != target {
			if it.PreviousSealed, err = k.reseal(box, r.PreviousSealed, loc); err != nil {
				failed++
				next = &pos
				return nil
			}
		}
		n, err := encodedSize(it)
		if err != nil {
			return err
		}
		if len(items) > 0 && size+n > rotationBatchBytes {
			return store.ErrStopScan // this record starts the next batch
		}
		items, size, next = append(items, it), size+n, &pos
		if len(items) >= k.batch {
			return store.ErrStopScan
		}
		return nil
	})
	return items, failed, next, err
}

// encodedSize is what an item adds to a re-seal command's JSON (its
// encoding and a separating comma).
func encodedSize(it fsm.ResealItem) (int, error) {
	b, err := json.Marshal(it)
	return len(b) + 1, err
}

func (k *keyRotator) reseal(box *seal.Box, sealed []byte, location string) ([]byte, error) {
	plain, err := k.keys.Open(sealed, location)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return box.Seal(plain, location)
}

func locationOf(r *store.SealedRecord) string {
	switch {
	case r.Kind == store.SealedRunToken:
		return seal.RunTokenLocation(r.TokenID)
	case r.NamespaceID == "":
		return seal.GlobalLocation(r.Key)
	}
	return seal.PipelineLocation(r.NamespaceID, r.PipelineID, r.Key)
}
