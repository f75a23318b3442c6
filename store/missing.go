package store

import (
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// MarkerUse is one variable of one task whose value is a marker.
type MarkerUse struct {
	Task, Variable string
	Kind, Key      string
}

// MissingValues lists, in the order of their first use, the values uses
// name that are not there now (or, for a global secret, that the
// namespace may not use), each once with every use and the command that
// fixes it. run is the run the uses belong to (0: before it exists, when
// no run object can exist yet). It never opens a secret: existence is all
// it checks.
func MissingValues(tx *bbolt.Tx, ns, pipeline string, run int64, uses []MarkerUse) ([]model.MissingValue, error) {
	var out []model.MissingValue
	at := map[string]int{} // kind|key → index in out, or -1 when present
	for _, u := range uses {
		id := u.Kind + "|" + u.Key
		i, seen := at[id]
		if !seen {
			problem, fix, err := markerProblem(tx, ns, pipeline, run, u.Kind, u.Key)
			if err != nil {
				return nil, err
			}
			if problem == "" {
				at[id] = -1
				continue
			}
			i = len(out)
			at[id] = i
			out = append(out, model.MissingValue{Kind: u.Kind, Key: u.Key, Problem: problem, Fix: fix})
		}
		if i >= 0 {
			out[i].UsedBy = append(out[i].UsedBy, u.Task+"."+u.Variable)
		}
	}
	return out, nil
}

// markerProblem says why the value a marker names cannot be used now
// ("" when it can) and what fixes that.
func markerProblem(tx *bbolt.Tx, ns, pipeline string, run int64, kind, key string) (problem, fix string, err error) {
	fix = MarkerFix(ns, pipeline, run, kind, key)
	switch kind {
	case "pipeline_secret", "global_secret":
		scopeNS, scopePipeline := ns, pipeline
		if kind == "global_secret" {
			scopeNS, scopePipeline = "", ""
		}
		s, err := GetSecret(tx, scopeNS, scopePipeline, key)
		if err != nil || s == nil {
			return "does not exist", fix, err
		}
		if kind == "global_secret" && !s.AllowsNamespace(ns) {
			return fmt.Sprintf("may not be used in namespace %q (it allows %s)", ns, strings.Join(s.Namespaces, ", ")),
				globalSecretAllowFix(s.Secret, ns), nil
		}
		return "", "", nil
	case "pipeline_object", "run_object":
		if kind == "run_object" && run == 0 {
			return "does not exist (the run has not started)", fix, nil
		}
		if kind == "pipeline_object" {
			run = 0
		}
		o, err := GetObjectInfo(tx, ns, pipeline, run, key)
		if err != nil || o == nil {
			return "does not exist", fix, err
		}
		return "", "", nil
	}
	return fmt.Sprintf("%q is not a marker kind", kind), "use pipeline_secret, global_secret, pipeline_object or run_object", nil
}

// MarkerFix is the command that stores the value a marker names, in the
// CLI's own syntax (cli/secret.go, cli/object.go); run 0 (not started)
// leaves RUN for a run object's number.
func MarkerFix(ns, pipeline string, run int64, kind, key string) string {
	switch kind {
	case "pipeline_secret":
		return fmt.Sprintf("gofer secret pipeline put %s %s VALUE -n %s", pipeline, key, ns)
	case "global_secret":
		return fmt.Sprintf("gofer secret global put %s VALUE", key)
	case "pipeline_object":
		return fmt.Sprintf("gofer pipeline object put %s %s FILE -n %s", pipeline, key, ns)
	case "run_object":
		runID := "RUN"
		if run != 0 {
			runID = fmt.Sprint(run)
		}
		return fmt.Sprintf("gofer run object put %s %s %s FILE -n %s", pipeline, runID, key, ns)
	}
	return ""
}

// globalSecretAllowFix stores the global secret again with ns added to
// the namespace expressions it has.
func globalSecretAllowFix(s model.Secret, ns string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gofer secret global put %s VALUE --force", s.Key)
	for _, expr := range s.Namespaces {
		fmt.Fprintf(&b, " --namespaces '%s'", strings.ReplaceAll(expr, "'", `'\''`))
	}
	fmt.Fprintf(&b, " --namespaces %s", ns)
	return b.String()
}

// DescribeMissing is a one-line account of missing values: each with its
// problem, its uses and its fix, separated by "; ".
func DescribeMissing(missing []model.MissingValue) string {
	parts := make([]string, len(missing))
	for i, m := range missing {
		parts[i] = fmt.Sprintf("%s %q %s (used by %s; fix: %s)", m.Kind, m.Key, m.Problem, strings.Join(m.UsedBy, ", "), m.Fix)
	}
	return strings.Join(parts, "; ")
}
