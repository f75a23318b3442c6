package store

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// GetNamespace returns the namespace or nil if it does not exist.
func GetNamespace(tx *bbolt.Tx, id string) (*model.Namespace, error) {
	raw := tx.Bucket(bucketNamespaces).Get(key(id))
	if raw == nil {
		return nil, nil
	}
	var ns model.Namespace
	if err := unmarshalNamespace(raw, &ns); err != nil {
		return nil, fmt.Errorf("decode %q: %w", key(id), err)
	}
	return &ns, nil
}

// PutNamespace creates or replaces a namespace.
func PutNamespace(tx *bbolt.Tx, ns *model.Namespace) error {
	return tx.Bucket(bucketNamespaces).Put(key(ns.ID), marshalNamespace(ns))
}

// DeleteNamespace removes a namespace row (not its pipelines).
func DeleteNamespace(tx *bbolt.Tx, id string) error {
	return tx.Bucket(bucketNamespaces).Delete(key(id))
}

// ListNamespaces returns a page of namespaces in id order; keep filters.
func ListNamespaces(tx *bbolt.Tx, page Page, keep func(*model.Namespace) bool) ([]*model.Namespace, error) {
	return scanPage(tx.Bucket(bucketNamespaces), nil, page, keep)
}
