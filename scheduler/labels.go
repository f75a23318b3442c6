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
