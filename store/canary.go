package store

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// A canary's run durations live under one key per counted run, not in the
// deployment record: key = deployment key ++ BE(run id), value = BE(duration
// ms). Appending to a list inside the record rewrote the whole record —
// up to agent/canary.MaxRuns durations, ~100 KB — on every run finish; a
// key costs one small write. Only the canary arm keeps durations (its p95
// bound), so the key names no arm. Records written before (and by log
// entries older than envelope version 4) keep their durations inside
// CanaryArm.DurationsMillis; readers take both (WithCanaryDurations).

// PutCanaryDuration records how long run ran, as evidence of canary
// deployment d.
func PutCanaryDuration(tx *bbolt.Tx, ns, pipeline string, deployment, run int64, ms int64) error {
	return tx.Bucket(bucketCanaryDurations).Put(
		append(deploymentKey(ns, pipeline, deployment), u64(uint64(run))...), u64(uint64(ms)))
}

// CanaryDurations returns the durations kept under per-run keys for a
// deployment, in run id order.
func CanaryDurations(tx *bbolt.Tx, ns, pipeline string, deployment int64) []int64 {
	pfx := deploymentKey(ns, pipeline, deployment)
	var out []int64
	c := tx.Bucket(bucketCanaryDurations).Cursor()
	for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
		out = append(out, int64(parseU64(v)))
	}
	return out
}

// WithCanaryDurations completes a canary deployment read from the store:
// the durations kept under per-run keys are appended to those the record
// itself holds (records of the old shape), so d carries every duration
// counted, as the API answers it. It changes d only; never store d back
// (the keyed durations would then be kept twice).
func WithCanaryDurations(tx *bbolt.Tx, d *model.Deployment) {
	if d == nil || d.Canary == nil {
		return
	}
	keyed := CanaryDurations(tx, d.NamespaceID, d.PipelineID, d.DeploymentID)
	if len(keyed) > 0 {
		arm := &d.Canary.Canary
		arm.DurationsMillis = append(append(make([]int64, 0, len(arm.DurationsMillis)+len(keyed)), arm.DurationsMillis...), keyed...)
	}
}

// checkCanaryDuration checks a duration value.
func checkCanaryDuration(v []byte) error {
	if len(v) != 8 {
		return fmt.Errorf("canary duration is %d bytes, not an 8-byte number", len(v))
	}
	return nil
}
