package api

import (
	"testing"

	"github.com/goferhq/gofer/store/model"
)

// A run's token reaches what lives under its pipeline, never the
// pipeline itself, another pipeline, its secrets or the event stream.
func TestRunTokenScope(t *testing.T) {
	z := newAuthorizer()
	id := &identity{RunToken: true, Roles: []*model.Role{{ID: "run-token", Permissions: model.RunTokenPermissions("team", "build")}}}
	under := func(kinds ...string) []resourceRef {
		refs := []resourceRef{{kind: "namespaces", target: "team"}, {kind: "pipelines", target: "build"}}
		for _, k := range kinds {
			refs = append(refs, resourceRef{kind: k})
		}
		return refs
	}
	for _, tc := range []struct {
		what   string
		refs   []resourceRef
		action model.Action
		want   bool
	}{
		{"store a run object", under("runs", "objects"), model.ActionWrite, true},
		{"start a run", under("runs"), model.ActionWrite, true},
		{"read the pipeline", under(), model.ActionRead, true},
		{"read configs", under("configs"), model.ActionRead, true},
		{"disable the pipeline", under(), model.ActionWrite, false},
		{"delete the pipeline", under(), model.ActionDelete, false},
		{"read secrets", under("secrets"), model.ActionRead, false},
		{"write configs", under("configs"), model.ActionWrite, false},
		{"read events", []resourceRef{{kind: "events"}}, model.ActionRead, false},
		{"another pipeline's objects", []resourceRef{{kind: "namespaces", target: "team"}, {kind: "pipelines", target: "deploy"}, {kind: "objects"}}, model.ActionRead, false},
		{"another namespace", []resourceRef{{kind: "namespaces", target: "teamx"}, {kind: "pipelines", target: "build"}, {kind: "runs"}}, model.ActionRead, false},
	} {
		if got := z.allowed(id, tc.refs, tc.action); got != tc.want {
			t.Errorf("%s: allowed = %v, want %v", tc.what, got, tc.want)
		}
	}
}
