package store

import (
	"bytes"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// GetExtension returns an extension registration or nil.
func GetExtension(tx *bbolt.Tx, id string) (*model.Extension, error) {
	var e model.Extension
	ok, err := getJSON(tx.Bucket(bucketExtensions), key(id), &e)
	if !ok || err != nil {
		return nil, err
	}
	return &e, nil
}

// PutExtension creates or replaces an extension registration.
func PutExtension(tx *bbolt.Tx, e *model.Extension) error {
	return putJSON(tx.Bucket(bucketExtensions), key(e.ID), e)
}

// ListExtensions returns a page of extensions in id order.
func ListExtensions(tx *bbolt.Tx, page Page) ([]*model.Extension, error) {
	return scanPage[model.Extension](tx.Bucket(bucketExtensions), nil, page, nil)
}

// AllExtensions reads every registration, for the leader's supervisor
// (installs are few: one per extension, written by admins).
func AllExtensions(tx *bbolt.Tx) ([]*model.Extension, error) {
	return scanAll[model.Extension](tx.Bucket(bucketExtensions), nil)
}

// DeleteExtension removes a registration with every subscription to it and
// its trigger keys. It walks all subscriptions and keys: uninstalls are rare.
func DeleteExtension(tx *bbolt.Tx, id string) error {
	if err := tx.Bucket(bucketExtensions).Delete(key(id)); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketSubscriptions, bucketTriggerKeys} {
		if err := deleteWhere(tx.Bucket(name), func(k []byte) bool { return extensionOfKey(k) == id }); err != nil {
			return err
		}
	}
	return nil
}

// extensionOfKey is the third part of a (ns, pipeline, extension, …) key.
func extensionOfKey(k []byte) string {
	parts := bytes.SplitN(k, []byte{0}, 4)
	if len(parts) < 4 {
		return ""
	}
	return string(parts[2])
}

func deleteWhere(b *bbolt.Bucket, match func(k []byte) bool) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if match(k) {
			keys = append(keys, append([]byte(nil), k...))
		}
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// GetSubscription returns a pipeline subscription or nil.
func GetSubscription(tx *bbolt.Tx, ns, pipeline, ext, id string) (*model.Subscription, error) {
	var s model.Subscription
	ok, err := getJSON(tx.Bucket(bucketSubscriptions), key(ns, pipeline, ext, id), &s)
	if !ok || err != nil {
		return nil, err
	}
	return &s, nil
}

// PutSubscription creates or replaces a subscription.
func PutSubscription(tx *bbolt.Tx, s *model.Subscription) error {
	return putJSON(tx.Bucket(bucketSubscriptions), key(s.NamespaceID, s.PipelineID, s.ExtensionID, s.SubscriptionID), s)
}

// DeleteSubscription removes a subscription. Its trigger keys stay until
// they are pruned, so a subscription deleted and made again under the same
// id still starts at most one run per key.
func DeleteSubscription(tx *bbolt.Tx, s *model.Subscription) error {
	if err := tx.Bucket(bucketSubscriptions).Delete(key(s.NamespaceID, s.PipelineID, s.ExtensionID, s.SubscriptionID)); err != nil {
		return err
	}
	return nil
}

// ListPipelineSubscriptions returns a page of a pipeline's subscriptions.
func ListPipelineSubscriptions(tx *bbolt.Tx, ns, pipeline string, page Page) ([]*model.Subscription, error) {
	return scanPage[model.Subscription](tx.Bucket(bucketSubscriptions), prefix(ns, pipeline), page, nil)
}

// CountActiveExtensionSubscriptions counts an extension's active
// subscriptions on one pipeline.
func CountActiveExtensionSubscriptions(tx *bbolt.Tx, ns, pipeline, ext string) (int, error) {
	subs, err := scanAll[model.Subscription](tx.Bucket(bucketSubscriptions), prefix(ns, pipeline, ext))
	n := 0
	for _, s := range subs {
		if s.Status == model.SubscriptionActive {
			n++
		}
	}
	return n, err
}

// ListExtensionSubscriptions returns a page of one extension's
// subscriptions across namespaces; keep filters (by namespace access)
// before the page is cut. It walks every subscription.
func ListExtensionSubscriptions(tx *bbolt.Tx, ext string, page Page, keep func(*model.Subscription) bool) ([]*model.Subscription, error) {
	return scanPage(tx.Bucket(bucketSubscriptions), nil, page, func(s *model.Subscription) bool {
		return s.ExtensionID == ext && (keep == nil || keep(s))
	})
}

// GetTriggerKey returns the run a trigger key started (0 if none).
func GetTriggerKey(tx *bbolt.Tx, ns, pipeline, ext, triggerKey string) int64 {
	v := tx.Bucket(bucketTriggerKeys).Get(key(ns, pipeline, ext, triggerKey))
	if len(v) < 8 {
		return 0
	}
	return int64(parseU64(v[:8]))
}

// PutTriggerKey records that a trigger key started run runID at time at.
func PutTriggerKey(tx *bbolt.Tx, ns, pipeline, ext, triggerKey string, runID, at int64) error {
	return tx.Bucket(bucketTriggerKeys).Put(key(ns, pipeline, ext, triggerKey), append(u64(uint64(runID)), u64(uint64(at))...))
}

// PruneTriggerKeys deletes up to max trigger keys recorded before before
// (epoch ms) and returns how many. It walks the keys in key order, which
// is deterministic on every node.
func PruneTriggerKeys(tx *bbolt.Tx, before int64, max int) (int, error) {
	b := tx.Bucket(bucketTriggerKeys)
	var keys [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil && (max <= 0 || len(keys) < max); k, v = c.Next() {
		if len(v) >= 16 && int64(parseU64(v[8:16])) < before {
			keys = append(keys, append([]byte(nil), k...))
		}
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// TriggerKeyRef names one recorded trigger key.
type TriggerKeyRef struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	ExtensionID string `json:"extension_id"`
	Key         string `json:"key"`
}

// OldTriggerKeys lists up to max trigger keys recorded before before
// (epoch ms), in key order. The leader reads them (a read transaction,
// not the apply) and names them in a Prune command, so an apply deletes
// a bounded list instead of walking every key.
func OldTriggerKeys(tx *bbolt.Tx, before int64, max int) []TriggerKeyRef {
	var out []TriggerKeyRef
	c := tx.Bucket(bucketTriggerKeys).Cursor()
	for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
		if len(v) < 16 || int64(parseU64(v[8:16])) >= before {
			continue
		}
		parts := bytes.SplitN(k, []byte{0}, 4)
		if len(parts) != 4 {
			continue
		}
		out = append(out, TriggerKeyRef{NamespaceID: string(parts[0]), PipelineID: string(parts[1]),
			ExtensionID: string(parts[2]), Key: string(parts[3])})
	}
	return out
}

// DeleteTriggerKeyBefore deletes the trigger key if it was recorded
// before before (epoch ms); a key recorded since, or gone, is kept as it
// is. It reports whether it deleted.
func DeleteTriggerKeyBefore(tx *bbolt.Tx, r TriggerKeyRef, before int64) (bool, error) {
	b := tx.Bucket(bucketTriggerKeys)
	k := key(r.NamespaceID, r.PipelineID, r.ExtensionID, r.Key)
	v := b.Get(k)
	if len(v) < 16 || int64(parseU64(v[8:16])) >= before {
		return false, nil
	}
	return true, b.Delete(k)
}

// StdExtensionsInstalled reports whether the cluster installed its
// standard extensions already (once per cluster, never again).
func StdExtensionsInstalled(tx *bbolt.Tx) bool {
	return tx.Bucket(bucketMeta).Get(keyStdExtensions) != nil
}

// SetStdExtensionsInstalled records that the standard extensions were
// installed.
func SetStdExtensionsInstalled(tx *bbolt.Tx) error {
	return tx.Bucket(bucketMeta).Put(keyStdExtensions, []byte("1"))
}
