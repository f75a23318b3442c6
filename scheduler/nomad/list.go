package nomad

import (
	"context"
	"fmt"
	"maps"
	"sort"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// List implements scheduler.Scheduler with one call: jobs are listed
// with their meta (Gofer's labels) and filtered here (a label with an
// empty value matches its presence). No job is read one by one, so a job
// purged meanwhile cannot fail the list. Status is the job's summary in
// the list: State only (stubState), no exit code, allocation id or times;
// callers that need those Inspect the job.
func (s *Scheduler) List(ctx context.Context, labels map[string]string) ([]scheduler.Container, error) {
	lctx, cancel := s.short(ctx)
	stubs, _, err := s.cli.Jobs().ListOptions(&nomadapi.JobListOptions{Fields: &nomadapi.JobListFields{Meta: true}}, s.query(lctx, nil))
	cancel()
	if err != nil {
		return nil, classify("list", fmt.Sprint(labels), err)
	}
	var out []scheduler.Container
	for _, j := range stubs {
		if j == nil || !matches(j.Meta, labels) || !validName.MatchString(j.ID) {
			continue
		}
		out = append(out, scheduler.Container{Name: j.ID, Labels: maps.Clone(j.Meta),
			Status: scheduler.Status{State: stubState(j), Labels: maps.Clone(j.Meta)}})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out, nil
}

// stubState is a listed job's state from its group's summary: running
// while an allocation runs, exited once one ended (or the job is dead or
// stopped), created while it waits for placement or its start.
func stubState(j *nomadapi.JobListStub) scheduler.ContainerState {
	var g nomadapi.TaskGroupSummary
	if j.JobSummary != nil {
		g = j.JobSummary.Summary[groupName]
	}
	switch {
	case g.Running > 0:
		return scheduler.StateRunning
	case g.Complete+g.Failed+g.Lost > 0 || j.Stop || j.Status == "dead":
		return scheduler.StateExited
	case g.Unknown > 0:
		return scheduler.StateUnknown
	default:
		return scheduler.StateCreated
	}
}

// matches reports whether meta carries every label (an empty value: the
// key's presence).
func matches(meta, labels map[string]string) bool {
	for k, v := range labels {
		got, ok := meta[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}
