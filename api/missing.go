package api

import (
	"fmt"
	"net/http"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// Missing values are reported all at once: a run start whose tasks name
// secrets or objects that are not there is refused with every one of them
// and the command that stores each (ErrorBody.Missing), instead of a run
// whose first task fails on the first one.

// missingValues is the error for values that are not there: status and
// code as the caller's route uses them, a one-line message that carries
// every fix (for clients that print only the message) and the list.
func missingValues(status int, code, what string, missing []model.MissingValue) *apiError {
	noun := "secrets or objects it names are"
	if len(missing) == 1 {
		noun = "secret or object it names is"
	}
	e := newError(status, code, "%s: %d %s not there: %s", what, len(missing), noun, store.DescribeMissing(missing))
	e.missing = missing
	return e
}

// checkRunValues refuses (409, like the other reasons a run cannot start
// now) a run whose tasks name secrets or objects that are not there: the
// pipeline and global secrets of every task that runs when every task
// succeeds, and the pipeline objects of the tasks that start with the run
// (no depends_on). A start the FSM refuses anyway (pipeline disabled or
// without a live version, runs paused cluster-wide) is not checked, so
// the caller hears that reason first. Before a task with
// parents starts, a parent (with inject_api_token) or a user may store
// its objects, and run objects exist only once the run does, so those are
// looked up when their task starts. It reads the leader's state (writes
// run there) and checks existence only; the executor resolves the values
// when each task starts and fails a task whose values went missing since.
// A repeat of a start (its idempotency or trigger key already started a
// run) is not checked: it answers with that run.
func (s *Server) checkRunValues(cmd fsm.RunCreate) error {
	var missing []model.MissingValue
	err := s.view(func(tx *bbolt.Tx) error {
		ns, id := cmd.NamespaceID, cmd.PipelineID
		if cmd.IdempotencyKey != "" {
			if run, _ := store.GetRunIDByKey(tx, ns, id, cmd.IdempotencyKey); run != 0 {
				return nil
			}
		}
		if cmd.TriggerKey != "" && store.GetTriggerKey(tx, ns, id, cmd.Extension, cmd.TriggerKey) != 0 {
			return nil
		}
		p, err := store.GetPipeline(tx, ns, id)
		if err != nil || p == nil || p.LiveVersion == 0 || p.State != model.PipelineStateActive {
			return err // the FSM refuses such a start, saying why
		}
		sys, err := store.GetSystem(tx)
		if err != nil || sys.IgnorePipelineRunEvents {
			return err // runs are paused: the FSM says so first
		}
		cfg, err := store.GetConfig(tx, ns, id, p.LiveVersion)
		if err != nil || cfg == nil {
			return err
		}
		uses := runMarkerUses(cfg.Tasks, cmd.Variables)
		if len(uses) == 0 {
			return nil
		}
		missing, err = store.MissingValues(tx, ns, id, 0, uses)
		return err
	})
	if err != nil || len(missing) == 0 {
		return err
	}
	return missingValues(http.StatusConflict, CodeConflict, fmt.Sprintf("pipeline %q did not start a run", cmd.PipelineID), missing)
}

// checkCanaryValues refuses (409, as a run start would be) a canary of
// version whose tasks name secrets or objects that are not there: a
// share of new runs will run that version, and the run start check
// (checkRunValues) looks at the live version only. Run variables are not
// known yet, so the task's own markers are checked. A deploy the FSM
// refuses anyway (no such version, no live version, a canary already
// running, which includes a repeat of this one) is not checked, so the
// caller hears that reason first.
func (s *Server) checkCanaryValues(ns, id string, version int64) error {
	var missing []model.MissingValue
	err := s.view(func(tx *bbolt.Tx) error {
		p, err := store.GetPipeline(tx, ns, id)
		if err != nil || p == nil || p.LiveVersion == 0 || p.ActiveCanary != 0 {
			return err
		}
		cfg, err := store.GetConfig(tx, ns, id, version)
		if err != nil || cfg == nil || cfg.State == model.ConfigStateLive {
			return err
		}
		uses := runMarkerUses(cfg.Tasks, nil)
		if len(uses) == 0 {
			return nil
		}
		missing, err = store.MissingValues(tx, ns, id, 0, uses)
		return err
	})
	if err != nil || len(missing) == 0 {
		return err
	}
	return missingValues(http.StatusConflict, CodeConflict,
		fmt.Sprintf("pipeline %q did not start a canary of version %d", id, version), missing)
}

// runMarkerUses lists the markers checkRunValues checks, task by task in
// config order and by variable name within a task: the markers in each
// task's variables as its container gets them (model.TaskVariables: the
// task's own with the run's overlaid, names that differ only in case
// replaced, as the executor does). Only tasks that run when every task
// succeeds are checked (runsWhenAllSucceed): a task that runs only after
// a failure may never run, and when it does the executor names every
// value it lacks.
func runMarkerUses(tasks []*sdk.TaskConfig, runVars map[string]string) []store.MarkerUse {
	hasMarker := len(markerNames(runVars)) > 0
	for _, t := range tasks {
		hasMarker = hasMarker || len(markerNames(t.Variables)) > 0
	}
	if !hasMarker {
		return nil // the common case
	}
	checked := runsWhenAllSucceed(tasks)
	var uses []store.MarkerUse
	for _, t := range tasks {
		if !checked[t.ID] {
			continue
		}
		env := model.TaskVariables(t.Variables, runVars)
		for _, name := range markerNames(env) {
			kind, key, _ := sdk.ParseMarker(env[name])
			if kind == "run_object" || (kind == "pipeline_object" && len(t.DependsOn) > 0) {
				continue
			}
			uses = append(uses, store.MarkerUse{Task: t.ID, Variable: name, Kind: kind, Key: key})
		}
	}
	return uses
}

// runsWhenAllSucceed is the set of tasks that run in a run where every
// task that runs succeeds: those with no parent, and those whose every
// parent is in the set and is required to end successful or any way. A
// task that requires a failure anywhere on its path of parents is left
// out. The registered config has no cycles and names only its own tasks;
// a parent that is not a task leaves its child out.
func runsWhenAllSucceed(tasks []*sdk.TaskConfig) map[string]bool {
	byID := make(map[string]*sdk.TaskConfig, len(tasks))
	for _, t := range tasks {
		byID[t.ID] = t
	}
	memo := make(map[string]bool, len(tasks))
	visiting := map[string]bool{}
	var runs func(id string) bool
	runs = func(id string) bool {
		if v, ok := memo[id]; ok {
			return v
		}
		t := byID[id]
		if t == nil || visiting[id] {
			return false
		}
		visiting[id] = true
		ok := true
		for parent, status := range t.DependsOn {
			if status == sdk.RequiredParentStatusFailure || !runs(parent) {
				ok = false
				break
			}
		}
		delete(visiting, id)
		memo[id] = ok
		return ok
	}
	for _, t := range tasks {
		runs(t.ID)
	}
	return memo
}
