package store

import (
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// GetServer returns a member's recorded addresses, or nil.
func GetServer(tx *bbolt.Tx, id string) (*model.Server, error) {
	var s model.Server
	ok, err := getJSON(tx.Bucket(bucketServers), key(id), &s)
	if !ok || err != nil {
		return nil, err
	}
	return &s, nil
}

// PutServer records a member's addresses.
func PutServer(tx *bbolt.Tx, s *model.Server) error {
	return putJSON(tx.Bucket(bucketServers), key(s.ID), s)
}

// DeleteServer forgets a member.
func DeleteServer(tx *bbolt.Tx, id string) error {
	return tx.Bucket(bucketServers).Delete(key(id))
}

// ListServers returns every recorded member (clusters have 3 to 5).
func ListServers(tx *bbolt.Tx) ([]*model.Server, error) {
	return scanAll[model.Server](tx.Bucket(bucketServers), nil)
}

// ReplaceServers overwrites the servers bucket with servers. A restored
// backup keeps the live cluster's membership this way.
func ReplaceServers(tx *bbolt.Tx, servers []*model.Server) error {
	if err := tx.DeleteBucket(bucketServers); err != nil {
		return err
	}
	if _, err := tx.CreateBucket(bucketServers); err != nil {
		return err
	}
	for _, s := range servers {
		if err := PutServer(tx, s); err != nil {
			return err
		}
	}
	return nil
}
