package canary

import (
	"encoding/binary"
	"hash/fnv"
)

// Assign says whether run runID of a pipeline goes to the canary version
// of deployment deploymentID: the FNV-1a hash of the two ids, taken
// modulo 100, below policy.Percent.
//
// Why deterministic rather than random:
//   - explainable: anyone can recompute why run 17 ran the new version
//     (the deployment record can show the bucket next to the percent);
//   - stable across failover and replicas: a new leader, or a follower
//     answering a read, computes the same split for the same run, so a
//     run is never assigned twice with different answers;
//   - no stored randomness: nothing extra has to go through raft, and
//     an FSM applier may call Assign (it is a pure function).
//
// The deployment id is part of the hash so the same run ids do not land
// in the same buckets in every deployment (the same pipeline's run 1 is
// not always the canary). Percent outside 1..99 is not refused here
// (Policy.Validate does): 0 or less sends nothing, 100 or more everything.
func Assign(policy Policy, deploymentID int64, runID int64) (canary bool) {
	return Bucket(deploymentID, runID) < policy.Percent
}

// Bucket is the run's place in 0..99 that Assign compares with the
// percent; exposed so the deployment record can explain a split.
func Bucket(deploymentID int64, runID int64) int {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(deploymentID))
	binary.BigEndian.PutUint64(b[8:], uint64(runID))
	h := fnv.New64a()
	h.Write(b[:]) // a hash.Hash never returns an error
	// 2^64 mod 100 = 16: the bias towards the low 16 buckets is 1 in 10^17.
	return int(h.Sum64() % 100)
}
