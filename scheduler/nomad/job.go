package nomad

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

// The one group and task of every job: names inside a job need not be
// unique across jobs.
const (
	groupName = "gofer"
	taskName  = "task"
)

// extensionPortLabel names the static port reserved for an extension.
const extensionPortLabel = "extension"

// validName is what the job id may hold: the container name is used as is
// (Docker's name rule), so the id is the name and nothing needs undoing.
// Nomad itself refuses only spaces and NUL, but ids travel in URL paths.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// validate refuses a request Nomad would refuse later, after Start has
// returned (a bad env name would only fail the task).
func validate(req scheduler.StartRequest) error {
	if !validName.MatchString(req.Name) {
		return fmt.Errorf("nomad: start %q: the name must match %s: %w", req.Name, validName, scheduler.ErrInvalid)
	}
	if strings.TrimSpace(req.Image) == "" {
		return fmt.Errorf("nomad: start %s: empty image: %w", req.Name, scheduler.ErrInvalid)
	}
	for k := range req.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("nomad: start %s: bad environment variable name %q: %w", req.Name, k, scheduler.ErrInvalid)
		}
	}
	return nil
}

// checkName refuses names that cannot be a job id (see validName).
func checkName(op, name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("nomad: %s %q: not a valid name: %w", op, name, scheduler.ErrInvalid)
	}
	return nil
}

// jobFor maps a request to the batch job registered for it:
//   - one group, count 1, one docker task;
//   - no restarts and no rescheduling: Gofer's retry policy decides, and a
//     second run of the same attempt must never happen behind its back;
//   - the labels as job meta, which List reads back;
//   - the request's CPU and memory, or Options' defaults;
//   - the kill timeout is the stop grace (fixed at registration).
func (s *Scheduler) jobFor(req scheduler.StartRequest) *nomadapi.Job {
	cfg := map[string]any{"image": req.Image}
	if req.Entrypoint != nil {
		cfg["entrypoint"] = slices.Clone(req.Entrypoint)
	}
	if req.Command != nil {
		// The docker driver takes the program as "command" and the rest
		// as "args"; together they replace the image's CMD.
		if len(req.Command) > 0 {
			cfg["command"] = req.Command[0]
			cfg["args"] = slices.Clone(req.Command[1:])
		}
	}
	if req.Network != "" {
		cfg["network_mode"] = req.Network
	}
	if req.AlwaysPull {
		cfg["force_pull"] = true
	}
	if req.RegistryUser != "" || req.RegistryPass != "" {
		cfg["auth"] = map[string]any{"username": req.RegistryUser, "password": req.RegistryPass}
	}
	kill := s.opts.StopGrace
	cpu, memory := s.opts.CPU, s.opts.MemoryMB
	if req.CPU > 0 {
		cpu = req.CPU
	}
	if req.MemoryMB > 0 {
		memory = req.MemoryMB
	}
	task := &nomadapi.Task{
		Name:        taskName,
		Driver:      "docker",
		Config:      cfg,
		Env:         maps.Clone(req.Env),
		KillTimeout: &kill,
		Resources:   &nomadapi.Resources{CPU: new(cpu), MemoryMB: new(memory)},
	}
	group := &nomadapi.TaskGroup{
		Name:  new(groupName),
		Count: new(1),
		Tasks: []*nomadapi.Task{task},
		// Interval and delay keep Nomad's defaults: with no attempts
		// they never apply, and Nomad refuses an interval under 5s.
		RestartPolicy:    &nomadapi.RestartPolicy{Attempts: new(0), Mode: new("fail")},
		ReschedulePolicy: &nomadapi.ReschedulePolicy{Attempts: new(0), Unlimited: new(false)},
	}
	if port := reservedPort(req); port > 0 {
		// Nomad places the job only on a client where this port is free
		// and reports that client's address as the allocation's.
		group.Networks = []*nomadapi.NetworkResource{{Mode: "host",
			ReservedPorts: []nomadapi.Port{{Label: extensionPortLabel, Value: port}}}}
	}
	job := &nomadapi.Job{
		ID:          new(req.Name),
		Name:        new(req.Name),
		Type:        new(nomadapi.JobTypeBatch),
		Datacenters: slices.Clone(s.opts.Datacenters),
		Meta:        maps.Clone(req.Labels),
		TaskGroups:  []*nomadapi.TaskGroup{group},
	}
	if s.opts.Region != "" {
		job.Region = new(s.opts.Region)
	}
	if s.opts.Namespace != "" {
		job.Namespace = new(s.opts.Namespace)
	}
	return job
}

// reservedPort is the host port an extension container listens on, read
// from its address label (scheduler.LabelExtensionAddr) when it runs on
// the host network; 0 when there is none to reserve (task containers, or
// an extension on a container network).
func reservedPort(req scheduler.StartRequest) int {
	addr, ok := req.Labels[scheduler.LabelExtensionAddr]
	if !ok || req.Network != "host" {
		return 0
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return 0
	}
	return port
}
