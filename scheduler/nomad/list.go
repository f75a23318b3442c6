package nomad

import (
	"context"
	"fmt"
	"sort"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// List implements scheduler.Scheduler. Jobs are listed with their meta
// (Gofer's labels) and filtered here: a label with an empty value matches
// its presence. Each match is then read for its status; a job purged in
// between is left out rather than reported as not found.
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
		snap, err := s.read(ctx, "list", j.ID, 0)
		if err != nil {
			return nil, err
		}
		if snap.job == nil {
			continue
		}
		st := describe(snap)
		out = append(out, scheduler.Container{Name: j.ID, Labels: st.Labels, Status: st})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out, nil
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
