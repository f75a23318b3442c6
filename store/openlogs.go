package store

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// The open-logs index lists the complete tasks whose log is still open
// (TaskExecution.LogsOpen): key = the task's key, value = BE(Ended, epoch
// ms). The leader reads it to close the logs nobody else will (the worker
// that finished the task died, or its close was not replicated), without
// scanning every task. The FSM keeps it in step with LogsOpen.

// PutOpenLog records that t completed with its log open.
func PutOpenLog(tx *bbolt.Tx, t *model.TaskExecution) error {
	return tx.Bucket(bucketOpenLogs).Put(taskKey(t.NamespaceID, t.PipelineID, t.RunID, t.TaskID), u64(uint64(t.Ended)))
}

// DeleteOpenLog drops t from the index (its log was closed).
func DeleteOpenLog(tx *bbolt.Tx, t *model.TaskExecution) error {
	return tx.Bucket(bucketOpenLogs).Delete(taskKey(t.NamespaceID, t.PipelineID, t.RunID, t.TaskID))
}

// OpenLogsEndedBy returns, in key order, the tasks in the index that
// ended at or before the epoch ms by, and the earliest Ended of those left
// (0 if none).
func OpenLogsEndedBy(tx *bbolt.Tx, by int64) (due []*model.TaskExecution, next int64, err error) {
	tasks := tx.Bucket(bucketTasks)
	err = tx.Bucket(bucketOpenLogs).ForEach(func(k, v []byte) error {
		ended := int64(parseU64(v))
		if ended > by {
			if next == 0 || ended < next {
				next = ended
			}
			return nil
		}
		raw := tasks.Get(k)
		if raw == nil {
			return nil // the FSM drops entries with their tasks; tolerate one left
		}
		var t model.TaskExecution
		if err := unmarshalRecord(raw, &t); err != nil {
			return err
		}
		due = append(due, &t)
		return nil
	})
	return due, next, err
}

// checkOpenLog checks an index value: the task's end time.
func checkOpenLog(v []byte) error {
	if len(v) != 8 {
		return fmt.Errorf("open-log entry is %d bytes, not an 8-byte time", len(v))
	}
	return nil
}

// RunHasOpenLogs reports whether any task of r still has an open log.
func RunHasOpenLogs(tx *bbolt.Tx, r *model.Run) bool {
	pfx := runKey(r.NamespaceID, r.PipelineID, r.RunID)
	k, _ := tx.Bucket(bucketOpenLogs).Cursor().Seek(pfx)
	return k != nil && bytes.HasPrefix(k, pfx)
}
