package store

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"go.etcd.io/bbolt"
)

// References from slim task executions to config versions (fsm/DESIGN.md,
// "Version 6"). config_refs holds, per version, how many stored slim
// records name it (8 bytes, big-endian, never 0: a version no record names
// has no entry). A version deleted while counted is kept in
// retained_configs; when the last record naming it goes (DeleteRun), the
// count and the retained copy go too, so a version pruned or deleted on
// purpose does not outlive the runs that used it. Everything here reads
// and writes the state only, so every replica counts the same.

// ReferConfig counts n more slim records naming a config version, so
// that deleting the version keeps it where readers look.
func ReferConfig(tx *bbolt.Tx, ns, pipeline string, version int64, n uint64) error {
	if n == 0 {
		return nil
	}
	b := tx.Bucket(bucketConfigRefs)
	k := configKey(ns, pipeline, version)
	return b.Put(k, u64(parseU64(b.Get(k))+n))
}

// ConfigRefs is how many stored slim records name a config version.
func ConfigRefs(tx *bbolt.Tx, ns, pipeline string, version int64) uint64 {
	return parseU64(tx.Bucket(bucketConfigRefs).Get(configKey(ns, pipeline, version)))
}

// releaseConfig counts n fewer slim records naming a version; at none,
// its count and any retained copy are deleted (a version still in the
// configs has no retained copy: it is copied only when deleted).
func releaseConfig(tx *bbolt.Tx, ns, pipeline string, version int64, n uint64) error {
	b := tx.Bucket(bucketConfigRefs)
	k := configKey(ns, pipeline, version)
	if have := parseU64(b.Get(k)); have > n {
		return b.Put(k, u64(have-n))
	}
	if err := b.Delete(k); err != nil {
		return err
	}
	return tx.Bucket(bucketRetainedConfigs).Delete(k)
}

// releaseRunConfigs releases the versions a run's slim records name,
// before the records are deleted. It reads no record in full
// (slimRecordVersion), and a run of fat records changes nothing.
func releaseRunConfigs(tx *bbolt.Tx, ns, pipeline string, run int64) error {
	counts := map[int64]uint64{}
	if err := ForEachTaskRaw(tx, ns, pipeline, run, func(_, v []byte) error {
		if version, ok := slimRecordVersion(v); ok {
			counts[version]++
		}
		return nil
	}); err != nil {
		return err
	}
	versions := make([]int64, 0, len(counts))
	for v := range counts {
		versions = append(versions, v)
	}
	slices.Sort(versions) // one order on every replica
	for _, v := range versions {
		if err := releaseConfig(tx, ns, pipeline, v, counts[v]); err != nil {
			return err
		}
	}
	return nil
}

// retainIfReferred copies a config version that slim records name to
// retained_configs before it is deleted. With no slim records (every
// record written by entries before envelope version 6) it does nothing.
func retainIfReferred(tx *bbolt.Tx, ns, pipeline string, version int64) error {
	k := configKey(ns, pipeline, version)
	if tx.Bucket(bucketConfigRefs).Get(k) == nil {
		return nil
	}
	raw := tx.Bucket(bucketConfigs).Get(k)
	if raw == nil {
		return nil
	}
	return tx.Bucket(bucketRetainedConfigs).Put(k, bytes.Clone(raw))
}

// slimKeySuffix ends every slim record but its version and closing brace:
// encodeTask writes slimRecord, whose ConfigVersion field follows all of
// the embedded record's.
var slimKeySuffix = []byte(`,"pipeline_config_version":`)

// slimRecordVersion tells a stored slim record from a fat one without
// decoding it, and returns the version it names. Sound because the key
// closes a slim record and never a fat one: a fat record ends with a
// boolean (logs_removed, logs_open), and the key inside any string or
// nested object (a variable named so) is followed by a quote or more
// fields, never by digits and the last brace.
func slimRecordVersion(raw []byte) (int64, bool) {
	end := len(raw) - 1
	if end < 0 || raw[end] != '}' {
		return 0, false
	}
	i := end
	for i > 0 && raw[i-1] >= '0' && raw[i-1] <= '9' {
		i--
	}
	if i == end || !bytes.HasSuffix(raw[:i], slimKeySuffix) {
		return 0, false
	}
	v, err := strconv.ParseInt(string(raw[i:end]), 10, 64)
	if err != nil || v <= 0 {
		return 0, false
	}
	return v, true
}

// checkConfigRefCount checks a config_refs value (CheckFile).
func checkConfigRefCount(v []byte) error {
	if len(v) != 8 || parseU64(v) == 0 {
		return fmt.Errorf("config reference count is %x, not an 8-byte number above 0", v)
	}
	return nil
}
