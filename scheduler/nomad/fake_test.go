package nomad

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// fakeNomad is an in-process HTTP fake of exactly the Nomad endpoints the
// backend uses, with the request and answer shapes of Nomad's HTTP API
// (api/jobs, api/allocations, api/client fs logs). It runs nothing: the
// test moves each job's allocation through its states (place, run, exit,
// lose) and appends to its logs. Every change bumps one index, which
// blocking queries (?index=&wait=) wait on, as Nomad's do.
type fakeNomad struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	index   uint64
	jobs    map[string]*fakeJob
	// allocQueries records the index of every allocations query.
	allocQueries []uint64
	// allocReads counts GET /v1/allocation/:id.
	allocReads int
	// registers records every register request's body.
	registers []nomadapi.JobRegisterRequest
	// signals records every signal sent to an allocation.
	signals []string
	// allocIndex is the index of the last allocation change: as in
	// Nomad, the allocations endpoint blocks on and answers the
	// allocations' index, which a change of the job alone (a stop, a
	// log line) does not move.
	allocIndex uint64
	// failBlocking makes that many blocking allocations queries answer
	// 500 (a server that lost its leader) once woken.
	failBlocking int
	// requests records every request's method and path.
	requests []string
	// jobQueries records the ?index= of every blocking job read.
	jobQueries []uint64
	// afterAllocations, if set, runs once after the next answer of a
	// job's allocations (a change between a client's two reads).
	afterAllocations func()
	// unplaceable holds, by job id, why Nomad cannot place a job that is
	// registered later: its register records the failed placement at once.
	unplaceable map[string]*nomadapi.AllocationMetric
}

type fakeJob struct {
	job   nomadapi.Job
	alloc *nomadapi.AllocationListStub
	logs  map[string][]byte // stdout, stderr
	// replacements are allocations Nomad placed after alloc was lost.
	replacements []*nomadapi.AllocationListStub
	evals        []*nomadapi.Evaluation
	// ignoreTerm: a SIGTERM signal leaves the task running.
	ignoreTerm bool
	purged     bool
}

func newFakeNomad(t *testing.T) *fakeNomad {
	f := &fakeNomad{t: t, changed: make(chan struct{}), index: 10, allocIndex: 10, jobs: map[string]*fakeJob{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// bump records a change (f.mu held).
func (f *fakeNomad) bump() {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

// bumpAlloc records a change of an allocation (f.mu held).
func (f *fakeNomad) bumpAlloc() {
	f.bump()
	f.allocIndex = f.index
}

func (f *fakeNomad) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+p)
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && p == "/v1/jobs":
		f.register(w, r)
	case r.Method == http.MethodGet && p == "/v1/jobs":
		f.list(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/job/") && strings.HasSuffix(p, "/allocations"):
		f.allocations(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/v1/job/"), "/allocations"))
		f.mu.Lock()
		hook := f.afterAllocations
		f.afterAllocations = nil
		f.mu.Unlock()
		if hook != nil {
			hook()
		}
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/job/") && strings.HasSuffix(p, "/evaluations"):
		f.evaluations(w, strings.TrimSuffix(strings.TrimPrefix(p, "/v1/job/"), "/evaluations"))
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/job/"):
		f.info(w, r, strings.TrimPrefix(p, "/v1/job/"))
	case r.Method == http.MethodDelete && strings.HasPrefix(p, "/v1/job/"):
		f.deregister(w, r, strings.TrimPrefix(p, "/v1/job/"))
	case r.Method == http.MethodGet && p == "/v1/allocations":
		f.allAllocations(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/allocation/"):
		f.allocation(w, strings.TrimPrefix(p, "/v1/allocation/"))
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/node/"):
		// The client asks for the node to reach it directly; answering
		// "unknown" makes it go through the server, as here.
		http.Error(w, "node lookup failed", http.StatusNotFound)
	case r.Method == http.MethodPut && strings.HasPrefix(p, "/v1/client/allocation/") && strings.HasSuffix(p, "/signal"):
		f.signal(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/v1/client/allocation/"), "/signal"))
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/client/fs/logs/"):
		f.logs(w, r, strings.TrimPrefix(p, "/v1/client/fs/logs/"))
	default:
		http.Error(w, "fake nomad: no route "+r.Method+" "+p, http.StatusNotFound)
	}
}

func (f *fakeNomad) reply(w http.ResponseWriter, index uint64, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Nomad-Index", strconv.FormatUint(index, 10))
	w.Header().Set("X-Nomad-LastContact", "0")
	w.Header().Set("X-Nomad-KnownLeader", "true")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeNomad) register(w http.ResponseWriter, r *http.Request) {
	var req nomadapi.JobRegisterRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Job == nil || req.Job.ID == nil {
		http.Error(w, "bad job", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registers = append(f.registers, req)
	id := *req.Job.ID
	if old, ok := f.jobs[id]; ok && !old.purged && req.EnforceIndex && req.JobModifyIndex == 0 {
		// Nomad's words and status for this refusal.
		http.Error(w, "Enforcing job modify index 0: job already exists", http.StatusInternalServerError)
		return
	}
	f.bump()
	job := *req.Job
	job.Status, job.Stop = new("pending"), new(false)
	job.CreateIndex, job.ModifyIndex, job.JobModifyIndex = new(f.index), new(f.index), new(f.index)
	job.SubmitTime = new(time.Now().UnixNano())
	f.jobs[id] = &fakeJob{job: job, logs: map[string][]byte{}}
	if m := f.unplaceable[id]; m != nil {
		f.blockLocked(id, m)
	}
	f.reply(w, f.index, nomadapi.JobRegisterResponse{EvalID: "eval-" + id, EvalCreateIndex: f.index, JobModifyIndex: f.index})
}

func (f *fakeNomad) lookup(id string) *fakeJob {
	j, ok := f.jobs[id]
	if !ok || j.purged {
		return nil
	}
	return j
}

// info answers GET /v1/job/:id, blocking while the job's modify index
// has not passed ?index= (at most ?wait=), as Nomad does.
func (f *fakeNomad) info(w http.ResponseWriter, r *http.Request, id string) {
	q := r.URL.Query()
	index, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	wait := 5 * time.Minute
	if d, err := time.ParseDuration(q.Get("wait")); err == nil {
		wait = d
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	f.mu.Lock()
	if index > 0 {
		f.jobQueries = append(f.jobQueries, index)
	}
	for expired := false; index > 0 && !expired; {
		if j := f.lookup(id); j == nil || *j.job.ModifyIndex > index {
			break
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			expired = true
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	j := f.lookup(id)
	if j == nil {
		http.Error(w, "job not found", http.StatusNotFound)
		return
	}
	f.reply(w, f.index, j.job)
}

func (f *fakeNomad) evaluations(w http.ResponseWriter, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.lookup(id)
	if j == nil {
		http.Error(w, "job not found", http.StatusNotFound)
		return
	}
	out := []*nomadapi.Evaluation{}
	out = append(out, j.evals...)
	f.reply(w, f.index, out)
}

func (f *fakeNomad) list(w http.ResponseWriter, r *http.Request) {
	withMeta := r.URL.Query().Get("meta") == "true"
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []nomadapi.JobListStub
	for id, j := range f.jobs {
		if j.purged {
			continue
		}
		var sum nomadapi.TaskGroupSummary
		for _, a := range append([]*nomadapi.AllocationListStub{j.alloc}, j.replacements...) {
			switch {
			case a == nil:
			case a.ClientStatus == "pending":
				sum.Starting++
			case a.ClientStatus == "running":
				sum.Running++
			case a.ClientStatus == "complete":
				sum.Complete++
			case a.ClientStatus == "failed":
				sum.Failed++
			case a.ClientStatus == "lost":
				sum.Lost++
			}
		}
		stub := nomadapi.JobListStub{ID: id, Name: id, Type: "batch", Status: *j.job.Status, Stop: *j.job.Stop,
			JobSummary: &nomadapi.JobSummary{JobID: id, Summary: map[string]nomadapi.TaskGroupSummary{groupName: sum}}}
		if withMeta {
			stub.Meta = maps.Clone(j.job.Meta)
		}
		out = append(out, stub)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	f.reply(w, f.index, out)
}

// allocations answers GET /v1/job/:id/allocations, blocking while the
// index has not passed ?index= (at most ?wait=), as Nomad does.
func (f *fakeNomad) allocations(w http.ResponseWriter, r *http.Request, id string) {
	q := r.URL.Query()
	index, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	wait := 5 * time.Minute
	if d, err := time.ParseDuration(q.Get("wait")); err == nil {
		wait = d
	}
	f.mu.Lock()
	f.allocQueries = append(f.allocQueries, index)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for expired := false; index > 0 && f.allocIndex <= index && !expired; {
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			expired = true
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if index > 0 && f.failBlocking > 0 {
		f.failBlocking--
		http.Error(w, "No cluster leader", http.StatusInternalServerError)
		return
	}
	out := []nomadapi.AllocationListStub{}
	if j := f.lookup(id); j != nil && j.alloc != nil {
		// Nomad v1.6.5 leaves AllocatedResources out of a job's
		// allocation stubs even with ?resources=true; only
		// GET /v1/allocation/:id has them.
		for _, a := range append([]*nomadapi.AllocationListStub{j.alloc}, j.replacements...) {
			stub := *a
			stub.AllocatedResources = nil
			out = append(out, stub)
		}
	}
	f.reply(w, f.allocIndex, out)
}

// allAllocations answers GET /v1/allocations, understanding only a filter
// of the form `JobID == "a" or JobID == "b"` (what List sends).
func (f *fakeNomad) allAllocations(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []nomadapi.AllocationListStub{}
	for _, m := range regexp.MustCompile(`JobID == "([^"]*)"`).FindAllStringSubmatch(r.URL.Query().Get("filter"), -1) {
		if j := f.lookup(m[1]); j != nil && j.alloc != nil {
			for _, a := range append([]*nomadapi.AllocationListStub{j.alloc}, j.replacements...) {
				stub := *a
				stub.AllocatedResources = nil
				out = append(out, stub)
			}
		}
	}
	f.reply(w, f.allocIndex, out)
}

func (f *fakeNomad) allocation(w http.ResponseWriter, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allocReads++
	for _, j := range f.jobs {
		for _, a := range append([]*nomadapi.AllocationListStub{j.alloc}, j.replacements...) {
			if a == nil || a.ID != id {
				continue
			}
			f.reply(w, f.index, nomadapi.Allocation{ID: a.ID, NodeID: a.NodeID, JobID: a.JobID, TaskGroup: a.TaskGroup,
				ClientStatus: a.ClientStatus, TaskStates: a.TaskStates, AllocatedResources: a.AllocatedResources})
			return
		}
	}
	http.Error(w, "alloc not found", http.StatusNotFound)
}

func (f *fakeNomad) deregister(w http.ResponseWriter, r *http.Request, id string) {
	purge := r.URL.Query().Get("purge") == "true"
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.lookup(id)
	if j == nil {
		http.Error(w, "job not found", http.StatusNotFound)
		return
	}
	f.bump()
	j.job.Stop, j.job.Status, j.job.ModifyIndex = new(true), new("dead"), new(f.index)
	if a := j.alloc; a != nil && (a.ClientStatus == "running" || a.ClientStatus == "pending") {
		// The task gets SIGTERM and obeys at once.
		f.endLocked(j, "complete", 143, 15)
		f.allocIndex = f.index
	}
	for _, a := range j.replacements {
		if a.ClientStatus == "running" || a.ClientStatus == "pending" {
			a.ClientStatus, a.DesiredStatus, a.ModifyIndex = "complete", "stop", f.index
			f.allocIndex = f.index
		}
	}
	j.purged = purge
	f.reply(w, f.index, nomadapi.JobDeregisterResponse{EvalID: "eval-stop-" + id, JobModifyIndex: f.index})
}

// logs answers GET /v1/client/fs/logs/:alloc with Nomad's JSON frames. A
// follow stream sends what is appended and never ends by itself (Nomad's
// does not end when the task dies either).
func (f *fakeNomad) logs(w http.ResponseWriter, r *http.Request, allocID string) {
	q := r.URL.Query()
	typ, follow := q.Get("type"), q.Get("follow") == "true"
	if q.Get("task") != taskName || (typ != "stdout" && typ != "stderr") || q.Get("origin") != "start" {
		http.Error(w, "bad logs request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	var job *fakeJob
	for _, j := range f.jobs {
		if j.alloc != nil && j.alloc.ID == allocID {
			job = j
		}
	}
	if job == nil {
		f.mu.Unlock()
		http.Error(w, "unknown allocation", http.StatusNotFound)
		return
	}
	if ts := job.alloc.TaskStates[taskName]; ts == nil || ts.StartedAt.IsZero() {
		f.mu.Unlock()
		http.Error(w, fmt.Sprintf("task %q not started yet. No logs available", taskName), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush() // Nomad answers at once, before any output
	enc := json.NewEncoder(w)
	var sent int
	for {
		data := job.logs[typ][sent:]
		ch := f.changed
		f.mu.Unlock()
		if len(data) > 0 {
			sent += len(data)
			if enc.Encode(nomadapi.StreamFrame{Offset: int64(sent), Data: data, File: "alloc/logs/task." + typ + ".0"}) != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
		if !follow {
			return
		}
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
	}
}

// signal answers PUT /v1/client/allocation/:id/signal. SIGTERM ends the
// task with 143 unless the job ignores it; SIGKILL ends it with 137.
func (f *fakeNomad) signal(w http.ResponseWriter, r *http.Request, allocID string) {
	var req nomadapi.AllocSignalRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Task != taskName {
		http.Error(w, "bad signal request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.alloc == nil || j.alloc.ID != allocID {
			continue
		}
		f.signals = append(f.signals, req.Signal)
		if j.alloc.ClientStatus != "running" {
			http.Error(w, "Task not running", http.StatusBadRequest)
			return
		}
		switch {
		case req.Signal == "SIGKILL":
			f.bumpAlloc()
			f.endLocked(j, "failed", 137, 9)
		case req.Signal == "SIGTERM" && !j.ignoreTerm:
			f.bumpAlloc()
			f.endLocked(j, "failed", 143, 15)
		}
		f.reply(w, f.index, struct{}{})
		return
	}
	http.Error(w, "unknown allocation", http.StatusNotFound)
}

// --- what the test does to a job ---------------------------------------

func (f *fakeNomad) job(id string) *fakeJob {
	f.t.Helper()
	j := f.lookup(id)
	if j == nil {
		f.t.Fatalf("fake nomad: no job %s", id)
	}
	return j
}

// place gives the job its allocation (pending: the image is pulled).
func (f *fakeNomad) place(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.job(id)
	f.bumpAlloc()
	j.alloc = &nomadapi.AllocationListStub{ID: "alloc-" + id, NodeID: "node-1", NodeName: "fake-node", JobID: id,
		TaskGroup: groupName, ClientStatus: "pending", DesiredStatus: "run", CreateIndex: f.index, ModifyIndex: f.index,
		TaskStates: map[string]*nomadapi.TaskState{taskName: {State: "pending", Events: []*nomadapi.TaskEvent{
			{Type: "Received", DisplayMessage: "Task received by client"},
			{Type: "Driver", DisplayMessage: "Downloading image"},
		}}},
		AllocatedResources: &nomadapi.AllocatedResources{Shared: nomadapi.AllocatedSharedResources{
			Networks: []*nomadapi.NetworkResource{{Mode: "host", IP: "10.1.2.3"}}}},
	}
	// Ports the group reserved are the allocation's, on the node's
	// address (Nomad's AllocatedSharedResources).
	for _, g := range j.job.TaskGroups {
		for _, n := range g.Networks {
			shared := &j.alloc.AllocatedResources.Shared
			shared.Networks[0].ReservedPorts = append(shared.Networks[0].ReservedPorts, n.ReservedPorts...)
			for _, p := range n.ReservedPorts {
				shared.Ports = append(shared.Ports, nomadapi.PortMapping{Label: p.Label, Value: p.Value, HostIP: "10.1.2.3"})
			}
		}
	}
	j.job.Status, j.job.ModifyIndex = new("running"), new(f.index)
}

// run starts the task (placing it first if needed).
func (f *fakeNomad) run(id string) {
	f.mu.Lock()
	placed := f.job(id).alloc != nil
	f.mu.Unlock()
	if !placed {
		f.place(id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.job(id)
	f.bumpAlloc()
	ts := j.alloc.TaskStates[taskName]
	ts.State, ts.StartedAt = "running", time.Now().UTC()
	ts.Events = append(ts.Events, &nomadapi.TaskEvent{Type: "Started", DisplayMessage: "Task started by client"})
	j.alloc.ClientStatus = "running"
	j.alloc.ModifyIndex = f.index
}

// exit ends the running task with code (and signal).
func (f *fakeNomad) exit(id string, code, signal int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bumpAlloc()
	status := "complete"
	if code != 0 {
		status = "failed"
	}
	f.endLocked(f.job(id), status, code, signal)
	f.job(id).job.Status = new("dead")
}

func (f *fakeNomad) endLocked(j *fakeJob, status string, code, signal int) {
	ts := j.alloc.TaskStates[taskName]
	ts.State, ts.Failed, ts.FinishedAt = "dead", status == "failed", time.Now().UTC()
	ts.Events = append(ts.Events, &nomadapi.TaskEvent{Type: "Terminated", ExitCode: code,
		DisplayMessage: fmt.Sprintf("Exit Code: %d", code),
		Details:        map[string]string{"exit_code": strconv.Itoa(code), "signal": strconv.Itoa(signal), "oom_killed": "false"}})
	j.alloc.ClientStatus = status
	j.alloc.ModifyIndex = f.index
}

// failDriver fails the task before it starts (an image that cannot be
// pulled).
func (f *fakeNomad) failDriver(id, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.job(id)
	f.bumpAlloc()
	ts := j.alloc.TaskStates[taskName]
	ts.State, ts.Failed, ts.FinishedAt = "dead", true, time.Now().UTC()
	ts.Events = append(ts.Events, &nomadapi.TaskEvent{Type: "Driver Failure", DisplayMessage: msg, DriverError: msg, FailsTask: true},
		&nomadapi.TaskEvent{Type: "Not Restarting", DisplayMessage: "Error was unrecoverable"})
	j.alloc.ClientStatus = "failed"
	j.job.Status = new("dead")
}

// lose marks the allocation lost (its node went away).
func (f *fakeNomad) lose(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.job(id)
	f.bumpAlloc()
	j.alloc.ClientStatus, j.alloc.ClientDescription = "lost", "alloc is lost since its node is down"
	j.alloc.DesiredStatus = "stop"
	j.alloc.ModifyIndex = f.index
	j.job.Status = new("dead")
}

// write appends to the task's stdout or stderr.
func (f *fakeNomad) write(id, typ, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.job(id)
	j.logs[typ] = append(j.logs[typ], s...)
	f.bump()
}

// blockingQueries lists the index of every allocations query that asked
// to block (index > 0).
// blockingJobQueries are the ?index= of each blocking GET /v1/job/:id.
func (f *fakeNomad) blockingJobQueries() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.jobQueries...)
}

func (f *fakeNomad) blockingQueries() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint64
	for _, i := range f.allocQueries {
		if i > 0 {
			out = append(out, i)
		}
	}
	return out
}

func (f *fakeNomad) lastRegister() nomadapi.JobRegisterRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.registers) == 0 {
		f.t.Fatal("fake nomad: nothing registered")
	}
	return f.registers[len(f.registers)-1]
}

func (f *fakeNomad) currentIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

// registered reports whether a job of that id is registered (not purged).
func (f *fakeNomad) registered(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookup(id) != nil
}

// registerCount returns the register requests so far.
func (f *fakeNomad) registerCount() []nomadapi.JobRegisterRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]nomadapi.JobRegisterRequest(nil), f.registers...)
}

// sentSignals returns the signals sent to allocations so far.
func (f *fakeNomad) sentSignals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.signals...)
}

// ignoreTERM makes the job's task ignore SIGTERM.
func (f *fakeNomad) ignoreTERM(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.job(id).ignoreTerm = true
}

// loseAndReplace marks the allocation lost and, as Nomad does whatever
// the reschedule policy says, places a replacement that runs.
func (f *fakeNomad) loseAndReplace(id string) {
	f.lose(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.job(id)
	f.bumpAlloc()
	j.replacements = append(j.replacements, &nomadapi.AllocationListStub{ID: "alloc-2-" + id, NodeID: "node-2",
		NodeName: "fake-node-2", JobID: id, TaskGroup: groupName, ClientStatus: "running", DesiredStatus: "run",
		CreateIndex: f.index, ModifyIndex: f.index,
		TaskStates: map[string]*nomadapi.TaskState{taskName: {State: "running", StartedAt: time.Now().UTC()}}})
	j.job.Status, j.job.ModifyIndex = new("running"), new(f.index)
}

// replacementStatus is the client status of the job's replacement
// allocation.
func (f *fakeNomad) replacementStatus(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.job(id).replacements[0].ClientStatus
}

// stopped reports whether the job was deregistered.
func (f *fakeNomad) stopped(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.job(id).job.Stop
}

// block records that Nomad could not place the job: the evaluation
// completed with the group's failed placement and a blocked evaluation
// waits for capacity (what /v1/job/:id/evaluations shows).
func (f *fakeNomad) block(id string, metric *nomadapi.AllocationMetric) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blockLocked(id, metric)
}

// blockOnRegister makes the job of that id, once registered, one Nomad
// cannot place (block at its register, before anyone reads it).
func (f *fakeNomad) blockOnRegister(id string, metric *nomadapi.AllocationMetric) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unplaceable == nil {
		f.unplaceable = map[string]*nomadapi.AllocationMetric{}
	}
	f.unplaceable[id] = metric
}

func (f *fakeNomad) blockLocked(id string, metric *nomadapi.AllocationMetric) {
	j := f.job(id)
	f.bump()
	j.evals = append(j.evals,
		&nomadapi.Evaluation{ID: "eval-" + id, JobID: id, Status: "complete", BlockedEval: "eval-blocked-" + id,
			FailedTGAllocs: map[string]*nomadapi.AllocationMetric{groupName: metric}, CreateIndex: f.index},
		&nomadapi.Evaluation{ID: "eval-blocked-" + id, JobID: id, Status: "blocked", TriggeredBy: "queued-allocs",
			FailedTGAllocs: map[string]*nomadapi.AllocationMetric{groupName: metric}, CreateIndex: f.index})
}

// failNextBlocking makes the next n blocking allocations queries fail
// with a 500 once they are woken.
func (f *fakeNomad) failNextBlocking(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failBlocking = n
}

// requestsSince lists the requests ("METHOD path") made after the first n.
func (f *fakeNomad) requestsSince(n int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests[n:]...)
}

// requestCount is how many requests were made so far.
func (f *fakeNomad) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}
