package store

import (
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// Secrets: pipeline secrets under (ns, pipeline, key); global secrets
// under their key. A global secret has no namespace or pipeline.

func secretSlot(tx *bbolt.Tx, ns, pipeline, k string) (*bbolt.Bucket, []byte) {
	if ns == "" {
		return tx.Bucket(bucketGlobalSecrets), []byte(k)
	}
	return tx.Bucket(bucketPipelineSecrets), key(ns, pipeline, k)
}

// GetSecret returns a pipeline secret (ns and pipeline set) or a global
// secret (both empty), or nil.
func GetSecret(tx *bbolt.Tx, ns, pipeline, k string) (*model.StoredSecret, error) {
	b, sk := secretSlot(tx, ns, pipeline, k)
	var s model.StoredSecret
	ok, err := getJSON(b, sk, &s)
	if !ok || err != nil {
		return nil, err
	}
	return &s, nil
}

// PutSecret creates or replaces a secret.
func PutSecret(tx *bbolt.Tx, s *model.StoredSecret) error {
	b, sk := secretSlot(tx, s.NamespaceID, s.PipelineID, s.Key)
	return putJSON(b, sk, s)
}

// DeleteSecret removes a secret.
func DeleteSecret(tx *bbolt.Tx, ns, pipeline, k string) error {
	b, sk := secretSlot(tx, ns, pipeline, k)
	return b.Delete(sk)
}

// ListSecrets returns a page of a pipeline's secrets, or of the global
// secrets when ns is empty, in key order.
func ListSecrets(tx *bbolt.Tx, ns, pipeline string, page Page) ([]*model.StoredSecret, error) {
	if ns == "" {
		return scanPage[model.StoredSecret](tx.Bucket(bucketGlobalSecrets), nil, page, nil)
	}
	return scanPage[model.StoredSecret](tx.Bucket(bucketPipelineSecrets), prefix(ns, pipeline), page, nil)
}

// SecretKeyCheck is the key check recorded with the first secret ("" if
// no secret was ever stored).
func SecretKeyCheck(tx *bbolt.Tx) string {
	return string(tx.Bucket(bucketMeta).Get(keySecretKeyCheck))
}

// SetSecretKeyCheck records the key check.
func SetSecretKeyCheck(tx *bbolt.Tx, check string) error {
	return tx.Bucket(bucketMeta).Put(keySecretKeyCheck, []byte(check))
}

// AnySecrets says whether any pipeline or global secret exists.
func AnySecrets(tx *bbolt.Tx) bool {
	for _, b := range [][]byte{bucketPipelineSecrets, bucketGlobalSecrets} {
		if k, _ := tx.Bucket(b).Cursor().First(); k != nil {
			return true
		}
	}
	return false
}
