package model

import (
	"sort"
	"strings"
)

// OverlayEnv copies src into dst, a name replacing any other whose name
// differs from it only in case (strings.EqualFold). Names are copied in
// sorted order, so among src's names that differ only in case the last in
// that order wins, the same on every call. This is how a task container's
// environment is built (the executor) and how the run-start check of
// missing secrets and objects sees it (the API): one function, so the
// check never refuses a marker the container would not get, nor passes one
// it would.
func OverlayEnv(dst, src map[string]string) {
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for existing := range dst {
			if existing != k && strings.EqualFold(existing, k) {
				delete(dst, existing)
			}
		}
		dst[k] = src[k]
	}
}

// TaskVariables are the variables a task's container gets from its
// config and the run: the task's own, then the run's overlaid (OverlayEnv).
// The executor overlays both on the system variables (GOFER_*); those hold
// no markers and never remove a task's or run's variable, so the markers
// of the result are the container's.
func TaskVariables(task, run map[string]string) map[string]string {
	env := make(map[string]string, len(task)+len(run))
	OverlayEnv(env, task)
	OverlayEnv(env, run)
	return env
}
