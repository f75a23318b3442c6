package store

import (
	"bytes"
	"encoding/json"

	"go.etcd.io/bbolt"
)

// IdempotencyRecord remembers the outcome of a write that carried an
// idempotency key, so a client retrying after an unknown outcome gets the
// same answer instead of a second effect.
type IdempotencyRecord struct {
	Command  byte            `json:"command"`
	Index    uint64          `json:"index"`
	Recorded int64           `json:"recorded"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
	// ErrorKind is the sentinel the error wrapped (conflict, not_found…).
	ErrorKind string `json:"error_kind,omitempty"`
	// RequestHash identifies the request that used the key (method, path,
	// query and canonical body, hashed by the leader); a later request with
	// the key but another hash is refused. Empty in records written before
	// requests were hashed.
	RequestHash string `json:"request_hash,omitempty"`
}

// GetIdempotency returns the record for key, or nil.
func GetIdempotency(tx *bbolt.Tx, k string) (*IdempotencyRecord, error) {
	var r IdempotencyRecord
	ok, err := getJSON(tx.Bucket(bucketIdempotency), []byte(k), &r)
	if !ok || err != nil {
		return nil, err
	}
	return &r, nil
}

// PutIdempotency stores the record for key, indexed by time for pruning.
func PutIdempotency(tx *bbolt.Tx, k string, r *IdempotencyRecord) error {
	if err := putJSON(tx.Bucket(bucketIdempotency), []byte(k), r); err != nil {
		return err
	}
	return tx.Bucket(bucketIdempotencyByTime).Put(append(u64(uint64(r.Recorded)), k...), nil)
}

// PruneIdempotency deletes, oldest first, at most max records recorded
// before cutoff (epoch ms) and returns how many it removed.
func PruneIdempotency(tx *bbolt.Tx, cutoff int64, max int) (int, error) {
	byTime := tx.Bucket(bucketIdempotencyByTime)
	records := tx.Bucket(bucketIdempotency)
	var doomed [][]byte
	c := byTime.Cursor()
	for k, _ := c.First(); k != nil && len(doomed) < max; k, _ = c.Next() {
		if int64(parseU64(k[:8])) >= cutoff {
			break
		}
		doomed = append(doomed, bytes.Clone(k))
	}
	for _, k := range doomed {
		if err := byTime.Delete(k); err != nil {
			return 0, err
		}
		if err := records.Delete(k[8:]); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}

// OldestIdempotencyTime is when the oldest idempotency record was
// written, or 0 if there is none.
func OldestIdempotencyTime(tx *bbolt.Tx) int64 {
	k, _ := tx.Bucket(bucketIdempotencyByTime).Cursor().First()
	if len(k) < 8 {
		return 0
	}
	return int64(parseU64(k[:8]))
}
