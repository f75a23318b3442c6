package github

import (
	"fmt"
	"slices"
	"strings"
)

// Supported events: those a run can be started for.
var supportedEvents = []string{"push", "pull_request", "release"}

// filter is one <event>[/<action>,<action>…]; no actions means any.
type filter struct {
	event   string
	actions []string
}

// parseFilters parses "push; pull_request/opened,synchronize release".
func parseFilters(text string) ([]filter, error) {
	fields := strings.FieldsFunc(text, func(r rune) bool { return r == ';' || r == ' ' || r == '\n' || r == '\t' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("at least one event is required, e.g. push or pull_request/opened,synchronize (supported: %s)", strings.Join(supportedEvents, ", "))
	}
	var out []filter
	for _, f := range fields {
		event, actions, hasActions := strings.Cut(f, "/")
		if !slices.Contains(supportedEvents, event) {
			return nil, fmt.Errorf("event %q is not supported (supported: %s)", event, strings.Join(supportedEvents, ", "))
		}
		fl := filter{event: event}
		if hasActions {
			for _, a := range strings.Split(actions, ",") {
				if a = strings.TrimSpace(a); a == "" {
					return nil, fmt.Errorf("%q: empty action", f)
				}
				fl.actions = append(fl.actions, a)
			}
		}
		out = append(out, fl)
	}
	return out, nil
}

func (s subscription) matches(repository, event, action string) bool {
	if !strings.EqualFold(s.repository, repository) {
		return false
	}
	for _, f := range s.filters {
		if f.event == event && (len(f.actions) == 0 || slices.Contains(f.actions, action)) {
			return true
		}
	}
	return false
}

func formatFilters(fs []filter) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.event
		if len(f.actions) > 0 {
			parts[i] += "/" + strings.Join(f.actions, ",")
		}
	}
	return strings.Join(parts, ";")
}
