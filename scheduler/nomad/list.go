package nomad

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// List implements scheduler.Scheduler with one call for the jobs: they
// are listed with their meta (Gofer's labels) and filtered here (a label
// with an empty value matches its presence). No job is read one by one,
// so a job purged meanwhile cannot fail the list. A job's state comes from
// its summary in the list (stubState); for the jobs that ended, one more
// call per listBatch of them reads their allocations (a filtered
// /v1/allocations), so an ended entry carries its exit code, message and
// allocation id as Inspect would report them. A job whose allocations are
// gone by then keeps the summary's state without an exit code.
func (s *Scheduler) List(ctx context.Context, labels map[string]string) ([]scheduler.Container, error) {
	lctx, cancel := s.short(ctx)
	stubs, _, err := s.cli.Jobs().ListOptions(&nomadapi.JobListOptions{Fields: &nomadapi.JobListFields{Meta: true}}, s.query(lctx, nil))
	cancel()
	if err != nil {
		return nil, classify("list", fmt.Sprint(labels), err)
	}
	var out []scheduler.Container
	ended := map[string]*nomadapi.JobListStub{}
	for _, j := range stubs {
		if j == nil || !matches(j.Meta, labels) || !validName.MatchString(j.ID) {
			continue
		}
		st := stubState(j)
		if st == scheduler.StateExited {
			ended[j.ID] = j
		}
		out = append(out, scheduler.Container{Name: j.ID, Labels: maps.Clone(j.Meta),
			Status: scheduler.Status{State: st, Labels: maps.Clone(j.Meta)}})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	first, err := s.firstAllocs(ctx, slices.Sorted(maps.Keys(ended)))
	if err != nil {
		return nil, classify("list", fmt.Sprint(labels), err)
	}
	for i, c := range out {
		if a := first[c.Name]; a != nil {
			j := ended[c.Name]
			st := describe(snapshot{job: &nomadapi.Job{ID: &j.ID, Meta: j.Meta, Stop: &j.Stop, Status: &j.Status}, alloc: a})
			if st.State == scheduler.StateExited {
				out[i].Status = st
			}
		}
	}
	return out, nil
}

// listBatch is how many jobs one allocations query of List asks about (the
// filter is in the URL).
const listBatch = 40

// firstAllocs reads the first allocation (lowest CreateIndex, the one the
// attempt ran in) of each named job, listBatch jobs a call.
func (s *Scheduler) firstAllocs(ctx context.Context, names []string) (map[string]*nomadapi.AllocationListStub, error) {
	first := map[string]*nomadapi.AllocationListStub{}
	for batch := range slices.Chunk(names, listBatch) {
		terms := make([]string, len(batch))
		for i, n := range batch {
			terms[i] = "JobID == " + strconv.Quote(n)
		}
		actx, cancel := s.short(ctx)
		allocs, _, err := s.cli.Allocations().List(s.query(actx, &nomadapi.QueryOptions{Filter: strings.Join(terms, " or ")}))
		cancel()
		if err != nil {
			return nil, err
		}
		for _, a := range allocs {
			if a != nil && a.TaskGroup == groupName && (first[a.JobID] == nil || a.CreateIndex < first[a.JobID].CreateIndex) {
				first[a.JobID] = a
			}
		}
	}
	return first, nil
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
