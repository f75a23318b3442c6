package scheduler

// Labels on every task container, the contract between the executor
// (which sets them), the backends (which list by them) and the tests and
// tools that clean up after a cluster. The cluster label scopes the sweep
// to this cluster; the rest identify the attempt the container belongs to.
const (
	LabelCluster   = "gofer.cluster"
	LabelNamespace = "gofer.namespace"
	LabelPipeline  = "gofer.pipeline"
	LabelRun       = "gofer.run"
	LabelRunUID    = "gofer.run_uid"
	LabelTask      = "gofer.task"
	LabelAttempt   = "gofer.attempt"
	LabelTerm      = "gofer.term"
)

// Labels on extension containers (agent/supervisor). LabelCluster is set
// too; LabelExtension marks the container as an extension's, which the
// executor's orphan sweep leaves alone. The other three record how the
// container was started, so a new leader can adopt it or see it must be
// replaced.
const (
	LabelExtension          = "gofer.extension"
	LabelExtensionAddr      = "gofer.extension.address"
	LabelExtensionGoferHost = "gofer.extension.gofer_host"
	LabelExtensionToken     = "gofer.extension.token_id"
)
