package executor

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// Interpolation replaces a variable whose value is a marker
// (pipeline_secret{{key}} and its kin) by the secret or object it names,
// at container start, after the task's parents finished (so a parent can
// store a run object for its children). State keeps the markers: the
// values exist only in the container's environment, and secret values are
// masked in the stored log.

// maxEnvVarBytes is Linux's limit on one environment string (NAME=value,
// MAX_ARG_STRLEN less its NUL): a longer one makes the container's exec
// fail with "argument list too long".
const maxEnvVarBytes = 128<<10 - 1

// interpolation is a task's environment with its markers resolved.
type interpolation struct {
	env map[string]string
	// secrets are the secret values it holds (and replaced ones), to mask
	// in the log; package mask decides which forms of them, and ignores
	// values too short to mask.
	secrets [][]byte
	// problem is why a marker could not be resolved ("" when all were):
	// every value that is not there, or else the first variable, in name
	// order, whose value could not be opened or used.
	problem string
}

// interpolate resolves t's markers from current state.
func (e *Executor) interpolate(t *model.TaskExecution) interpolation {
	var names []string // only variables holding a marker: usually none
	for name, value := range t.Variables {
		if _, _, ok := sdk.ParseMarker(value); ok {
			names = append(names, name)
		}
	}
	out := interpolation{env: t.Variables}
	inject := t.Task != nil && t.Task.InjectAPIToken
	if len(names) == 0 && !inject {
		return out
	}
	sort.Strings(names)
	out.env = make(map[string]string, len(t.Variables))
	for k, v := range t.Variables {
		out.env[k] = v
	}
	_ = e.state.View(func(tx *bbolt.Tx) error {
		// Every value that is not there, named at once (each with its
		// fix), so one failed task tells the whole story.
		uses := make([]store.MarkerUse, len(names))
		for i, name := range names {
			kind, key, _ := sdk.ParseMarker(t.Variables[name])
			uses[i] = store.MarkerUse{Task: t.TaskID, Variable: name, Kind: kind, Key: key}
		}
		if missing, err := store.MissingValues(tx, t.NamespaceID, t.PipelineID, t.RunID, uses); err == nil && len(missing) > 0 {
			out.problem = describeTaskMissing(t.TaskID, missing)
			return nil
		}
		for _, name := range names {
			kind, key, _ := sdk.ParseMarker(t.Variables[name])
			value, secret, err := e.resolveMarker(tx, t, kind, key, &out.secrets)
			if err == nil && len(name)+1+len(value) > maxEnvVarBytes {
				err = fmt.Errorf("%s %q is %d bytes; an environment variable holds at most %d (read large values through the API)", kind, key, len(value), maxEnvVarBytes-len(name)-1)
			}
			if err != nil {
				if out.problem == "" {
					out.problem = fmt.Sprintf("variable %s: %s", name, err)
				}
				continue
			}
			if bytes.IndexByte(value, 0) >= 0 {
				if out.problem == "" {
					out.problem = fmt.Sprintf("variable %s: %s %q holds a NUL byte, which an environment variable cannot carry", name, kind, key)
				}
				continue
			}
			out.env[name] = string(value)
			if secret {
				out.secrets = append(out.secrets, value)
			}
		}
		if inject {
			token, err := e.runToken(tx, t)
			if err != nil {
				if out.problem == "" {
					out.problem = "inject_api_token: " + err.Error()
				}
				return nil
			}
			// GOFER_TOKEN is the gofer CLI's variable (it also reads
			// GOFER_API_BASE_URL); GOFER_API_TOKEN is what the docs of
			// earlier Gofer versions promised.
			out.env["GOFER_TOKEN"], out.env["GOFER_API_TOKEN"] = string(token), string(token)
			out.secrets = append(out.secrets, token)
		}
		return nil
	})
	if n := envBytes(out.env); n > maxResolvedEnvBytes && out.problem == "" {
		out.problem = fmt.Sprintf("with its secrets and objects the environment is %d bytes; the limit is %d", n, maxResolvedEnvBytes)
	}
	return out
}

// maxResolvedEnvBytes bounds a task's environment once markers are
// resolved (the kernel refuses to exec with a few MiB of it).
const maxResolvedEnvBytes = 1 << 20

// runToken opens the API token of t's run.
func (e *Executor) runToken(tx *bbolt.Tx, t *model.TaskExecution) ([]byte, error) {
	r, err := store.GetRun(tx, t.NamespaceID, t.PipelineID, t.RunID)
	if err != nil || r == nil {
		return nil, fmt.Errorf("cannot read run %d: %v", t.RunID, err)
	}
	if r.TokenID == "" {
		return nil, fmt.Errorf("run %d has no API token (the leader that started it had no secret_store.encryption_key)", t.RunID)
	}
	tok, err := store.GetToken(tx, r.TokenID)
	if err != nil || tok == nil || len(tok.Sealed) == 0 {
		return nil, fmt.Errorf("the API token of run %d is gone", t.RunID)
	}
	if e.cfg.Secrets == nil {
		return nil, fmt.Errorf("the leader has no secret_store.encryption_key to open the run's token")
	}
	return e.cfg.Secrets.Open(tok.Sealed, seal.RunTokenLocation(tok.ID))
}

// resolveMarker reads one marker's value and says whether it is secret.
// Secrets' replaced values are appended to previous, for masking only.
func (e *Executor) resolveMarker(tx *bbolt.Tx, t *model.TaskExecution, kind, key string, previous *[][]byte) ([]byte, bool, error) {
	ns, pipeline := t.NamespaceID, t.PipelineID
	switch kind {
	case "pipeline_secret", "global_secret":
		v, prev, err := store.OpenSecretMarker(tx, e.cfg.Secrets, ns, pipeline, kind, key)
		if prev != nil {
			// Masked too: a task started before the value was replaced
			// may print the old one.
			*previous = append(*previous, prev)
		}
		return v, true, err
	case "pipeline_object", "run_object":
		run := int64(0)
		if kind == "run_object" {
			run = t.RunID
		}
		info, err := store.GetObjectInfo(tx, ns, pipeline, run, key)
		if err != nil {
			return nil, false, err
		}
		if info == nil {
			where := "pipeline " + ns + "/" + pipeline
			if run != 0 {
				where = fmt.Sprintf("run %d of %s", run, where)
			}
			return nil, false, fmt.Errorf("%s %q does not exist in %s", kind, key, where)
		}
		return store.GetObjectData(tx, ns, pipeline, run, key), false, nil
	}
	return nil, false, fmt.Errorf("unknown marker kind %q", kind)
}

// describeTaskMissing is a task's failure reason for values that are not
// there: each with the variables that name it and its fix, e.g.
// `variable API_KEY: pipeline_secret "api_key" does not exist (fix: gofer
// secret pipeline put deploy api_key VALUE -n default)`.
func describeTaskMissing(task string, missing []model.MissingValue) string {
	parts := make([]string, len(missing))
	for i, m := range missing {
		vars := make([]string, len(m.UsedBy))
		for j, u := range m.UsedBy {
			vars[j] = strings.TrimPrefix(u, task+".")
		}
		label := "variable"
		if len(vars) > 1 {
			label = "variables"
		}
		parts[i] = fmt.Sprintf("%s %s: %s %q %s (fix: %s)", label, strings.Join(vars, ", "), m.Kind, m.Key, m.Problem, m.Fix)
	}
	head := fmt.Sprintf("%d secrets or objects are not there: ", len(missing))
	if len(missing) == 1 {
		head = ""
	}
	return head + strings.Join(parts, "; ")
}
