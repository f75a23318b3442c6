package executor

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goferhq/gofer/scheduler"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// This file holds the executor's pure decisions, kept apart from I/O so
// they can be tested alone.

// Labels on every task container (package scheduler owns the names).
const (
	LabelCluster   = scheduler.LabelCluster
	LabelNamespace = scheduler.LabelNamespace
	LabelPipeline  = scheduler.LabelPipeline
	LabelRun       = scheduler.LabelRun
	LabelRunUID    = scheduler.LabelRunUID
	LabelTask      = scheduler.LabelTask
	LabelAttempt   = scheduler.LabelAttempt
	LabelTerm      = scheduler.LabelTerm
)

// ContainerName is the attempt's deterministic container name:
// gofer.<cluster>.<run uid>.<ns>.<pipeline>.<run>.<task>.<attempt>. Ids
// may contain '-' and '_', so fields are joined with '.', which no id
// contains: two different attempts can never share a name (with '-' as
// the separator "a-b"/"c" and "a"/"b-c" would collide). The cluster's tag
// keeps two clusters (or `gofer run local` beside a server) that share a
// Docker engine from ever adopting each other's containers; the run's uid
// (the raft index that created it, never reused) keeps a run from
// adopting the container of an earlier run with the same number (a
// deleted and recreated pipeline, a restored snapshot).
func ContainerName(clusterID string, t *model.TaskExecution, attempt int) string {
	return fmt.Sprintf("gofer.%s.%d.%s.%s.%d.%s.%d", clusterTag(clusterID), t.RunUID, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID, attempt)
}

// clusterTag is the last 8 letters and digits of a cluster id.
func clusterTag(clusterID string) string {
	tag := make([]byte, 0, len(clusterID))
	for i := 0; i < len(clusterID); i++ {
		if c := clusterID[i]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			tag = append(tag, c)
		}
	}
	if len(tag) > 8 {
		tag = tag[len(tag)-8:]
	}
	if len(tag) == 0 {
		return "gofer"
	}
	return string(tag)
}

// containerLabels identifies an attempt's container.
func containerLabels(clusterID string, t *model.TaskExecution, attempt int, term uint64) map[string]string {
	return map[string]string{
		LabelCluster:   clusterID,
		LabelNamespace: t.NamespaceID,
		LabelPipeline:  t.PipelineID,
		LabelRun:       strconv.FormatInt(t.RunID, 10),
		LabelRunUID:    strconv.FormatUint(t.RunUID, 10),
		LabelTask:      t.TaskID,
		LabelAttempt:   strconv.Itoa(attempt),
		LabelTerm:      strconv.FormatUint(term, 10),
	}
}

// attemptFromLabels reads an attempt's identity back from its labels.
func attemptFromLabels(l map[string]string) (ns, pipeline string, run int64, task string, attempt int, ok bool) {
	run, err1 := strconv.ParseInt(l[LabelRun], 10, 64)
	attempt, err2 := strconv.Atoi(l[LabelAttempt])
	ns, pipeline, task = l[LabelNamespace], l[LabelPipeline], l[LabelTask]
	ok = err1 == nil && err2 == nil && ns != "" && pipeline != "" && task != ""
	return
}

// dependencyVerdict says whether a waiting task can run yet.
type dependencyVerdict int

const (
	// depsPending: some parent has not finished.
	depsPending dependencyVerdict = iota
	// depsMet: every parent ended as its condition asks.
	depsMet
	// depsUnmet: every parent finished, and one did not end as asked; the
	// task is skipped.
	depsUnmet
)

// checkDependencies applies upstream's conditions: Any accepts a parent
// that succeeded, failed or was skipped; Success needs success; Failure
// needs failure. A cancelled parent satisfies nothing. It returns a
// description of the first unmet dependency, for the skip reason.
func checkDependencies(t *model.TaskExecution, byID map[string]*model.TaskExecution) (dependencyVerdict, string) {
	parents := make([]string, 0, len(t.Task.DependsOn))
	for id := range t.Task.DependsOn {
		parents = append(parents, id)
	}
	sort.Strings(parents)
	for _, id := range parents {
		if p := byID[id]; p == nil || !p.Terminal() {
			return depsPending, ""
		}
	}
	for _, id := range parents {
		p, want := byID[id], t.Task.DependsOn[id]
		var ok bool
		switch want {
		case sdk.RequiredParentStatusAny:
			ok = p.Status == model.TaskStatusSuccessful || p.Status == model.TaskStatusFailed || p.Status == model.TaskStatusSkipped
		case sdk.RequiredParentStatusSuccess:
			ok = p.Status == model.TaskStatusSuccessful
		case sdk.RequiredParentStatusFailure:
			ok = p.Status == model.TaskStatusFailed
		}
		if !ok {
			return depsUnmet, fmt.Sprintf("task %q needs %q to end %s, but it ended %s", t.TaskID, id, strings.ToLower(string(want)), p.Status)
		}
	}
	return depsMet, ""
}

// runOutcome applies the run status rules: a cancellation makes the run
// cancelled, else any failed task makes it failed, else it succeeded.
// Skipped tasks do not fail a run.
func runOutcome(r *model.Run, tasks []*model.TaskExecution) (model.RunStatus, model.StatusReason) {
	if r.Cancel != nil {
		reason := r.Cancel.Reason
		if reason == "" {
			reason = model.ReasonUserCancelled
		}
		desc := "the run was cancelled by " + r.Cancel.By
		if reason == model.ReasonTimeout {
			desc = fmt.Sprintf("the run exceeded its %s timeout", time.Duration(r.TimeoutMillis)*time.Millisecond)
		}
		return model.RunStatusCancelled, model.StatusReason{Reason: reason, Description: desc}
	}
	sorted := append([]*model.TaskExecution(nil), tasks...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].TaskID < sorted[j].TaskID })
	for _, t := range sorted {
		if t.Status == model.TaskStatusFailed {
			reason := model.ReasonAbnormalExit
			desc := fmt.Sprintf("task %q failed", t.TaskID)
			if t.StatusReason != nil {
				reason = t.StatusReason.Reason
				if t.StatusReason.Description != "" {
					desc += ": " + t.StatusReason.Description
				}
			}
			return model.RunStatusFailed, model.StatusReason{Reason: reason, Description: desc}
		}
	}
	for _, t := range sorted {
		if t.Status == model.TaskStatusCancelled {
			by := "a user"
			if t.Cancel != nil && t.Cancel.By != "" {
				by = t.Cancel.By
			}
			return model.RunStatusCancelled, model.StatusReason{Reason: model.ReasonUserCancelled,
				Description: fmt.Sprintf("task %q was cancelled by %s", t.TaskID, by)}
		}
	}
	return model.RunStatusSuccessful, model.StatusReason{Description: "every task succeeded or was skipped"}
}

// retryAt decides whether a failed attempt gets another one and when:
// the task's retry_backoff before the first retry, doubling after each,
// capped at sdk.MaxRetryBackoff. Zero means no retry.
func retryAt(t *model.TaskExecution, attempt int, now time.Time) int64 {
	if attempt > t.Task.Retries {
		return 0
	}
	backoff := t.Task.RetryBackoffDuration()
	for i := 1; i < attempt && backoff < sdk.MaxRetryBackoff; i++ {
		backoff *= 2
	}
	backoff = min(backoff, sdk.MaxRetryBackoff)
	return now.Add(backoff).UnixMilli() + 1 // never 0, even with no backoff
}

// environment is a task container's env: system variables, then the
// task's own, then the run's, later ones overriding earlier ones whose
// names differ only in case (model.OverlayEnv, which the API's run-start
// check of missing values uses too).
func environment(r *model.Run, t *model.TaskExecution, apiURLs []string) map[string]string {
	env := map[string]string{
		"GOFER_NAMESPACE_ID": r.NamespaceID,
		"GOFER_PIPELINE_ID":  r.PipelineID,
		"GOFER_RUN_ID":       strconv.FormatInt(r.RunID, 10),
		"GOFER_TASK_ID":      t.TaskID,
		"GOFER_TASK_IMAGE":   t.Task.Image,
		"GOFER_TASK_ATTEMPT": strconv.Itoa(t.Attempt + 1),
	}
	if len(apiURLs) > 0 {
		env["GOFER_API_BASE_URL"] = strings.Join(apiURLs, ",")
	}
	model.OverlayEnv(env, t.Task.Variables)
	model.OverlayEnv(env, r.Variables)
	return env
}
