package store

import (
	"bytes"
	"encoding/json"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// GetPipeline returns the pipeline's metadata or nil.
func GetPipeline(tx *bbolt.Tx, ns, id string) (*model.Pipeline, error) {
	var p model.Pipeline
	ok, err := getJSON(tx.Bucket(bucketPipelines), key(ns, id), &p)
	if !ok || err != nil {
		return nil, err
	}
	return &p, nil
}

// PutPipeline creates or replaces pipeline metadata.
func PutPipeline(tx *bbolt.Tx, p *model.Pipeline) error {
	return putJSON(tx.Bucket(bucketPipelines), key(p.NamespaceID, p.PipelineID), p)
}

// ListPipelines returns a page of one namespace's pipelines in id order;
// keep, when non-nil, filters before the page is cut.
func ListPipelines(tx *bbolt.Tx, ns string, page Page, keep func(*model.Pipeline) bool) ([]*model.Pipeline, error) {
	return scanPage(tx.Bucket(bucketPipelines), prefix(ns), page, keep)
}

// DeletePipeline removes a pipeline with its configs, deployments, runs,
// secrets and objects.
func DeletePipeline(tx *bbolt.Tx, ns, id string) error {
	if err := tx.Bucket(bucketPipelines).Delete(key(ns, id)); err != nil {
		return err
	}
	if _, err := deletePrefix(tx.Bucket(bucketConfigs), prefix(ns, id)); err != nil {
		return err
	}
	for _, b := range [][]byte{bucketConfigRefs, bucketRetainedConfigs, bucketDeployments, bucketCanaryDurations, bucketPipelineSecrets, bucketPipelineObjects,
		bucketPipelineObjectData, bucketSubscriptions, bucketTriggerKeys} {
		if _, err := deletePrefix(tx.Bucket(b), prefix(ns, id)); err != nil {
			return err
		}
	}
	return DeletePipelineRuns(tx, ns, id)
}

// DeleteNamespacePipelines removes every pipeline of a namespace with
// everything that belongs to them.
func DeleteNamespacePipelines(tx *bbolt.Tx, ns string) error {
	if err := removeActiveUnder(tx, prefix(ns)); err != nil {
		return err
	}
	for _, b := range [][]byte{bucketPipelines, bucketConfigs, bucketDeployments, bucketRuns, bucketTasks, bucketLogs, bucketRunKeys,
		bucketPipelineSecrets, bucketPipelineObjects, bucketPipelineObjectData, bucketRunObjects, bucketRunObjectData,
		bucketSubscriptions, bucketTriggerKeys, bucketOpenLogs, bucketCanaryDurations, bucketConfigRefs, bucketRetainedConfigs} {
		if _, err := deletePrefix(tx.Bucket(b), prefix(ns)); err != nil {
			return err
		}
	}
	return nil
}

// GetConfig returns one config version or nil.
func GetConfig(tx *bbolt.Tx, ns, pipeline string, version int64) (*model.PipelineConfig, error) {
	var c model.PipelineConfig
	ok, err := getJSON(tx.Bucket(bucketConfigs), configKey(ns, pipeline, version), &c)
	if !ok || err != nil {
		return nil, err
	}
	return &c, nil
}

// PutConfig creates or replaces a config version.
func PutConfig(tx *bbolt.Tx, c *model.PipelineConfig) error {
	return putJSON(tx.Bucket(bucketConfigs), configKey(c.NamespaceID, c.PipelineID, c.Version), c)
}

// DeleteConfig removes one config version; slim task executions that
// name it still find it in retained_configs.
func DeleteConfig(tx *bbolt.Tx, ns, pipeline string, version int64) error {
	if err := retainIfReferred(tx, ns, pipeline, version); err != nil {
		return err
	}
	return tx.Bucket(bucketConfigs).Delete(configKey(ns, pipeline, version))
}

// ListConfigs returns a page of a pipeline's versions, oldest first unless
// reversed.
func ListConfigs(tx *bbolt.Tx, ns, pipeline string, page Page) ([]*model.PipelineConfig, error) {
	return scanPage[model.PipelineConfig](tx.Bucket(bucketConfigs), prefix(ns, pipeline), page, nil)
}

// ConfigVersions returns every stored version number of a pipeline, oldest
// first. It reads keys only.
func ConfigVersions(tx *bbolt.Tx, ns, pipeline string) []int64 {
	var out []int64
	pfx := prefix(ns, pipeline)
	c := tx.Bucket(bucketConfigs).Cursor()
	for k, _ := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
		out = append(out, int64(parseU64(k[len(pfx):])))
	}
	return out
}

func configKey(ns, pipeline string, version int64) []byte {
	return append(prefix(ns, pipeline), u64(uint64(version))...)
}

// GetDeployment returns one deployment or nil.
func GetDeployment(tx *bbolt.Tx, ns, pipeline string, id int64) (*model.Deployment, error) {
	var d model.Deployment
	ok, err := getJSON(tx.Bucket(bucketDeployments), deploymentKey(ns, pipeline, id), &d)
	if !ok || err != nil {
		return nil, err
	}
	return &d, nil
}

// PutDeployment creates or replaces a deployment record.
func PutDeployment(tx *bbolt.Tx, d *model.Deployment) error {
	return putJSON(tx.Bucket(bucketDeployments), deploymentKey(d.NamespaceID, d.PipelineID, d.DeploymentID), d)
}

// ListDeployments returns a page of a pipeline's deployments.
func ListDeployments(tx *bbolt.Tx, ns, pipeline string, page Page) ([]*model.Deployment, error) {
	return scanPage[model.Deployment](tx.Bucket(bucketDeployments), prefix(ns, pipeline), page, nil)
}

func deploymentKey(ns, pipeline string, id int64) []byte {
	return append(prefix(ns, pipeline), u64(uint64(id))...)
}

// ForEachPipeline calls fn for every pipeline of every namespace.
func ForEachPipeline(tx *bbolt.Tx, fn func(*model.Pipeline) error) error {
	return tx.Bucket(bucketPipelines).ForEach(func(_, v []byte) error {
		var p model.Pipeline
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		return fn(&p)
	})
}

// ConfigRunRetention returns the run_retention of one config version (nil
// when it sets none or the version is not stored). It decodes that field
// only, so the pruner's pass over every pipeline does not build each live
// config's tasks.
func ConfigRunRetention(tx *bbolt.Tx, ns, pipeline string, version int64) (*sdk.RunRetention, error) {
	var c struct {
		RunRetention *sdk.RunRetention `json:"run_retention"`
	}
	if _, err := getJSON(tx.Bucket(bucketConfigs), configKey(ns, pipeline, version), &c); err != nil {
		return nil, err
	}
	return c.RunRetention, nil
}
