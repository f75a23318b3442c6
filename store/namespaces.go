package store

import (
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// GetNamespace returns the namespace or nil if it does not exist.
func GetNamespace(tx *bbolt.Tx, id string) (*model.Namespace, error) {
	var ns model.Namespace
	ok, err := getJSON(tx.Bucket(bucketNamespaces), key(id), &ns)
	if !ok || err != nil {
		return nil, err
	}
	return &ns, nil
}

// PutNamespace creates or replaces a namespace.
func PutNamespace(tx *bbolt.Tx, ns *model.Namespace) error {
	return putJSON(tx.Bucket(bucketNamespaces), key(ns.ID), ns)
}

// DeleteNamespace removes a namespace row (not its pipelines).
func DeleteNamespace(tx *bbolt.Tx, id string) error {
	return tx.Bucket(bucketNamespaces).Delete(key(id))
}

// ListNamespaces returns a page of namespaces in id order; keep filters.
func ListNamespaces(tx *bbolt.Tx, page Page, keep func(*model.Namespace) bool) ([]*model.Namespace, error) {
	return scanPage(tx.Bucket(bucketNamespaces), nil, page, keep)
}
