package docker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/goferhq/gofer/scheduler"
)

// Inspect implements scheduler.Scheduler. StateNotFound is returned only
// when the engine answered "no such container".
func (s *Scheduler) Inspect(ctx context.Context, name string) (scheduler.Status, error) {
	info, found, err := s.resolve(ctx, "inspect", name)
	if err != nil {
		return scheduler.Status{State: scheduler.StateUnknown}, err
	}
	if !found {
		return scheduler.Status{State: scheduler.StateNotFound}, nil
	}
	return describe(info), nil
}

// describe is status plus what identifies the container: its id, labels
// and network address.
func describe(info container.InspectResponse) scheduler.Status {
	st := status(info.State)
	st.ID = info.ID
	if info.Config != nil {
		st.Labels = info.Config.Labels
	}
	if ns := info.NetworkSettings; ns != nil {
		for _, ep := range ns.Networks {
			if ep != nil && ep.IPAddress != "" {
				st.IPAddress = ep.IPAddress
				break
			}
		}
	}
	return st
}

// Wait implements scheduler.Scheduler. It returns at once for a container
// that is not running (exited, or created and never started: waiting for
// a start nobody will make would hang the caller). A missing container is
// Status{State: StateNotFound} with a nil error, as for Inspect.
func (s *Scheduler) Wait(ctx context.Context, name string) (scheduler.Status, error) {
	info, found, err := s.resolve(ctx, "wait", name)
	if err != nil {
		return scheduler.Status{State: scheduler.StateUnknown}, err
	}
	if !found {
		return scheduler.Status{State: scheduler.StateNotFound}, nil
	}
	if st := status(info.State); st.State != scheduler.StateRunning {
		return st, nil
	}
	// By ID from here on: the name could be reused by a new container
	// after this one is removed.
	resC, errC := s.cli.ContainerWait(ctx, info.ID, container.WaitConditionNotRunning)
	var res container.WaitResponse
	waited := false
	select {
	case res = <-resC:
		waited = true
	case err := <-errC:
		if !notFound(err) {
			return scheduler.Status{State: scheduler.StateUnknown}, classify("wait", name, err)
		}
		// Removed before the wait began: the inspect below tells.
	case <-ctx.Done():
		return scheduler.Status{State: scheduler.StateUnknown}, fmt.Errorf("docker: wait %s: %w: %w", name, scheduler.ErrUnavailable, ctx.Err())
	}
	final, found, err := s.resolve(ctx, "wait", info.ID)
	switch {
	case err != nil:
		return scheduler.Status{State: scheduler.StateUnknown}, err
	case found:
		return status(final.State), nil
	case !waited:
		return scheduler.Status{State: scheduler.StateNotFound}, nil
	}
	// It exited and was removed before we could look (a forced remove, an
	// operator): the wait's exit code is all there is.
	msg := "removed before its final state could be read"
	if res.Error != nil && res.Error.Message != "" {
		msg += ": " + res.Error.Message
	}
	return scheduler.Status{State: scheduler.StateExited, ExitCode: int(res.StatusCode), Message: msg}, nil
}

// List implements scheduler.Scheduler. Docker's list entries carry no
// exit code or times, so each match is inspected; one removed in between
// is left out rather than reported as not found.
func (s *Scheduler) List(ctx context.Context, labels map[string]string) ([]scheduler.Container, error) {
	f := filters.NewArgs()
	for k, v := range labels {
		if v == "" {
			f.Add("label", k) // presence
		} else {
			f.Add("label", k+"="+v)
		}
	}
	lctx, cancel := s.short(ctx)
	err := s.negotiated(lctx)
	var found []container.Summary
	if err == nil {
		found, err = s.cli.ContainerList(lctx, container.ListOptions{All: true, Filters: f})
	}
	cancel()
	if err != nil {
		return nil, classify("list", fmt.Sprint(labels), err)
	}
	out := make([]scheduler.Container, 0, len(found))
	for _, c := range found {
		info, ok, err := s.resolve(ctx, "list", c.ID)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		var l map[string]string
		if info.Config != nil {
			l = info.Config.Labels
		}
		out = append(out, scheduler.Container{Name: strings.TrimPrefix(info.Name, "/"), Labels: l, Status: describe(info)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// resolve inspects a container by exact name (or full ID). Docker also
// resolves a reference by ID prefix, so inspecting "abc" when no container
// has that name could return some other container whose ID starts with
// "abc"; that must read as "not found", never as our container (and Stop
// and Remove act on the ID resolved here, never on a prefix).
func (s *Scheduler) resolve(ctx context.Context, op, name string) (container.InspectResponse, bool, error) {
	if strings.TrimSpace(name) == "" {
		return container.InspectResponse{}, false, fmt.Errorf("docker: %s: empty container name: %w", op, scheduler.ErrInvalid)
	}
	ictx, cancel := s.short(ctx)
	defer cancel()
	info, err := s.cli.ContainerInspect(ictx, name)
	if notFound(err) {
		return container.InspectResponse{}, false, nil
	}
	if err != nil {
		return container.InspectResponse{}, false, classify(op, name, err)
	}
	if strings.TrimPrefix(info.Name, "/") != strings.TrimPrefix(name, "/") && info.ID != name {
		return container.InspectResponse{}, false, nil
	}
	return info, true, nil
}

// status maps Docker's state to the scheduler's.
//
//   - created with an Error: the engine refused to start it (bad
//     executable, missing network). It will never run, and Docker has
//     already set an exit code (127, 126, 128), so it is reported as
//     exited: a new leader takes that result instead of waiting forever.
//   - restarting and paused are live processes: running.
//   - dead (a failed removal) has finished: exited, with a message.
//   - removing is exited if it has finished, running if it still runs
//     (a forced remove kills first), unknown otherwise: a never-started
//     container being removed must not read as "exited 0".
func status(st *container.State) scheduler.Status {
	if st == nil {
		return scheduler.Status{State: scheduler.StateUnknown, Message: "the engine reported no state"}
	}
	out := scheduler.Status{
		ExitCode: st.ExitCode,
		Started:  parseTime(st.StartedAt),
		Finished: parseTime(st.FinishedAt),
	}
	if !out.Finished.IsZero() && out.Finished.Before(out.Started) {
		// Docker stamps StartedAt after the start call returns, so a task
		// that exits at once can finish "before" it started; the exit is
		// the reliable stamp.
		out.Started = out.Finished
	}
	var msgs []string
	if st.Error != "" {
		msgs = append(msgs, st.Error)
	}
	if st.OOMKilled {
		msgs = append(msgs, "out of memory: the container was OOM-killed")
	}
	switch st.Status {
	case container.StateCreated:
		out.State = scheduler.StateCreated
		if st.Error != "" {
			out.State = scheduler.StateExited
			if out.ExitCode == 0 {
				out.ExitCode = 128
			}
		}
	case container.StateRunning, container.StateRestarting, container.StatePaused:
		out.State = scheduler.StateRunning
	case container.StateExited:
		out.State = scheduler.StateExited
	case container.StateDead:
		out.State = scheduler.StateExited
		msgs = append(msgs, "container is dead (the engine failed to remove it)")
	case container.StateRemoving:
		switch {
		case st.Running:
			out.State = scheduler.StateRunning
		case !out.Finished.IsZero():
			out.State = scheduler.StateExited
		default:
			out.State = scheduler.StateUnknown
			msgs = append(msgs, "container is being removed")
		}
	default:
		out.State = scheduler.StateUnknown
		msgs = append(msgs, fmt.Sprintf("unknown docker state %q", st.Status))
	}
	out.Message = strings.Join(msgs, "; ")
	return out
}

// parseTime reads Docker's RFC 3339 times; its "never" is year 1, which
// parses to the zero time.Time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
