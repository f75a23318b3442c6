package store

import (
	"bytes"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// Objects: pipeline objects under (ns, pipeline, key), run objects under
// runKey(ns, pipeline, run) ++ key, so a run's objects share its prefix.
// Metadata and bytes live in parallel buckets under the same key.

func objectSlot(tx *bbolt.Tx, ns, pipeline string, run int64, k string) (meta, data *bbolt.Bucket, ok []byte) {
	if run == 0 {
		return tx.Bucket(bucketPipelineObjects), tx.Bucket(bucketPipelineObjectData), key(ns, pipeline, k)
	}
	return tx.Bucket(bucketRunObjects), tx.Bucket(bucketRunObjectData), append(runKey(ns, pipeline, run), k...)
}

// objectPrefix is the prefix of a pipeline's objects (run 0) or of one
// run's objects.
func objectPrefix(ns, pipeline string, run int64) []byte {
	if run == 0 {
		return prefix(ns, pipeline)
	}
	return runKey(ns, pipeline, run)
}

// GetObjectInfo returns an object's metadata, or nil.
func GetObjectInfo(tx *bbolt.Tx, ns, pipeline string, run int64, k string) (*model.Object, error) {
	mb, _, ok := objectSlot(tx, ns, pipeline, run, k)
	var o model.Object
	found, err := getJSON(mb, ok, &o)
	if !found || err != nil {
		return nil, err
	}
	return &o, nil
}

// GetObjectData returns a copy of an object's bytes, or nil.
func GetObjectData(tx *bbolt.Tx, ns, pipeline string, run int64, k string) []byte {
	_, db, ok := objectSlot(tx, ns, pipeline, run, k)
	if v := db.Get(ok); v != nil {
		return bytes.Clone(v)
	}
	return nil
}

// PutObject creates or replaces an object.
func PutObject(tx *bbolt.Tx, o *model.Object, data []byte) error {
	mb, db, ok := objectSlot(tx, o.NamespaceID, o.PipelineID, o.RunID, o.Key)
	if err := putJSON(mb, ok, o); err != nil {
		return err
	}
	return db.Put(ok, data)
}

// DeleteObject removes an object.
func DeleteObject(tx *bbolt.Tx, ns, pipeline string, run int64, k string) error {
	mb, db, ok := objectSlot(tx, ns, pipeline, run, k)
	if err := mb.Delete(ok); err != nil {
		return err
	}
	return db.Delete(ok)
}

// ListObjects returns a page of a pipeline's objects (run 0) or of a
// run's objects, in key order.
func ListObjects(tx *bbolt.Tx, ns, pipeline string, run int64, page Page) ([]*model.Object, error) {
	mb, _, _ := objectSlot(tx, ns, pipeline, run, "")
	return scanPage[model.Object](mb, objectPrefix(ns, pipeline, run), page, nil)
}

// AllPipelineObjects returns every object of a pipeline (a bounded set:
// the pipeline object limit evicts the oldest).
func AllPipelineObjects(tx *bbolt.Tx, ns, pipeline string) ([]*model.Object, error) {
	return scanAll[model.Object](tx.Bucket(bucketPipelineObjects), prefix(ns, pipeline))
}

// DeleteRunObjects removes every object of one run and says how many.
func DeleteRunObjects(tx *bbolt.Tx, ns, pipeline string, run int64) (int, error) {
	pfx := objectPrefix(ns, pipeline, run)
	n, err := deletePrefix(tx.Bucket(bucketRunObjects), pfx)
	if err != nil {
		return 0, err
	}
	_, err = deletePrefix(tx.Bucket(bucketRunObjectData), pfx)
	return n, err
}

// CountRunObjects counts one run's objects.
func CountRunObjects(tx *bbolt.Tx, ns, pipeline string, run int64) int {
	pfx := objectPrefix(ns, pipeline, run)
	n := 0
	c := tx.Bucket(bucketRunObjects).Cursor()
	for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
		n++
	}
	return n
}
