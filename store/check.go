package store

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// CheckFile fully verifies a state file offered from outside (a backup
// being restored): every page is reachable exactly once, every bucket is
// known, and every record decodes as its type. It opens the file
// read-write with the live options, so it exercises exactly what the FSM
// will do with it.
//
// bbolt reports some corruption by panicking, sometimes on a goroutine of
// its own where no recover can reach it. Callers that must survive a
// hostile file therefore run CheckFile in a child process (see
// `gofer service check-state`) and treat its death as "invalid".
func CheckFile(path string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrInvalidStateFile, r)
		}
	}()
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidStateFile, err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		for cerr := range tx.Check() {
			return fmt.Errorf("%w: %v", ErrInvalidStateFile, cerr)
		}
		if err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			if _, ok := recordTypes[string(name)]; !ok {
				return fmt.Errorf("%w: unknown bucket %q", ErrInvalidStateFile, name)
			}
			return nil
		}); err != nil {
			return err
		}
		for name, decode := range recordTypes {
			if decode == nil {
				continue
			}
			b := tx.Bucket([]byte(name))
			if err := b.ForEach(func(k, v []byte) error {
				if v == nil {
					return fmt.Errorf("%w: nested bucket %q inside %q", ErrInvalidStateFile, k, name)
				}
				if err := decode(v); err != nil {
					return fmt.Errorf("%w: bucket %q key %q: %v", ErrInvalidStateFile, name, k, err)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return checkMeta(tx)
	})
}

func checkMeta(tx *bbolt.Tx) error {
	b := tx.Bucket(bucketMeta)
	for _, k := range [][]byte{keyAppliedIndex, keyAppliedTerm, keyEventSeq, keyRunSeq} {
		if v := b.Get(k); v != nil && len(v) != 8 {
			return fmt.Errorf("%w: meta %q is not an 8-byte number", ErrInvalidStateFile, k)
		}
	}
	if v := b.Get(keySystem); v != nil {
		var s model.System
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("%w: meta system: %v", ErrInvalidStateFile, err)
		}
	}
	return nil
}

// decodeAs returns a decoder that checks a value is a JSON T.
func decodeAs[T any]() func([]byte) error {
	return func(v []byte) error {
		var x T
		return json.Unmarshal(v, &x)
	}
}

// recordTypes maps every bucket to the check for its values; nil means the
// values are raw (ids, empty markers) and need no decoding. A bucket added
// to allBuckets must be added here too (TestRecordTypesCoverAllBuckets).
var recordTypes = map[string]func([]byte) error{
	string(bucketMeta):               nil, // checked by checkMeta
	string(bucketNamespaces):         decodeAs[model.Namespace](),
	string(bucketPipelines):          decodeAs[model.Pipeline](),
	string(bucketConfigs):            decodeAs[model.PipelineConfig](),
	string(bucketDeployments):        decodeAs[model.Deployment](),
	string(bucketTokens):             decodeAs[model.StoredToken](),
	string(bucketTokenHashes):        nil,
	string(bucketRoles):              decodeAs[model.Role](),
	string(bucketEvents):             decodeAs[model.Event](),
	string(bucketServers):            decodeAs[model.Server](),
	string(bucketIdempotency):        decodeAs[IdempotencyRecord](),
	string(bucketIdempotencyByTime):  nil,
	string(bucketRuns):               decodeAs[model.Run](),
	string(bucketTasks):              decodeAs[model.TaskExecution](),
	string(bucketActiveRuns):         nil,
	string(bucketRunKeys):            nil,
	string(bucketLogs):               nil,
	string(bucketPipelineSecrets):    decodeAs[model.StoredSecret](),
	string(bucketGlobalSecrets):      decodeAs[model.StoredSecret](),
	string(bucketPipelineObjects):    decodeAs[model.Object](),
	string(bucketPipelineObjectData): nil,
	string(bucketRunObjects):         decodeAs[model.Object](),
	string(bucketRunObjectData):      nil,
	string(bucketExtensions):         decodeAs[model.Extension](),
	string(bucketSubscriptions):      decodeAs[model.Subscription](),
	string(bucketTriggerKeys):        nil,
	string(bucketOpenLogs):           checkOpenLog,
	string(bucketCanaryDurations):    checkCanaryDuration,
	string(bucketConfigRefs):         checkConfigRefCount,
	string(bucketRetainedConfigs):    decodeAs[model.PipelineConfig](),
}
