package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// Bucket names. Adding a bucket is fine; renaming one is a migration.
var (
	bucketMeta        = []byte("meta")
	bucketNamespaces  = []byte("namespaces")
	bucketPipelines   = []byte("pipelines")
	bucketConfigs     = []byte("configs")
	bucketDeployments = []byte("deployments")
	bucketTokens      = []byte("tokens")
	bucketTokenHashes = []byte("token_hashes")
	bucketRoles       = []byte("roles")
	bucketEvents      = []byte("events")
	bucketServers     = []byte("servers")
	bucketIdempotency = []byte("idempotency")
	// bucketIdempotencyByTime indexes idempotency keys by record time
	// (big-endian ms ++ key) so pruning walks only expired entries.
	bucketIdempotencyByTime = []byte("idempotency_by_time")
	bucketRuns              = []byte("runs")
	bucketTasks             = []byte("task_executions")
	// bucketActiveRuns maps BE(run seq) to the key of every unfinished run.
	bucketActiveRuns = []byte("active_runs")
	// bucketRunKeys maps (ns, pipeline, idempotency key) to a run id
	// (8 bytes) followed by the hash of the request that started it.
	bucketRunKeys = []byte("run_keys")
	bucketLogs    = []byte("logs")
	// Secrets hold sealed values (store/seal); objects keep metadata and
	// bytes apart so listing never reads the bytes.
	bucketPipelineSecrets    = []byte("pipeline_secrets")
	bucketGlobalSecrets      = []byte("global_secrets")
	bucketPipelineObjects    = []byte("pipeline_objects")
	bucketPipelineObjectData = []byte("pipeline_object_data")
	bucketRunObjects         = []byte("run_objects")
	bucketRunObjectData      = []byte("run_object_data")
	// Extensions by id; subscriptions by (ns, pipeline, extension, id);
	// trigger keys by (ns, pipeline, extension, key) → run id (8 bytes)
	// and the time it was recorded (8 bytes, epoch ms).
	bucketExtensions    = []byte("extensions")
	bucketSubscriptions = []byte("subscriptions")
	bucketTriggerKeys   = []byte("trigger_keys")
	// bucketOpenLogs indexes complete tasks whose log is still open
	// (store/openlogs.go).
	bucketOpenLogs = []byte("open_logs")
	// bucketCanaryDurations keeps a canary run's duration per run
	// (store/canary.go).
	bucketCanaryDurations = []byte("canary_durations")
	// bucketConfigRefs marks config versions that slim task executions
	// name (empty values); bucketRetainedConfigs keeps such a version once
	// it is deleted, for those readers (store/taskconfig.go).
	bucketConfigRefs      = []byte("config_refs")
	bucketRetainedConfigs = []byte("retained_configs")

	allBuckets = [][]byte{
		bucketMeta, bucketNamespaces, bucketPipelines, bucketConfigs, bucketDeployments,
		bucketTokens, bucketTokenHashes, bucketRoles, bucketEvents, bucketServers, bucketIdempotency, bucketIdempotencyByTime,
		bucketRuns, bucketTasks, bucketActiveRuns, bucketRunKeys, bucketLogs,
		bucketPipelineSecrets, bucketGlobalSecrets, bucketPipelineObjects, bucketPipelineObjectData,
		bucketRunObjects, bucketRunObjectData, bucketExtensions, bucketSubscriptions, bucketTriggerKeys,
		bucketOpenLogs, bucketCanaryDurations, bucketConfigRefs, bucketRetainedConfigs,
	}
)

// Keys in the meta bucket.
var (
	keyAppliedIndex = []byte("applied_index")
	keyAppliedTerm  = []byte("applied_term")
	keyClusterID    = []byte("cluster_id")
	// keyStdExtensions is set once the standard extensions were installed
	// (fsm CmdExtensionStdInstall), so a later leader does not again.
	keyStdExtensions = []byte("std_extensions_installed")
	keyEventSeq      = []byte("event_seq")
	keySystem        = []byte("system")
	keyRunSeq        = []byte("run_seq")
	// keySecretKeyCheck identifies the key the cluster's secrets are
	// sealed with (seal.Box.KeyCheck).
	keySecretKeyCheck = []byte("secret_key_check")
	// keyKeyRotation holds the encryption key rotation record.
	keyKeyRotation = []byte("secret_key_rotation")
)

func createBuckets(tx *bbolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// key joins id parts with NUL, which the identifier rule forbids inside ids.
func key(parts ...string) []byte {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(p)
	}
	return b.Bytes()
}

// prefix is key(parts...) followed by the separator, so that a scan over
// "ns\x00p\x00" does not also match pipeline "p2".
func prefix(parts ...string) []byte { return append(key(parts...), 0) }

// u64 encodes n big-endian so keys sort numerically.
func u64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

func parseU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// unmarshalRecord is json.Unmarshal(raw, v) for a stored record. The
// records with their own UnmarshalJSON (a run, a task execution, a config
// version) decode through json.Unmarshal inside it, which checks all of
// raw; calling the method directly skips encoding/json's first check of the
// same bytes, which was a sixth of the leader's CPU while placing tasks.
func unmarshalRecord(raw []byte, v any) error {
	if u, ok := v.(json.Unmarshaler); ok {
		return u.UnmarshalJSON(raw)
	}
	return json.Unmarshal(raw, v)
}

func getJSON(b *bbolt.Bucket, k []byte, v any) (bool, error) {
	raw := b.Get(k)
	if raw == nil {
		return false, nil
	}
	if err := unmarshalRecord(raw, v); err != nil {
		return false, fmt.Errorf("decode %q: %w", k, err)
	}
	return true, nil
}

func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, raw)
}

// deletePrefix removes every key starting with p and returns how many.
func deletePrefix(b *bbolt.Bucket, p []byte) (int, error) {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
