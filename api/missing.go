package api

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

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
	noun := "secrets or objects"
	if len(missing) == 1 {
		noun = "secret or object"
	}
	e := newError(status, code, "%s: %d %s it names are not there: %s", what, len(missing), noun, store.DescribeMissing(missing))
	e.missing = missing
	return e
}

// checkRunValues refuses (409, like the other reasons a run cannot start
// now) a run whose tasks name secrets or objects that are not there:
// pipeline and global secrets, and the objects of a task that no task
// before it (depends_on, transitively) could store, having no
// inject_api_token. It reads the leader's state (writes run there) and
// checks existence only; the executor resolves the values when each task
// starts and fails a task whose values went missing since. A repeat of a
// start (its idempotency or trigger key already started a run) is not
// checked: it answers with that run.
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
		if err != nil || p == nil || p.LiveVersion == 0 {
			return err // the FSM refuses such a start, saying why
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

// runMarkerUses lists the markers a run's tasks will resolve, task by task
// in config order and by variable name within a task: each task's own
// variables with the run's replacing those whose names differ only in
// case (as the executor builds a task's environment). Objects of a task
// below one with inject_api_token are left out: that task may store them.
func runMarkerUses(tasks []*sdk.TaskConfig, runVars map[string]string) []store.MarkerUse {
	runMarkers, runLower := markerNames(runVars), make(map[string]bool, len(runVars))
	taskHasMarker := false
	for _, t := range tasks {
		if len(markerNames(t.Variables)) > 0 {
			taskHasMarker = true
			break
		}
	}
	if len(runMarkers) == 0 && !taskHasMarker {
		return nil // the common case
	}
	for name := range runVars {
		runLower[strings.ToLower(name)] = true
	}
	byID := make(map[string]*sdk.TaskConfig, len(tasks))
	for _, t := range tasks {
		byID[t.ID] = t
	}
	canStore := tokenAbove(tasks, byID)
	var uses []store.MarkerUse
	for _, t := range tasks {
		env := map[string]string{}
		for _, name := range markerNames(t.Variables) {
			if !runLower[strings.ToLower(name)] {
				env[name] = t.Variables[name]
			}
		}
		for _, name := range runMarkers {
			env[name] = runVars[name]
		}
		names := make([]string, 0, len(env))
		for name := range env {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			kind, key, _ := sdk.ParseMarker(env[name])
			if (kind == "pipeline_object" || kind == "run_object") && canStore[t.ID] {
				continue
			}
			uses = append(uses, store.MarkerUse{Task: t.ID, Variable: name, Kind: kind, Key: key})
		}
	}
	return uses
}

// tokenAbove says, for each task, whether a task it depends on (directly
// or not) has inject_api_token, and so may store objects for it.
func tokenAbove(tasks []*sdk.TaskConfig, byID map[string]*sdk.TaskConfig) map[string]bool {
	memo := make(map[string]bool, len(tasks))
	var visit func(id string, depth int) bool
	visit = func(id string, depth int) bool {
		if v, ok := memo[id]; ok {
			return v
		}
		memo[id] = false // a registered config has no cycle; this ends one anyway
		t := byID[id]
		if t == nil || depth > len(tasks) {
			return false
		}
		above := false
		for parent := range t.DependsOn {
			if p := byID[parent]; p != nil && (p.InjectAPIToken || visit(parent, depth+1)) {
				above = true
				break
			}
		}
		memo[id] = above
		return above
	}
	for _, t := range tasks {
		visit(t.ID, 0)
	}
	return memo
}
