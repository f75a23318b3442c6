package nomad

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// Exit codes for ends that have no process exit status (Docker uses the
// same convention for a container it could not start).
const (
	// exitNotStarted: the task never ran (driver or image failure, or the
	// job was stopped before it started).
	exitNotStarted = 128
	// exitLost: the allocation was lost with its client node; whether the
	// process ended, and how, is unknown.
	exitLost = -1
)

// Event types of a task's events that explain a failure (Nomad's
// structs.TaskDriverFailure and friends).
var failureEvents = map[string]bool{
	"Driver Failure":           true,
	"Setup Failure":            true,
	"Failed Validation":        true,
	"Failed Artifact Download": true,
	"Not Restarting":           true,
	"Sibling Task Failed":      true,
}

// describe maps one read of a job to the scheduler's status.
//
//   - no job: not found;
//   - no allocation: created (waiting for placement), unless the job was
//     stopped, which ends it before it ran;
//   - the allocation's client status: pending is created (placed, image
//     being pulled), running is running, complete and failed are exited
//     with the task's Terminated event's exit code, lost is exited with a
//     message (the node went away: never wait for it), unknown (a node
//     that stopped heartbeating, which may still come back) is unknown.
func describe(snap snapshot) scheduler.Status {
	if snap.job == nil {
		return scheduler.Status{State: scheduler.StateNotFound}
	}
	st := scheduler.Status{Labels: maps.Clone(snap.job.Meta)}
	stopped := snap.job.Stop != nil && *snap.job.Stop
	a := snap.alloc
	if a == nil {
		if stopped || strDeref(snap.job.Status) == "dead" {
			st.State, st.ExitCode = scheduler.StateExited, exitNotStarted
			st.Message = "the job was stopped before Nomad placed it"
			return st
		}
		st.State = scheduler.StateCreated
		st.Message = "waiting for Nomad to place the job"
		return st
	}
	st.ID = a.ID
	st.IPAddress = allocIP(a)
	ts := a.TaskStates[taskName]
	var msgs []string
	term := (*nomadapi.TaskEvent)(nil)
	if ts != nil {
		st.Started, st.Finished = ts.StartedAt, ts.FinishedAt
		for _, ev := range ts.Events {
			switch {
			case ev == nil:
			case ev.Type == "Terminated":
				term = ev
			case failureEvents[ev.Type]:
				msgs = append(msgs, eventMessage(ev))
			}
		}
	}
	switch a.ClientStatus {
	case "pending":
		st.State = scheduler.StateCreated
		if ts != nil && len(ts.Events) > 0 {
			msgs = append(msgs, eventMessage(ts.Events[len(ts.Events)-1]))
		}
	case "running":
		st.State = scheduler.StateRunning
	case "complete", "failed":
		st.State = scheduler.StateExited
		switch {
		case term != nil:
			st.ExitCode = term.ExitCode
			msgs = append(msgs, terminatedMessage(term)...)
		case a.ClientStatus == "failed":
			st.ExitCode = exitNotStarted
			if len(msgs) == 0 {
				msgs = append(msgs, "the task failed before it ran: "+a.ClientDescription)
			}
		default:
			// Complete without a Terminated event: stopped before the
			// process started.
			st.ExitCode = exitNotStarted
			msgs = append(msgs, "the task was stopped before it started")
		}
	case "lost":
		st.State, st.ExitCode = scheduler.StateExited, exitLost
		if term != nil {
			st.ExitCode = term.ExitCode
		}
		msgs = append(msgs, fmt.Sprintf("the Nomad allocation %s was lost (its client node %s went away)", a.ID, a.NodeName))
	default:
		st.State = scheduler.StateUnknown
		msgs = append(msgs, fmt.Sprintf("Nomad allocation %s is %q: %s", a.ID, a.ClientStatus, a.ClientDescription))
	}
	if st.State == scheduler.StateExited {
		if st.Finished.IsZero() {
			st.Finished = time.Unix(0, a.ModifyTime)
		}
		if st.Started.IsZero() || st.Started.After(st.Finished) {
			st.Started = st.Finished
		}
	}
	st.Message = strings.Join(dedupe(msgs), "; ")
	return st
}

// terminatedMessage explains a Terminated event beyond its exit code.
func terminatedMessage(ev *nomadapi.TaskEvent) []string {
	var out []string
	if ok, _ := strconv.ParseBool(ev.Details["oom_killed"]); ok {
		out = append(out, "out of memory: the container was OOM-killed")
	}
	if sig, _ := strconv.Atoi(ev.Details["signal"]); sig != 0 {
		out = append(out, fmt.Sprintf("killed by signal %d", sig))
	} else if ev.Signal != 0 {
		out = append(out, fmt.Sprintf("killed by signal %d", ev.Signal))
	}
	if m := ev.Details["exit_message"]; m != "" {
		out = append(out, m)
	}
	return out
}

// eventMessage is an event's own words.
func eventMessage(ev *nomadapi.TaskEvent) string {
	for _, m := range []string{ev.DisplayMessage, ev.DriverError, ev.SetupError, ev.ValidationError, ev.DownloadError, ev.Message} {
		if m != "" {
			return ev.Type + ": " + m
		}
	}
	return ev.Type
}

// allocIP is the address Nomad gave the allocation, if any (host mode
// gets the node's address; without ports requested there may be none).
func allocIP(a *nomadapi.AllocationListStub) string {
	if a.AllocatedResources == nil {
		return ""
	}
	for _, n := range a.AllocatedResources.Shared.Networks {
		if n != nil && n.IP != "" {
			return n.IP
		}
	}
	for _, p := range a.AllocatedResources.Shared.Ports {
		if p.HostIP != "" {
			return p.HostIP
		}
	}
	return ""
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func strDeref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
