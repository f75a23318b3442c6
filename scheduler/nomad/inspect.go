package nomad

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// snapshot is what one read of a job tells: the job (nil when Nomad has
// no such job), its first allocation (nil before placement), a lost
// allocation if any, and the allocations' index, for the next blocking
// query.
type snapshot struct {
	job *nomadapi.Job
	// alloc is the job's first allocation (lowest CreateIndex): the one
	// the attempt ran in. Nomad replaces a lost allocation whatever the
	// reschedule policy says (it always keeps the group's count), and a
	// replacement is a second run the attempt must not report.
	alloc *nomadapi.AllocationListStub
	lost  *nomadapi.AllocationListStub
	index uint64
}

// block says what a read waits for: a change of the allocations past
// allocs, or of the job past job (a stop, a placement: Nomad updates the
// job's status when it places it); at most wait.
type block struct {
	allocs, job uint64
	wait        time.Duration
}

// read fetches the job and its allocations. With waitIndex > 0 the
// allocations query blocks until Nomad's index passes it (or
// blockingWait), so Wait sleeps on the server, not on a timer. ctx bounds
// the whole read; short calls get APITimeout on top.
func (s *Scheduler) read(ctx context.Context, op, name string, waitIndex uint64) (snapshot, error) {
	return s.readAt(ctx, op, name, block{allocs: waitIndex, wait: blockingWait})
}

func (s *Scheduler) readAt(ctx context.Context, op, name string, b block) (snapshot, error) {
	if err := checkName(op, name); err != nil {
		return snapshot{}, err
	}
	// Nomad adds up to WaitTime/16 of jitter to a blocking query.
	blocking := s.opts.APITimeout + b.wait + b.wait/16
	if b.job > 0 {
		jctx, cancel := context.WithTimeout(ctx, blocking)
		_, _, err := s.cli.Jobs().Info(name, s.query(jctx, &nomadapi.QueryOptions{WaitIndex: b.job, WaitTime: b.wait}))
		cancel()
		if err != nil && !notFound(err) {
			return snapshot{}, classify(op, name, err)
		}
	}
	q := &nomadapi.QueryOptions{}
	timeout := s.opts.APITimeout
	if b.allocs > 0 {
		q.WaitIndex, q.WaitTime = b.allocs, b.wait
		timeout = blocking
	}
	allocs, qm, err := s.allocations(ctx, name, q, timeout)
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
	snap.pick(allocs)
	if st := strDeref(job.Status); snap.alloc == nil && !jobStopped(job) && (st == "running" || st == "dead") {
		// Placed (and maybe already finished) between the two reads: the
		// job says so, the allocations read before it did not show it.
		// Read them again, or a finished task would look unplaced.
		allocs, qm, err := s.allocations(ctx, name, &nomadapi.QueryOptions{}, s.opts.APITimeout)
		if err != nil {
			return snapshot{}, classify(op, name, err)
		}
		snap.index = qm.LastIndex
		snap.pick(allocs)
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

// allocations reads every allocation of the job, with its resources, in
// at most timeout (q may make it a blocking query).
func (s *Scheduler) allocations(ctx context.Context, name string, q *nomadapi.QueryOptions, timeout time.Duration) ([]*nomadapi.AllocationListStub, *nomadapi.QueryMeta, error) {
	q.Params = map[string]string{"resources": "true"}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.cli.Jobs().Allocations(name, true, s.query(actx, q))
}

// pick takes the attempt's allocation from a job's allocations: the
// first of its group, and the first lost one.
func (snap *snapshot) pick(allocs []*nomadapi.AllocationListStub) {
	for _, a := range allocs {
		if a.TaskGroup != groupName {
			continue
		}
		if snap.alloc == nil || a.CreateIndex < snap.alloc.CreateIndex {
			snap.alloc = a
		}
		if a.ClientStatus == "lost" && snap.lost == nil {
			snap.lost = a
		}
	}
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

// conclude is the status of one read, after acting on what it shows:
//   - a lost allocation ends the attempt (exited -1); the job is
//     deregistered so the replacement Nomad placed does not run it twice;
//   - a job still unplaced PlacementTimeout after its submission is
//     deregistered and ends as exited 128 with Nomad's reason.
//
// When the deregistration fails, the error (ErrUnavailable) is returned
// instead of the end: reporting an end while a replacement may run would
// be wrong, and the caller retries.
func (s *Scheduler) conclude(ctx context.Context, op, name string, snap snapshot) (scheduler.Status, error) {
	st := describe(snap)
	switch {
	case snap.job == nil:
	case snap.lost != nil && !jobStopped(snap.job):
		s.log.Warn("a Nomad allocation of the job was lost: stopping the job so that no replacement runs the attempt again",
			"name", name, "alloc", snap.lost.ID)
		if err := s.deregister(ctx, name, false); err != nil {
			return scheduler.Status{State: scheduler.StateUnknown}, err
		}
	case snap.alloc == nil && !jobStopped(snap.job) && s.placementLeft(snap.job) <= 0:
		reason := s.placementFailure(ctx, name)
		s.log.Warn("Nomad did not place the job in time: stopping it", "name", name, "timeout", s.opts.PlacementTimeout, "reason", reason)
		if err := s.deregister(ctx, name, false); err != nil {
			return scheduler.Status{State: scheduler.StateUnknown}, err
		}
		st.State, st.ExitCode = scheduler.StateExited, exitNotStarted
		st.Message = fmt.Sprintf("Nomad did not place the job within %s (placement_timeout): %s", s.opts.PlacementTimeout, reason)
		st.Started, st.Finished = time.Now(), time.Now()
	case snap.alloc == nil && jobStopped(snap.job):
		// Stopped before placement: by us after a placement timeout, or
		// by anyone; Nomad's reason, if it gave one, tells which.
		if reason := s.placementFailure(ctx, name); reason != noReason {
			st.Message += ": " + reason
		}
	}
	return st, nil
}

// placementLeft is how long the job may still wait for its placement.
func (s *Scheduler) placementLeft(job *nomadapi.Job) time.Duration {
	if job == nil || job.SubmitTime == nil || *job.SubmitTime == 0 {
		return s.opts.PlacementTimeout
	}
	return time.Until(time.Unix(0, *job.SubmitTime).Add(s.opts.PlacementTimeout))
}

const noReason = "Nomad gave no reason (its evaluations show no failed placement)"

// placementFailure reads the job's evaluations for why its group could
// not be placed (FailedTGAllocs of the newest evaluation that has them,
// usually a blocked one waiting for capacity).
func (s *Scheduler) placementFailure(ctx context.Context, name string) string {
	ectx, cancel := s.short(ctx)
	evals, _, err := s.cli.Jobs().Evaluations(name, s.query(ectx, nil))
	cancel()
	if err != nil {
		return "its evaluations could not be read: " + err.Error()
	}
	var newest *nomadapi.Evaluation
	for _, e := range evals {
		if e != nil && e.FailedTGAllocs[groupName] != nil && (newest == nil || e.CreateIndex > newest.CreateIndex) {
			newest = e
		}
	}
	if newest == nil {
		return noReason
	}
	return "no Nomad node can run it: " + metricReason(newest.FailedTGAllocs[groupName])
}

// metricReason puts a failed placement's metric in words, as `nomad job
// status` does.
func metricReason(m *nomadapi.AllocationMetric) string {
	var out []string
	if m.NodesEvaluated == 0 {
		out = append(out, "no node is in the job's datacenters (or node pool)")
	}
	for _, dc := range slices.Sorted(maps.Keys(m.NodesAvailable)) {
		if m.NodesAvailable[dc] == 0 {
			out = append(out, fmt.Sprintf("no node available in datacenter %q", dc))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.ConstraintFiltered)) {
		out = append(out, fmt.Sprintf("constraint %s filtered %d nodes", k, m.ConstraintFiltered[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(m.ClassFiltered)) {
		out = append(out, fmt.Sprintf("class %s filtered %d nodes", k, m.ClassFiltered[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(m.DimensionExhausted)) {
		out = append(out, fmt.Sprintf("%s exhausted on %d nodes", k, m.DimensionExhausted[k]))
	}
	out = append(out, m.QuotaExhausted...)
	if len(out) == 0 {
		out = append(out, fmt.Sprintf("%d nodes evaluated, %d filtered, %d exhausted", m.NodesEvaluated, m.NodesFiltered, m.NodesExhausted))
	}
	return strings.Join(out, "; ")
}

// Inspect implements scheduler.Scheduler. StateNotFound is returned only
// when Nomad answered that it has no such job.
func (s *Scheduler) Inspect(ctx context.Context, name string) (scheduler.Status, error) {
	snap, err := s.read(ctx, "inspect", name, 0)
	if err != nil {
		return scheduler.Status{State: scheduler.StateUnknown}, err
	}
	return s.conclude(ctx, "inspect", name, snap)
}

// Wait implements scheduler.Scheduler with blocking queries on the job's
// allocations. Unlike Docker, a job that is not started yet is waited for:
// Nomad starts it without being asked again. A job that is missing (or
// purged while waited for) is Status{State: StateNotFound}, as for
// Inspect. An error (ctx, an unreachable agent) wraps ErrUnavailable.
func (s *Scheduler) Wait(ctx context.Context, name string) (scheduler.Status, error) {
	b := block{wait: blockingWait}
	for {
		snap, err := s.readAt(ctx, "wait", name, b)
		if err != nil {
			return scheduler.Status{State: scheduler.StateUnknown}, err
		}
		st, err := s.conclude(ctx, "wait", name, snap)
		if err != nil {
			return st, err
		}
		switch st.State {
		case scheduler.StateExited, scheduler.StateNotFound:
			return st, nil
		}
		if ctx.Err() != nil {
			return scheduler.Status{State: scheduler.StateUnknown}, fmt.Errorf("nomad: wait %s: %w: %w", name, scheduler.ErrUnavailable, ctx.Err())
		}
		b = s.nextBlock(snap, b)
	}
}

// nextBlock is what the read after snap (made with b) blocks on: the job
// while it is not placed, no longer than its placement deadline (no
// allocation changes when an unplaced job is stopped; its status changes
// when Nomad places it), else its allocations past snap's index.
//
// The job's block index is its own ModifyIndex, never snap.index: that is
// the allocation table's index, which for a job just registered is below
// the job's, and a blocking query below the job's index answers at once —
// Start and Wait would poll Nomad in a loop until placement.
func (s *Scheduler) nextBlock(snap snapshot, b block) block {
	if snap.alloc == nil && snap.job != nil {
		if snap.job.Status == nil || *snap.job.Status == "pending" {
			index := max(uint64Deref(snap.job.ModifyIndex), 1)
			return block{job: index, wait: max(min(blockingWait, s.placementLeft(snap.job)), time.Millisecond)}
		}
		// The job is read after its allocations: one placed in between
		// (no longer pending) has an allocation past snap.index, so this
		// block answers at once; no allocation yet waits for one.
		return block{allocs: max(snap.index, 1), wait: blockingWait}
	}
	// Nomad's indexes only grow; one that went back (a restored
	// snapshot, another server) starts the blocking over.
	if snap.index < b.allocs || snap.index == 0 {
		return block{allocs: 1, wait: blockingWait}
	}
	return block{allocs: snap.index, wait: blockingWait}
}

func uint64Deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
