package nomad

import (
	"context"
	"fmt"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// snapshot is what one read of a job tells: the job (nil when Nomad has
// no such job), its latest allocation (nil before placement) and the
// allocations' index, for the next blocking query.
type snapshot struct {
	job   *nomadapi.Job
	alloc *nomadapi.AllocationListStub
	index uint64
}

// read fetches the job and its allocations. With waitIndex > 0 the
// allocations query blocks until Nomad's index passes it (or
// blockingWait), so Wait sleeps on the server, not on a timer. ctx bounds
// the whole read; short calls get APITimeout on top.
func (s *Scheduler) read(ctx context.Context, op, name string, waitIndex uint64) (snapshot, error) {
	if err := checkName(op, name); err != nil {
		return snapshot{}, err
	}
	q := &nomadapi.QueryOptions{Params: map[string]string{"resources": "true"}}
	timeout := s.opts.APITimeout
	if waitIndex > 0 {
		q.WaitIndex, q.WaitTime = waitIndex, blockingWait
		// Nomad adds up to WaitTime/16 of jitter to a blocking query.
		timeout += blockingWait + blockingWait/16
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	allocs, qm, err := s.cli.Jobs().Allocations(name, true, s.query(actx, q))
	cancel()
	if err != nil {
		return snapshot{}, classify(op, name, err)
	}
	// Read the job after its allocations: a job seen here existed when
	// the allocations were read, so an empty list means "not placed yet",
	// not "purged".
	jctx, cancel := s.short(ctx)
	job, _, err := s.cli.Jobs().Info(name, s.query(jctx, nil))
	cancel()
	if notFound(err) {
		return snapshot{index: qm.LastIndex}, nil
	}
	if err != nil {
		return snapshot{}, classify(op, name, err)
	}
	snap := snapshot{job: job, index: qm.LastIndex}
	for _, a := range allocs {
		if a.TaskGroup == groupName && (snap.alloc == nil || a.CreateIndex > snap.alloc.CreateIndex) {
			snap.alloc = a
		}
	}
	if a := snap.alloc; a != nil && a.AllocatedResources == nil && reservesPort(job) &&
		(a.ClientStatus == "pending" || a.ClientStatus == "running") {
		// A job's allocation stubs carry no resources (Nomad v1.6.5,
		// even with ?resources=true): the address of a job that reserves
		// a port (an extension's) is read from the allocation itself.
		actx, cancel := s.short(ctx)
		full, _, err := s.cli.Allocations().Info(a.ID, s.query(actx, nil))
		cancel()
		if err != nil {
			return snapshot{}, classify(op, name, err)
		}
		stub := *a
		stub.AllocatedResources = full.AllocatedResources
		snap.alloc = &stub
	}
	return snap, nil
}

// reservesPort tells whether the job's group reserves a host port.
func reservesPort(job *nomadapi.Job) bool {
	for _, g := range job.TaskGroups {
		for _, n := range g.Networks {
			if n != nil && len(n.ReservedPorts) > 0 {
				return true
			}
		}
	}
	return false
}

// Inspect implements scheduler.Scheduler. StateNotFound is returned only
// when Nomad answered that it has no such job.
func (s *Scheduler) Inspect(ctx context.Context, name string) (scheduler.Status, error) {
	snap, err := s.read(ctx, "inspect", name, 0)
	if err != nil {
		return scheduler.Status{State: scheduler.StateUnknown}, err
	}
	return describe(snap), nil
}

// Wait implements scheduler.Scheduler with blocking queries on the job's
// allocations. Unlike Docker, a job that is not started yet is waited for:
// Nomad starts it without being asked again. A job that is missing (or
// purged while waited for) is Status{State: StateNotFound}, as for
// Inspect. An error (ctx, an unreachable agent) wraps ErrUnavailable.
func (s *Scheduler) Wait(ctx context.Context, name string) (scheduler.Status, error) {
	var index uint64
	for {
		snap, err := s.read(ctx, "wait", name, index)
		if err != nil {
			return scheduler.Status{State: scheduler.StateUnknown}, err
		}
		st := describe(snap)
		switch st.State {
		case scheduler.StateExited, scheduler.StateNotFound:
			return st, nil
		}
		if ctx.Err() != nil {
			return scheduler.Status{State: scheduler.StateUnknown}, fmt.Errorf("nomad: wait %s: %w: %w", name, scheduler.ErrUnavailable, ctx.Err())
		}
		// Nomad's indexes only grow; one that went back (a restored
		// snapshot, another server) starts the blocking over.
		if snap.index < index || snap.index == 0 {
			index = 1
		} else {
			index = snap.index
		}
	}
}
