package sdk

// Interpolation markers. A task variable whose whole value is one of these
// markers is replaced, when the task starts (after its parents finished), by
// a secret or an object from Gofer's stores; the stored config and the API
// keep the marker, never the secret. Any other value is passed to the
// container as it is, so a marker inside a longer string is not replaced.
//
// The markers are plain strings and can also be written by hand:
// pipeline_secret{{key}}, global_secret{{key}}, pipeline_object{{key}} and
// run_object{{key}}.

import (
	"regexp"
	"strings"
)

// PipelineSecret returns the marker for the pipeline secret key:
// "pipeline_secret{{key}}".
func PipelineSecret(key string) string { return "pipeline_secret{{" + key + "}}" }

// GlobalSecret returns the marker for the global secret key:
// "global_secret{{key}}". A global secret is given only to the namespaces
// its administrator allowed.
func GlobalSecret(key string) string { return "global_secret{{" + key + "}}" }

// PipelineObject returns the marker for the pipeline object key:
// "pipeline_object{{key}}". Pipeline objects outlive runs.
func PipelineObject(key string) string { return "pipeline_object{{" + key + "}}" }

// RunObject returns the marker for the run object key: "run_object{{key}}".
// Run objects belong to one run; an upstream task can store one for the
// tasks that depend on it.
func RunObject(key string) string { return "run_object{{" + key + "}}" }

// marker matches a value that is, trimmed, one interpolation marker, as
// upstream Gofer defines them: the kind is case-insensitive and spaces
// inside the braces are ignored.
var marker = regexp.MustCompile(`(?i)^\s*(pipeline_secret|global_secret|pipeline_object|run_object)\{\{\s*(.*?)\s*\}\}\s*$`)

// ParseMarker reports whether a variable's value is an interpolation
// marker, and which: kind is "pipeline_secret", "global_secret",
// "pipeline_object" or "run_object" (lower case), key what it names.
func ParseMarker(value string) (kind, key string, ok bool) {
	if !strings.Contains(value, "{{") {
		return "", "", false // the common case, without the regexp
	}
	m := marker.FindStringSubmatch(value)
	if m == nil {
		return "", "", false
	}
	return strings.ToLower(m[1]), m[2], true
}
