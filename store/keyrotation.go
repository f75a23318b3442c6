package store

import (
	"bytes"
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

// SealedPos is a place in the walk ForEachSealed makes: a bucket of the
// walk and a key in it.
type SealedPos struct {
	Bucket int
	Key    []byte
}

// sealedBuckets are walked in this order: pipeline secrets, global
// secrets, then tokens (tokens users create keep no sealed secret).
var sealedBuckets = [][]byte{bucketPipelineSecrets, bucketGlobalSecrets, bucketTokens}

// ForEachSealed walks every sealed value holder: pipeline secrets, global
// secrets, then run tokens.
func ForEachSealed(tx *bbolt.Tx, fn func(*SealedRecord) error) error {
	return ForEachSealedFrom(tx, nil, func(r *SealedRecord, _ SealedPos) error { return fn(r) })
}

// ForEachSealedFrom walks every sealed value holder once, starting just
// after from and wrapping around to end with from itself (nil: from the
// start). A worker that resumes each batch where the last one stopped
// reads every record once per pass instead of once per batch, and the
// wrap still brings it back to records it passed over.
func ForEachSealedFrom(tx *bbolt.Tx, from *SealedPos, fn func(*SealedRecord, SealedPos) error) error {
	recorded := SecretKeyCheck(tx)
	visit := func(bucket int, k, v []byte) error {
		r, err := decodeSealed(bucket, v, recorded)
		if err != nil || r == nil {
			return err
		}
		return fn(r, SealedPos{Bucket: bucket, Key: bytes.Clone(k)})
	}
	err := func() error {
		// From just after from to the end.
		for i, name := range sealedBuckets {
			if from != nil && i < from.Bucket {
				continue
			}
			c := tx.Bucket(name).Cursor()
			k, v := c.First()
			if from != nil && i == from.Bucket {
				if k, v = c.Seek(from.Key); k != nil && bytes.Equal(k, from.Key) {
					k, v = c.Next()
				}
			}
			for ; k != nil; k, v = c.Next() {
				if err := visit(i, k, v); err != nil {
					return err
				}
			}
		}
		if from == nil {
			return nil
		}
		// Then from the start up to from, included.
		for i := 0; i <= from.Bucket && i < len(sealedBuckets); i++ {
			c := tx.Bucket(sealedBuckets[i]).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if i == from.Bucket && bytes.Compare(k, from.Key) > 0 {
					break
				}
				if err := visit(i, k, v); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if errors.Is(err, ErrStopScan) {
		return nil
	}
	return err
}

// decodeSealed reads the record of a walked bucket; nil for a token with
// no sealed secret. Key checks are made effective: a record written before
// key rotation existed carries none and is under the recorded key.
func decodeSealed(bucket int, v []byte, recorded string) (*SealedRecord, error) {
	effective := func(check string) string {
		if check == "" {
			return recorded
		}
		return check
	}
	if bucket == len(sealedBuckets)-1 {
		var t model.StoredToken
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, err
		}
		if len(t.Sealed) == 0 {
			return nil, nil
		}
		return &SealedRecord{Kind: SealedRunToken, TokenID: t.ID, Sealed: t.Sealed, KeyCheck: effective(t.KeyCheck)}, nil
	}
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
