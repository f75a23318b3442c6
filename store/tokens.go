package store

import (
	"go.etcd.io/bbolt"
	"slices"

	"github.com/goferhq/gofer/store/model"
)

// GetToken returns a token (with its hash) by id, or nil.
func GetToken(tx *bbolt.Tx, id string) (*model.StoredToken, error) {
	var t model.StoredToken
	ok, err := getJSON(tx.Bucket(bucketTokens), key(id), &t)
	if !ok || err != nil {
		return nil, err
	}
	return &t, nil
}

// GetTokenByHash finds a token by the SHA-256 hex of its secret, or nil.
func GetTokenByHash(tx *bbolt.Tx, hash string) (*model.StoredToken, error) {
	id := tx.Bucket(bucketTokenHashes).Get([]byte(hash))
	if id == nil {
		return nil, nil
	}
	return GetToken(tx, string(id))
}

// PutToken creates or replaces a token and its hash index entry.
func PutToken(tx *bbolt.Tx, t *model.StoredToken) error {
	if err := putJSON(tx.Bucket(bucketTokens), key(t.ID), t); err != nil {
		return err
	}
	return tx.Bucket(bucketTokenHashes).Put([]byte(t.Hash), []byte(t.ID))
}

// DeleteToken removes a token and its hash index entry.
func DeleteToken(tx *bbolt.Tx, t *model.StoredToken) error {
	if err := tx.Bucket(bucketTokens).Delete(key(t.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketTokenHashes).Delete([]byte(t.Hash))
}

// ListTokens returns a page of tokens in id order.
func ListTokens(tx *bbolt.Tx, page Page) ([]*model.StoredToken, error) {
	return scanPage[model.StoredToken](tx.Bucket(bucketTokens), nil, page, nil)
}

// GetRole returns a role or nil.
func GetRole(tx *bbolt.Tx, id string) (*model.Role, error) {
	var r model.Role
	ok, err := getJSON(tx.Bucket(bucketRoles), key(id), &r)
	if !ok || err != nil {
		return nil, err
	}
	return &r, nil
}

// PutRole creates or replaces a role.
func PutRole(tx *bbolt.Tx, r *model.Role) error {
	return putJSON(tx.Bucket(bucketRoles), key(r.ID), r)
}

// DeleteRole removes a role.
func DeleteRole(tx *bbolt.Tx, id string) error {
	return tx.Bucket(bucketRoles).Delete(key(id))
}

// ListRoles returns a page of roles in id order.
func ListRoles(tx *bbolt.Tx, page Page) ([]*model.Role, error) {
	return scanPage[model.Role](tx.Bucket(bucketRoles), nil, page, nil)
}

// TokensWithRole counts tokens that reference a role.
func TokensWithRole(tx *bbolt.Tx, role string) (int, error) {
	held, err := TokensHoldingRole(tx, role)
	return len(held), err
}

// TokensHoldingRole returns the tokens that reference a role, in id order.
// It walks every token; roles are deleted rarely.
func TokensHoldingRole(tx *bbolt.Tx, role string) ([]*model.StoredToken, error) {
	all, err := scanAll[model.StoredToken](tx.Bucket(bucketTokens), nil)
	if err != nil {
		return nil, err
	}
	var out []*model.StoredToken
	for _, t := range all {
		if slices.Contains(t.Roles, role) {
			out = append(out, t)
		}
	}
	return out, nil
}
