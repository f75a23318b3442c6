package store

import (
	"bytes"
	"encoding/json"
	"maps"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// Migration of fat task executions to slim ones (store/taskconfig.go).
// The leader finds candidates with FatTasks and the FSM rewrites them with
// SlimTask, which checks again: the scan and the apply may see different
// states.

// TaskRecordRef names a task execution.
type TaskRecordRef struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	RunID       int64  `json:"run_id"`
	TaskID      string `json:"task_id"`
}

// SlimTask rewrites a fat task execution slim when its run's config
// version still holds exactly its task (and, before its first attempt,
// exactly the config's variables), so every reader gets the same answer
// from either form. It reports whether it rewrote; a slim, missing or
// unconvertible record (its version was deleted before it could be
// referred to, or holds another task) is left as it is. Deterministic: it
// reads only the state.
func SlimTask(tx *bbolt.Tx, ref TaskRecordRef) (bool, error) {
	t, ok, err := slimmable(tx, tx.Bucket(bucketTasks).Get(taskKey(ref.NamespaceID, ref.PipelineID, ref.RunID, ref.TaskID)))
	if !ok || err != nil {
		return false, err
	}
	if err := ReferConfig(tx, t.NamespaceID, t.PipelineID, t.ConfigVersion, 1); err != nil {
		return false, err
	}
	return true, PutTask(tx, t)
}

// slimmable decodes a stored fat record and, when it can be slim, returns
// it with ConfigVersion set. A slim record is told apart by its last bytes
// (slimRecordVersion) and never decoded, so a look over a migrated state
// costs a suffix check per record.
func slimmable(tx *bbolt.Tx, raw []byte) (*model.TaskExecution, bool, error) {
	if raw == nil {
		return nil, false, nil
	}
	if _, slim := slimRecordVersion(raw); slim {
		return nil, false, nil // already slim: no need to decode it
	}
	var t model.TaskExecution
	if err := unmarshalRecord(raw, &t); err != nil {
		return nil, false, err
	}
	if t.ConfigVersion != 0 || t.Task == nil {
		return nil, false, nil
	}
	run, err := GetRun(tx, t.NamespaceID, t.PipelineID, t.RunID)
	if err != nil || run == nil {
		return nil, false, err
	}
	task, err := ConfigTask(tx, t.NamespaceID, t.PipelineID, run.ConfigVersion, t.TaskID)
	if err != nil || task == nil {
		return nil, false, err
	}
	same, err := sameJSON(t.Task, task)
	if err != nil || !same {
		return nil, false, err
	}
	if t.Attempt == 0 {
		// A slim record reads maps.Clone(task.Variables) back: equal
		// contents and the same nil-ness (null and {} encode apart).
		if (t.Variables == nil) != (task.Variables == nil) || !maps.Equal(t.Variables, task.Variables) {
			return nil, false, nil
		}
	}
	t.ConfigVersion = run.ConfigVersion
	return &t, true, nil
}

func sameJSON(a, b any) (bool, error) {
	ja, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	jb, err := json.Marshal(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ja, jb), nil
}

// FatTasks returns up to limit task executions from key from on (nil: the
// first) that SlimTask would rewrite, looking at no more than scan
// records, and the key to resume from (nil once the scan reached the end).
func FatTasks(tx *bbolt.Tx, from []byte, limit, scan int) ([]TaskRecordRef, []byte, error) {
	var out []TaskRecordRef
	c := tx.Bucket(bucketTasks).Cursor()
	k, v := c.First()
	if from != nil {
		k, v = c.Seek(from)
	}
	for seen := 0; k != nil; k, v = c.Next() {
		if len(out) >= limit || seen >= scan {
			return out, bytes.Clone(k), nil
		}
		seen++
		t, ok, err := slimmable(tx, v)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out = append(out, TaskRecordRef{NamespaceID: t.NamespaceID, PipelineID: t.PipelineID, RunID: t.RunID, TaskID: t.TaskID})
		}
	}
	return out, nil, nil
}
