package store

import (
	"encoding/json"
	"errors"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// GetKeyRotation returns the encryption key rotation record, or nil when
// the cluster never rotated its key.
func GetKeyRotation(tx *bbolt.Tx) (*model.KeyRotation, error) {
	var r model.KeyRotation
	ok, err := getJSON(tx.Bucket(bucketMeta), keyKeyRotation, &r)
	if !ok || err != nil {
		return nil, err
	}
	return &r, nil
}

// PutKeyRotation records the encryption key rotation.
func PutKeyRotation(tx *bbolt.Tx, r *model.KeyRotation) error {
	return putJSON(tx.Bucket(bucketMeta), keyKeyRotation, r)
}

// Sealed value kinds a rotation re-seals.
const (
	SealedSecret   = "secret"
	SealedRunToken = "run_token"
)

// SealedRecord is one record holding sealed values: a secret (its value
// and the value it replaced) or a run token. KeyCheck and PreviousKeyCheck
// are effective: a record written before key rotation existed carries
// none and counts as sealed under the cluster's recorded key.
type SealedRecord struct {
	Kind string
	// NamespaceID, PipelineID and Key name a secret (global: no
	// namespace or pipeline).
	NamespaceID, PipelineID, Key string
	// TokenID names a run token.
	TokenID          string
	Sealed           []byte
	KeyCheck         string
	PreviousSealed   []byte
	PreviousKeyCheck string
}

// Stale says whether some value of the record is not under target.
func (r *SealedRecord) Stale(target string) bool {
	return r.KeyCheck != target || (len(r.PreviousSealed) > 0 && r.PreviousKeyCheck != target)
}

// ErrStopScan, returned by a ForEachSealed callback, ends the walk
// without an error.
var ErrStopScan = errors.New("stop the scan")

// ForEachSealed walks every sealed value holder: pipeline secrets, global
// secrets, then run tokens (tokens users create keep no sealed secret).
func ForEachSealed(tx *bbolt.Tx, fn func(*SealedRecord) error) error {
	recorded := SecretKeyCheck(tx)
	effective := func(check string) string {
		if check == "" {
			return recorded
		}
		return check
	}
	walk := func(b *bbolt.Bucket, each func(v []byte) (*SealedRecord, error)) error {
		return b.ForEach(func(_, v []byte) error {
			r, err := each(v)
			if err != nil || r == nil {
				return err
			}
			return fn(r)
		})
	}
	secret := func(v []byte) (*SealedRecord, error) {
		var s model.StoredSecret
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		r := &SealedRecord{Kind: SealedSecret, NamespaceID: s.NamespaceID, PipelineID: s.PipelineID, Key: s.Key,
			Sealed: s.Sealed, KeyCheck: effective(s.KeyCheck), PreviousSealed: s.PreviousSealed}
		if len(s.PreviousSealed) > 0 {
			r.PreviousKeyCheck = effective(s.PreviousKeyCheck)
		}
		return r, nil
	}
	token := func(v []byte) (*SealedRecord, error) {
		var t model.StoredToken
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, err
		}
		if len(t.Sealed) == 0 {
			return nil, nil
		}
		return &SealedRecord{Kind: SealedRunToken, TokenID: t.ID, Sealed: t.Sealed, KeyCheck: effective(t.KeyCheck)}, nil
	}
	err := walk(tx.Bucket(bucketPipelineSecrets), secret)
	if err == nil {
		err = walk(tx.Bucket(bucketGlobalSecrets), secret)
	}
	if err == nil {
		err = walk(tx.Bucket(bucketTokens), token)
	}
	if errors.Is(err, ErrStopScan) {
		return nil
	}
	return err
}

// CountSealed counts every sealed value (total) and those not under
// target (remaining).
func CountSealed(tx *bbolt.Tx, target string) (remaining, total model.KeyRotationCounts, err error) {
	err = ForEachSealed(tx, func(r *SealedRecord) error {
		stale := r.KeyCheck != target
		switch r.Kind {
		case SealedSecret:
			total.Secrets++
			if stale {
				remaining.Secrets++
			}
			if len(r.PreviousSealed) > 0 {
				total.PreviousSecrets++
				if r.PreviousKeyCheck != target {
					remaining.PreviousSecrets++
				}
			}
		case SealedRunToken:
			total.RunTokens++
			if stale {
				remaining.RunTokens++
			}
		}
		return nil
	})
	return remaining, total, err
}
