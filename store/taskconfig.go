package store

import (
	"bytes"
	"container/list"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// Slim task executions (fsm/DESIGN.md, "Version 6: slim task executions").
//
// A fat record embeds its task's config and, until the task is scheduled,
// a copy of the config's variables: 5–6 KB rewritten on every log append
// and status change. A slim record names its run's pipeline config version
// instead (ConfigVersion), and readers take the task's config from that
// version. Until the first attempt is scheduled (Attempt 0) its variables
// are the config's and are not stored either; from then on they are the
// environment the executor computed (system variables including the
// leader's API address, the config's, the run's), which the state cannot
// rebuild, so they stay.
//
// Config versions are pruned (retention) and deleted while runs that used
// them remain, so config_refs counts the slim records naming each version
// (configrefs.go); deleting a counted version moves it to
// retained_configs, where readers still find it, until the last record
// naming it is deleted. Both go with their pipeline or namespace.

// slimRecord is the stored form of a slim task execution: the record
// without its task, plus the version that holds it. TaskExecution has no
// MarshalJSON, so the embedded fields encode as they always did.
type slimRecord struct {
	*model.TaskExecution
	ConfigVersion int64 `json:"pipeline_config_version"`
}

// encodeTask is a task execution's stored bytes: fat records exactly as
// before, slim ones without the task (and without the config's variables
// while Attempt is 0).
func encodeTask(t *model.TaskExecution) ([]byte, error) {
	if t.ConfigVersion == 0 {
		return json.Marshal(t)
	}
	c := *t
	c.Task = nil
	if c.Attempt == 0 {
		c.Variables = nil
	}
	return json.Marshal(slimRecord{TaskExecution: &c, ConfigVersion: t.ConfigVersion})
}

// resolveTask fills in a slim record's task and, before its first
// attempt, its variables. Fat records are left as they are.
func resolveTask(tx *bbolt.Tx, t *model.TaskExecution) error {
	return newTaskResolver(tx).resolve(t)
}

// taskResolver resolves the slim records of one read transaction, looking
// each config version up (and checking it against the cache) once: a list
// of a run's N records costs one lookup, not N.
type taskResolver struct {
	tx       *bbolt.Tx
	versions map[configCacheKey]map[string]*sdk.TaskConfig
}

func newTaskResolver(tx *bbolt.Tx) *taskResolver { return &taskResolver{tx: tx} }

func (r *taskResolver) resolve(t *model.TaskExecution) error {
	if t.ConfigVersion == 0 || t.Task != nil {
		return nil
	}
	k := configCacheKey{t.NamespaceID, t.PipelineID, t.ConfigVersion}
	tasks, ok := r.versions[k]
	if !ok {
		var err error
		if tasks, err = configTasksOf(r.tx, k); err != nil {
			return err
		}
		if r.versions == nil {
			r.versions = map[configCacheKey]map[string]*sdk.TaskConfig{}
		}
		r.versions[k] = tasks
	}
	task := tasks[t.TaskID]
	if task == nil {
		return fmt.Errorf("task execution %s/%s run %d task %q: config version %d is gone", t.NamespaceID, t.PipelineID, t.RunID, t.TaskID, t.ConfigVersion)
	}
	t.Task = task
	if t.Attempt == 0 {
		t.Variables = maps.Clone(task.Variables)
	}
	return nil
}

// TaskDecoder decodes the records ForEachTaskRaw passes, resolving each
// config version once per decoder (use one per read transaction).
type TaskDecoder struct{ r *taskResolver }

// NewTaskDecoder returns a decoder for records read in tx.
func NewTaskDecoder(tx *bbolt.Tx) *TaskDecoder { return &TaskDecoder{r: newTaskResolver(tx)} }

// Decode decodes a record, its task config filled in. A slim record whose
// version cannot be read is returned as stored (Task nil) with the error,
// so a caller can deal with that one record and go on.
func (d *TaskDecoder) Decode(v []byte) (*model.TaskExecution, error) {
	var t model.TaskExecution
	if err := unmarshalRecord(v, &t); err != nil {
		return nil, err
	}
	return &t, d.r.resolve(&t)
}

// configRaw returns a config version's stored bytes, from the configs or,
// once deleted while slim records named it, from retained_configs.
func configRaw(tx *bbolt.Tx, ns, pipeline string, version int64) []byte {
	k := configKey(ns, pipeline, version)
	if raw := tx.Bucket(bucketConfigs).Get(k); raw != nil {
		return raw
	}
	return tx.Bucket(bucketRetainedConfigs).Get(k)
}

// configTasksOf returns a config version's tasks by id (empty if the
// version is not stored), through the cache.
func configTasksOf(tx *bbolt.Tx, k configCacheKey) (map[string]*sdk.TaskConfig, error) {
	raw := configRaw(tx, k.ns, k.pipeline, k.version)
	if raw == nil {
		return nil, nil
	}
	tasks, err := configTasks.get(k, raw)
	if err != nil {
		return nil, fmt.Errorf("decode config %s/%s version %d: %w", k.ns, k.pipeline, k.version, err)
	}
	return tasks, nil
}

// ConfigTask returns task id of a config version (nil if the version or
// the task is not there). The *sdk.TaskConfig is shared with other
// readers through the cache: never modify it (the FSM, which must never
// let one replica's memory decide what it writes, uses OwnConfigTask).
func ConfigTask(tx *bbolt.Tx, ns, pipeline string, version int64, task string) (*sdk.TaskConfig, error) {
	tasks, err := configTasksOf(tx, configCacheKey{ns, pipeline, version})
	if err != nil {
		return nil, err
	}
	return tasks[task], nil
}

// OwnConfigTask is ConfigTask decoded from the stored bytes for the
// caller alone, bypassing the cache: the FSM's appliers use it, so no
// mutation of a shared, cached config can ever reach what they write.
func OwnConfigTask(tx *bbolt.Tx, ns, pipeline string, version int64, task string) (*sdk.TaskConfig, error) {
	raw := configRaw(tx, ns, pipeline, version)
	if raw == nil {
		return nil, nil
	}
	var cfg model.PipelineConfig
	if err := unmarshalRecord(raw, &cfg); err != nil {
		return nil, fmt.Errorf("decode config %s/%s version %d: %w", ns, pipeline, version, err)
	}
	for _, t := range cfg.Tasks {
		if t.ID == task {
			return t, nil
		}
	}
	return nil, nil
}

// configCacheBudget bounds the memory of the decoded configs kept,
// counted as twice their stored size (the copy of the bytes that checks
// an entry, and the decoded config, which is of the same order): 16 MiB
// holds ~1500 versions of 5 KB, so a node's active runs' versions stay
// decoded however many pipelines run, and an executor pass does not decode
// a config per record.
const configCacheBudget = 16 << 20

type configCacheKey struct {
	ns, pipeline string
	version      int64
}

type configCacheEntry struct {
	key   configCacheKey
	raw   []byte
	tasks map[string]*sdk.TaskConfig
}

// configCache keeps decoded config versions by (namespace, pipeline,
// version), least recently used first out once over budget. An entry is
// used only while the stored bytes are the ones it was decoded from: a
// pipeline deleted and registered again reuses its version numbers, a
// restored snapshot may hold other configs, and one process may hold
// several state files (tests) — comparing the bytes (a memcmp, far
// cheaper than decoding, and done once per version per read: taskResolver)
// makes every such case a miss without any invalidation.
type configCache struct {
	mu      sync.Mutex
	budget  int
	used    int
	entries map[configCacheKey]*list.Element // of *configCacheEntry
	lru     *list.List                       // most recently used first
	// lookups counts gets and decodes the configs decoded (tests).
	lookups, decodes atomic.Int64
}

func newConfigCache(budget int) *configCache {
	return &configCache{budget: budget, entries: map[configCacheKey]*list.Element{}, lru: list.New()}
}

var configTasks = newConfigCache(configCacheBudget)

func entryCost(raw []byte) int { return 2 * len(raw) }

func (c *configCache) get(k configCacheKey, raw []byte) (map[string]*sdk.TaskConfig, error) {
	c.lookups.Add(1)
	c.mu.Lock()
	if el, ok := c.entries[k]; ok {
		if e := el.Value.(*configCacheEntry); bytes.Equal(e.raw, raw) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.tasks, nil
		}
	}
	c.mu.Unlock()
	var cfg model.PipelineConfig
	c.decodes.Add(1)
	if err := unmarshalRecord(raw, &cfg); err != nil {
		return nil, err
	}
	tasks := make(map[string]*sdk.TaskConfig, len(cfg.Tasks))
	for _, t := range cfg.Tasks {
		tasks[t.ID] = t
	}
	e := &configCacheEntry{key: k, raw: bytes.Clone(raw), tasks: tasks}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		c.remove(el)
	}
	if entryCost(e.raw) > c.budget {
		return tasks, nil // larger than the whole budget: not kept
	}
	c.entries[k] = c.lru.PushFront(e)
	c.used += entryCost(e.raw)
	for c.used > c.budget {
		c.remove(c.lru.Back())
	}
	return tasks, nil
}

func (c *configCache) remove(el *list.Element) {
	e := el.Value.(*configCacheEntry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.used -= entryCost(e.raw)
}
