package store

import (
	"bytes"
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
// them remain, so a version a slim record names is marked in config_refs;
// deleting a marked version moves it to retained_configs, where readers
// still find it. Both go with their pipeline or namespace.

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
	if t.ConfigVersion == 0 || t.Task != nil {
		return nil
	}
	task, err := ConfigTask(tx, t.NamespaceID, t.PipelineID, t.ConfigVersion, t.TaskID)
	if err != nil {
		return err
	}
	if task == nil {
		return fmt.Errorf("task execution %s/%s run %d task %q: config version %d is gone", t.NamespaceID, t.PipelineID, t.RunID, t.TaskID, t.ConfigVersion)
	}
	t.Task = task
	if t.Attempt == 0 {
		t.Variables = maps.Clone(task.Variables)
	}
	return nil
}

// ResolveTask is resolveTask for the FSM, which reads records unresolved
// (GetTaskRecord) and needs a task's config only when an attempt repeats.
func ResolveTask(tx *bbolt.Tx, t *model.TaskExecution) error { return resolveTask(tx, t) }

// configRaw returns a config version's stored bytes, from the configs or,
// once deleted while slim records named it, from retained_configs.
func configRaw(tx *bbolt.Tx, ns, pipeline string, version int64) []byte {
	k := configKey(ns, pipeline, version)
	if raw := tx.Bucket(bucketConfigs).Get(k); raw != nil {
		return raw
	}
	return tx.Bucket(bucketRetainedConfigs).Get(k)
}

// ConfigTask returns task id of a config version (nil if the version or
// the task is not there). The *sdk.TaskConfig is shared with other
// readers through the cache: never modify it.
func ConfigTask(tx *bbolt.Tx, ns, pipeline string, version int64, task string) (*sdk.TaskConfig, error) {
	raw := configRaw(tx, ns, pipeline, version)
	if raw == nil {
		return nil, nil
	}
	tasks, err := configTasks.get(configCacheKey{ns, pipeline, version}, raw)
	if err != nil {
		return nil, fmt.Errorf("decode config %s/%s version %d: %w", ns, pipeline, version, err)
	}
	return tasks[task], nil
}

// ReferConfig marks a config version as named by slim records, so that
// deleting it keeps it where readers look (retained_configs).
func ReferConfig(tx *bbolt.Tx, ns, pipeline string, version int64) error {
	b := tx.Bucket(bucketConfigRefs)
	k := configKey(ns, pipeline, version)
	if b.Get(k) != nil {
		return nil
	}
	return b.Put(k, []byte{})
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

// configCacheSize bounds the decoded configs kept: a list of 1000 task
// executions of one run decodes its config once, and a node's active runs
// rarely span more versions than this.
const configCacheSize = 64

type configCacheKey struct {
	ns, pipeline string
	version      int64
}

type configCacheEntry struct {
	raw   []byte
	tasks map[string]*sdk.TaskConfig
}

// configCache keeps decoded config versions by (namespace, pipeline,
// version). An entry is used only while the stored bytes are the ones it
// was decoded from: a pipeline deleted and registered again reuses its
// version numbers, a restored snapshot may hold other configs, and one
// process may hold several state files (tests) — comparing the bytes
// (a memcmp, far cheaper than decoding) makes every such case a miss
// without any invalidation.
type configCache struct {
	mu      sync.Mutex
	entries map[configCacheKey]configCacheEntry
	order   []configCacheKey // insertion order, oldest first
	// decodes counts configs decoded (tests).
	decodes atomic.Int64
}

var configTasks = &configCache{entries: map[configCacheKey]configCacheEntry{}}

func (c *configCache) get(k configCacheKey, raw []byte) (map[string]*sdk.TaskConfig, error) {
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.tasks, nil
	}
	var cfg model.PipelineConfig
	c.decodes.Add(1)
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, err
	}
	tasks := make(map[string]*sdk.TaskConfig, len(cfg.Tasks))
	for _, t := range cfg.Tasks {
		tasks[t.ID] = t
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, present := c.entries[k]; !present {
		if len(c.order) >= configCacheSize {
			delete(c.entries, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, k)
	}
	c.entries[k] = configCacheEntry{raw: bytes.Clone(raw), tasks: tasks}
	return tasks, nil
}
