package store

import (
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// AppliedIndex returns the raft index and term of the last entry applied to
// this state. It is written in the same transaction as the entry's effects.
func AppliedIndex(tx *bbolt.Tx) (index, term uint64) {
	b := tx.Bucket(bucketMeta)
	return parseU64(b.Get(keyAppliedIndex)), parseU64(b.Get(keyAppliedTerm))
}

// SetAppliedIndex records the last applied raft entry.
func SetAppliedIndex(tx *bbolt.Tx, index, term uint64) error {
	b := tx.Bucket(bucketMeta)
	if err := b.Put(keyAppliedIndex, u64(index)); err != nil {
		return err
	}
	return b.Put(keyAppliedTerm, u64(term))
}

// ClusterID returns the id chosen when the cluster was initialised, or "".
func ClusterID(tx *bbolt.Tx) string {
	return string(tx.Bucket(bucketMeta).Get(keyClusterID))
}

// SetClusterID records the cluster's id.
func SetClusterID(tx *bbolt.Tx, id string) error {
	return tx.Bucket(bucketMeta).Put(keyClusterID, []byte(id))
}

// GetSystem returns the cluster-wide switches.
func GetSystem(tx *bbolt.Tx) (*model.System, error) {
	var s model.System
	if _, err := getJSON(tx.Bucket(bucketMeta), keySystem, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// PutSystem stores the cluster-wide switches.
func PutSystem(tx *bbolt.Tx, s *model.System) error {
	return putJSON(tx.Bucket(bucketMeta), keySystem, s)
}

// ReadAppliedIndex reads the applied index with its own read transaction.
func (d *DB) ReadAppliedIndex() uint64 {
	var idx uint64
	_ = d.View(func(tx *bbolt.Tx) error {
		idx, _ = AppliedIndex(tx)
		return nil
	})
	return idx
}
