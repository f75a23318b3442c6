package store

import (
	"bytes"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// Run keys: prefix(ns, pipeline) ++ BE(run id). Run ids are fixed width,
// so a run's key is also the prefix of its task executions and logs.
func runKey(ns, pipeline string, run int64) []byte {
	return append(prefix(ns, pipeline), u64(uint64(run))...)
}

func taskKey(ns, pipeline string, run int64, task string) []byte {
	return append(runKey(ns, pipeline, run), task...)
}

// logPrefix is taskKey ++ NUL; chunks follow as BE(sequence).
func logPrefix(ns, pipeline string, run int64, task string) []byte {
	return append(taskKey(ns, pipeline, run, task), 0)
}

// GetRun returns a run or nil.
func GetRun(tx *bbolt.Tx, ns, pipeline string, run int64) (*model.Run, error) {
	var r model.Run
	ok, err := getJSON(tx.Bucket(bucketRuns), runKey(ns, pipeline, run), &r)
	if !ok || err != nil {
		return nil, err
	}
	return &r, nil
}

// PutRun creates or replaces a run.
func PutRun(tx *bbolt.Tx, r *model.Run) error {
	return putJSON(tx.Bucket(bucketRuns), runKey(r.NamespaceID, r.PipelineID, r.RunID), r)
}

// ListRuns returns a page of a pipeline's runs, oldest first unless
// reversed.
func ListRuns(tx *bbolt.Tx, ns, pipeline string, page Page) ([]*model.Run, error) {
	return scanPage[model.Run](tx.Bucket(bucketRuns), prefix(ns, pipeline), page, nil)
}

// GetTask returns a task execution, its task config filled in, or nil.
func GetTask(tx *bbolt.Tx, ns, pipeline string, run int64, task string) (*model.TaskExecution, error) {
	t, err := GetTaskRecord(tx, ns, pipeline, run, task)
	if t == nil || err != nil {
		return nil, err
	}
	return t, resolveTask(tx, t)
}

// GetTaskRecord returns a task execution as stored, or nil: a slim
// record's Task is nil (and, before its first attempt, its Variables).
// The FSM's appliers read records so, and PutTask writes them back in the
// same form, so a log append never decodes a config.
func GetTaskRecord(tx *bbolt.Tx, ns, pipeline string, run int64, task string) (*model.TaskExecution, error) {
	var t model.TaskExecution
	ok, err := getJSON(tx.Bucket(bucketTasks), taskKey(ns, pipeline, run, task), &t)
	if !ok || err != nil {
		return nil, err
	}
	return &t, nil
}

// PutTask creates or replaces a task execution, in the form it has: fat
// records embed their task, slim ones (ConfigVersion set) do not.
func PutTask(tx *bbolt.Tx, t *model.TaskExecution) error {
	raw, err := encodeTask(t)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketTasks).Put(taskKey(t.NamespaceID, t.PipelineID, t.RunID, t.TaskID), raw)
}

// ListTasks returns every task execution of a run in task id order (a
// run has at most sdk.MaxTasks of them), task configs filled in.
func ListTasks(tx *bbolt.Tx, ns, pipeline string, run int64) ([]*model.TaskExecution, error) {
	return resolved(tx)(ListTaskRecords(tx, ns, pipeline, run))
}

// ListTaskRecords is ListTasks as stored (GetTaskRecord).
func ListTaskRecords(tx *bbolt.Tx, ns, pipeline string, run int64) ([]*model.TaskExecution, error) {
	return scanAll[model.TaskExecution](tx.Bucket(bucketTasks), runKey(ns, pipeline, run))
}

// ListTasksPage returns a page of a run's task executions in task id
// order (reversed on request), task configs filled in.
func ListTasksPage(tx *bbolt.Tx, ns, pipeline string, run int64, page Page) ([]*model.TaskExecution, error) {
	return resolved(tx)(scanPage[model.TaskExecution](tx.Bucket(bucketTasks), runKey(ns, pipeline, run), page, nil))
}

// resolved fills in the task configs of slim records.
func resolved(tx *bbolt.Tx) func([]*model.TaskExecution, error) ([]*model.TaskExecution, error) {
	return func(ts []*model.TaskExecution, err error) ([]*model.TaskExecution, error) {
		if err != nil {
			return nil, err
		}
		r := newTaskResolver(tx) // each version once per list
		for _, t := range ts {
			if err := r.resolve(t); err != nil {
				return nil, err
			}
		}
		return ts, nil
	}
}

// ForEachTaskRaw calls fn with the key and the encoded record of each of
// a run's task executions, in task id order, for readers that keep
// decoded records across transactions (the executor). Both slices are
// valid only inside the transaction.
func ForEachTaskRaw(tx *bbolt.Tx, ns, pipeline string, run int64, fn func(k, v []byte) error) error {
	pfx := runKey(ns, pipeline, run)
	c := tx.Bucket(bucketTasks).Cursor()
	for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// NextRunSeq hands out the next cluster-wide run sequence number.
func NextRunSeq(tx *bbolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	seq := parseU64(meta.Get(keyRunSeq)) + 1
	return seq, meta.Put(keyRunSeq, u64(seq))
}

// AddActiveRun indexes an unfinished run under its sequence number.
func AddActiveRun(tx *bbolt.Tx, r *model.Run) error {
	return tx.Bucket(bucketActiveRuns).Put(u64(r.Seq), runKey(r.NamespaceID, r.PipelineID, r.RunID))
}

// RemoveActiveRun drops a finished run from the index.
func RemoveActiveRun(tx *bbolt.Tx, r *model.Run) error {
	return tx.Bucket(bucketActiveRuns).Delete(u64(r.Seq))
}

// ActiveRuns returns every unfinished run, oldest first: the executor's
// work list and queue order.
func ActiveRuns(tx *bbolt.Tx) ([]*model.Run, error) {
	runs := tx.Bucket(bucketRuns)
	var out []*model.Run
	err := tx.Bucket(bucketActiveRuns).ForEach(func(_, key []byte) error {
		raw := runs.Get(key)
		if raw == nil {
			return nil
		}
		var r model.Run
		if err := unmarshalRecord(raw, &r); err != nil {
			return err
		}
		out = append(out, &r)
		return nil
	})
	return out, err
}

// GetRunIDByKey finds the run an idempotency key started (0 if none) and
// the hash of the request that started it ("" when recorded before
// requests were hashed).
func GetRunIDByKey(tx *bbolt.Tx, ns, pipeline, key string) (int64, string) {
	v := tx.Bucket(bucketRunKeys).Get(runIdemKey(ns, pipeline, key))
	if len(v) < 8 {
		return 0, ""
	}
	return int64(parseU64(v[:8])), string(v[8:])
}

// PutRunKey records which run an idempotency key started, and the hash of
// the request (appended after the run id; older values are the id alone).
func PutRunKey(tx *bbolt.Tx, ns, pipeline, key string, run int64, requestHash string) error {
	return tx.Bucket(bucketRunKeys).Put(runIdemKey(ns, pipeline, key), append(u64(uint64(run)), requestHash...))
}

func runIdemKey(ns, pipeline, key string) []byte {
	return append(prefix(ns, pipeline), key...)
}

// AppendLogChunk stores chunk number seq of a task's log.
func AppendLogChunk(tx *bbolt.Tx, ns, pipeline string, run int64, task string, seq int64, data []byte) error {
	b := tx.Bucket(bucketLogs)
	// Chunks are appended in order; fill pages fully.
	b.FillPercent = 0.95
	return b.Put(append(logPrefix(ns, pipeline, run, task), u64(uint64(seq))...), data)
}

// LogChunks returns up to limit chunks of a task's log starting at chunk
// number from (counting from 0), and the number of the next chunk.
func LogChunks(tx *bbolt.Tx, ns, pipeline string, run int64, task string, from int64, limit int) ([][]byte, int64) {
	pfx := logPrefix(ns, pipeline, run, task)
	c := tx.Bucket(bucketLogs).Cursor()
	var out [][]byte
	next := from
	for k, v := c.Seek(append(pfx, u64(uint64(from))...)); k != nil && bytes.HasPrefix(k, pfx) && len(out) < limit; k, v = c.Next() {
		out = append(out, bytes.Clone(v))
		next = int64(parseU64(k[len(pfx):])) + 1
	}
	return out, next
}

// DeleteTaskLogs removes every chunk of a task's log.
func DeleteTaskLogs(tx *bbolt.Tx, ns, pipeline string, run int64, task string) error {
	_, err := deletePrefix(tx.Bucket(bucketLogs), logPrefix(ns, pipeline, run, task))
	return err
}

// DeletePipelineRuns removes a pipeline's runs, task executions, logs,
// run objects, run keys, active-run and open-log index entries.
func DeletePipelineRuns(tx *bbolt.Tx, ns, pipeline string) error {
	if err := removeActiveUnder(tx, prefix(ns, pipeline)); err != nil {
		return err
	}
	for _, b := range [][]byte{bucketRuns, bucketTasks, bucketLogs, bucketRunKeys, bucketRunObjects, bucketRunObjectData, bucketOpenLogs} {
		if _, err := deletePrefix(tx.Bucket(b), prefix(ns, pipeline)); err != nil {
			return err
		}
	}
	return nil
}

// removeActiveUnder drops active-run entries whose run key starts with
// pfx. The index holds only unfinished runs, so this walk is short.
func removeActiveUnder(tx *bbolt.Tx, pfx []byte) error {
	b := tx.Bucket(bucketActiveRuns)
	var doomed [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		if bytes.HasPrefix(v, pfx) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// DeleteRun removes one run with everything under its key: its task
// executions, their logs and open-log index entries, and its run objects.
// Its events, trigger keys and canary evidence stay: they are history,
// kept by their own retention. So does the idempotency key that started
// it (a few bytes): a retried start with that key then finds the key
// naming a run that is gone and is refused, instead of starting the run
// again. The pipeline's LastRunID is not touched, so the id is never
// handed out again.
func DeleteRun(tx *bbolt.Tx, r *model.Run) error {
	// Its slim records stop naming their config version (configrefs.go).
	if err := releaseRunConfigs(tx, r.NamespaceID, r.PipelineID, r.RunID); err != nil {
		return err
	}
	pfx := runKey(r.NamespaceID, r.PipelineID, r.RunID)
	for _, b := range [][]byte{bucketTasks, bucketLogs, bucketOpenLogs, bucketRunObjects, bucketRunObjectData} {
		if _, err := deletePrefix(tx.Bucket(b), pfx); err != nil {
			return err
		}
	}
	if err := RemoveActiveRun(tx, r); err != nil {
		return err
	}
	return tx.Bucket(bucketRuns).Delete(pfx)
}

// NthNewestRunID returns the id of the pipeline's n-th newest stored run
// (n counts from 1), or 0 when it has fewer than n runs. It walks keys
// only, from the newest.
func NthNewestRunID(tx *bbolt.Tx, ns, pipeline string, n int64) int64 {
	if n <= 0 {
		return 0
	}
	pfx := prefix(ns, pipeline)
	c := tx.Bucket(bucketRuns).Cursor()
	// Seek past the pipeline's last key: the prefix with every run id
	// bit set.
	k, _ := c.Seek(append(bytes.Clone(pfx), u64(^uint64(0))...))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Prev() {
		if n--; n == 0 {
			return int64(parseU64(k[len(pfx):]))
		}
	}
	return 0
}

// CountTaskRecords counts a run's task executions, walking keys only.
func CountTaskRecords(tx *bbolt.Tx, ns, pipeline string, run int64) int {
	pfx := runKey(ns, pipeline, run)
	c := tx.Bucket(bucketTasks).Cursor()
	n := 0
	for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
		n++
	}
	return n
}

// OldestRunID returns the id of the pipeline's oldest stored run, or 0
// when it has none: one seek.
func OldestRunID(tx *bbolt.Tx, ns, pipeline string) int64 {
	pfx := prefix(ns, pipeline)
	k, _ := tx.Bucket(bucketRuns).Cursor().Seek(pfx)
	if k == nil || !bytes.HasPrefix(k, pfx) {
		return 0
	}
	return int64(parseU64(k[len(pfx):]))
}

// ForEachRun calls fn with each of a pipeline's runs, oldest first, until
// fn returns false.
func ForEachRun(tx *bbolt.Tx, ns, pipeline string, fn func(*model.Run) bool) error {
	pfx := prefix(ns, pipeline)
	c := tx.Bucket(bucketRuns).Cursor()
	for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
		var r model.Run
		if err := unmarshalRecord(v, &r); err != nil {
			return err
		}
		if !fn(&r) {
			return nil
		}
	}
	return nil
}
