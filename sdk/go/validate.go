package sdk

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Sentinel errors for config validation; every returned error wraps one of
// these (or ErrInvalidIdentifier) and names the pipeline or task at fault.
var (
	ErrInvalidConfig     = errors.New("invalid pipeline config")
	ErrDuplicateTask     = errors.New("duplicate task id")
	ErrUnknownDependency = errors.New("unknown dependency")
	ErrDependencyCycle   = errors.New("dependency cycle")
)

// Validate checks the pipeline's ids, fields and task DAG. It returns the
// first problem found; errors name the task they concern.
func (p *PipelineConfig) Validate() error {
	if p == nil {
		return fmt.Errorf("%w: config is empty", ErrInvalidConfig)
	}
	if err := ValidateIdentifier(p.ID); err != nil {
		return fmt.Errorf("pipeline id: %w", err)
	}
	if len(p.Name) > MaxNameLength {
		return fmt.Errorf("%w: pipeline name is longer than %d characters", ErrInvalidConfig, MaxNameLength)
	}
	if len(p.Description) > MaxDescription {
		return fmt.Errorf("%w: pipeline description is longer than %d characters", ErrInvalidConfig, MaxDescription)
	}
	if p.Parallelism < 0 || p.Parallelism > MaxParallelism {
		return fmt.Errorf("%w: parallelism must be between 0 and %d, got %d", ErrInvalidConfig, MaxParallelism, p.Parallelism)
	}
	if err := validateDuration("pipeline timeout", p.Timeout, MaxTimeout); err != nil {
		return err
	}
	if r := p.RunRetention; r != nil {
		if r.Count < 0 || r.Count > MaxRunRetentionCount {
			return fmt.Errorf("%w: run_retention.count must be between 0 (no limit) and %d, got %d", ErrInvalidConfig, MaxRunRetentionCount, r.Count)
		}
		// A zero age ("0s", "0") is no limit, as an absent one is, and as
		// the builders (which omit it) and the server read it.
		if d, err := time.ParseDuration(r.Age); err != nil || d != 0 {
			if err := validateDuration("run_retention.age", r.Age, MaxRunRetentionAge); err != nil {
				return err
			}
		}
	}
	if len(p.Tasks) == 0 {
		return fmt.Errorf("%w: pipeline %q has no tasks", ErrInvalidConfig, p.ID)
	}
	if len(p.Tasks) > MaxTasks {
		return fmt.Errorf("%w: pipeline %q has %d tasks, the limit is %d", ErrInvalidConfig, p.ID, len(p.Tasks), MaxTasks)
	}
	for i, t := range p.Tasks {
		if t == nil {
			return fmt.Errorf("%w: task at position %d is empty", ErrInvalidConfig, i)
		}
		if err := t.validateFields(); err != nil {
			return err
		}
	}
	return ValidateDAG(p.Tasks)
}

func (t *TaskConfig) validateFields() error {
	if err := ValidateIdentifier(t.ID); err != nil {
		return fmt.Errorf("task %q: %w", truncateForError(t.ID), err)
	}
	if strings.TrimSpace(t.Image) == "" {
		return fmt.Errorf("%w: task %q: image is required", ErrInvalidConfig, t.ID)
	}
	if len(t.Image) > MaxImageLength {
		return fmt.Errorf("%w: task %q: image is longer than %d characters", ErrInvalidConfig, t.ID, MaxImageLength)
	}
	if err := ValidateImageRef(t.Image); err != nil {
		return fmt.Errorf("%w: tasks[%s].image: %q is not a valid image reference: %v", ErrInvalidConfig, t.ID, truncateForError(t.Image), err)
	}
	if len(t.Description) > MaxDescription {
		return fmt.Errorf("%w: task %q: description is longer than %d characters", ErrInvalidConfig, t.ID, MaxDescription)
	}
	if len(t.Variables) > MaxVariables {
		return fmt.Errorf("%w: task %q: %d variables, the limit is %d", ErrInvalidConfig, t.ID, len(t.Variables), MaxVariables)
	}
	for _, k := range sortedKeys(t.Variables) {
		if k == "" || len(k) > maxVariableKeyLen || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("%w: task %q: variable name %q must be 1 to %d characters without '=' or NUL",
				ErrInvalidConfig, t.ID, truncateForError(k), maxVariableKeyLen)
		}
	}
	if err := validateDuration(fmt.Sprintf("task %q: timeout", t.ID), t.Timeout, MaxTimeout); err != nil {
		return err
	}
	if err := validateDuration(fmt.Sprintf("task %q: retry_backoff", t.ID), t.RetryBackoff, MaxRetryBackoff); err != nil {
		return err
	}
	if t.Retries < 0 || t.Retries > MaxRetries {
		return fmt.Errorf("%w: task %q: retries must be between 0 and %d, got %d", ErrInvalidConfig, t.ID, MaxRetries, t.Retries)
	}
	if r := t.Resources; r != nil {
		if r.CPU < 0 || r.CPU > MaxCPU {
			return fmt.Errorf("%w: task %q: resources.cpu must be between 0 (the default) and %d MHz, got %d", ErrInvalidConfig, t.ID, MaxCPU, r.CPU)
		}
		if r.Memory < 0 || r.Memory > MaxMemory {
			return fmt.Errorf("%w: task %q: resources.memory must be between 0 (the default) and %d MB, got %d", ErrInvalidConfig, t.ID, MaxMemory, r.Memory)
		}
	}
	if len(t.DependsOn) > MaxDependencies {
		return fmt.Errorf("%w: task %q: %d dependencies, the limit is %d", ErrInvalidConfig, t.ID, len(t.DependsOn), MaxDependencies)
	}
	for _, parent := range sortedKeys(t.DependsOn) {
		if status := t.DependsOn[parent]; !status.Valid() {
			return fmt.Errorf("%w: task %q: dependency on %q has condition %q, want Any, Success or Failure",
				ErrInvalidConfig, t.ID, truncateForError(parent), truncateForError(string(status)))
		}
	}
	return nil
}

// ValidateDAG checks that task ids are valid and unique, that every
// dependency names a task in the pipeline, that no task depends on itself,
// and that the dependencies form no cycle. Errors name the offending task;
// a cycle error lists the whole cycle.
func ValidateDAG(tasks []*TaskConfig) error {
	byID := make(map[string]*TaskConfig, len(tasks))
	for _, t := range tasks {
		if err := ValidateIdentifier(t.ID); err != nil {
			return fmt.Errorf("task %q: %w", truncateForError(t.ID), err)
		}
		if _, dup := byID[t.ID]; dup {
			return fmt.Errorf("task %q: %w", t.ID, ErrDuplicateTask)
		}
		byID[t.ID] = t
	}
	// Check unknown dependencies in a stable order so the error is
	// reproducible whatever the map iteration order.
	for _, t := range tasks {
		for _, parent := range sortedKeys(t.DependsOn) {
			if parent == t.ID {
				return fmt.Errorf("task %q: %w: %s -> %s", t.ID, ErrDependencyCycle, t.ID, t.ID)
			}
			if _, ok := byID[parent]; !ok {
				return fmt.Errorf("task %q: %w %q", t.ID, ErrUnknownDependency, truncateForError(parent))
			}
		}
	}
	if cycle := findCycle(tasks, byID); cycle != nil {
		return fmt.Errorf("task %q: %w: %s", cycle[0], ErrDependencyCycle, strings.Join(cycle, " -> "))
	}
	return nil
}

// findCycle runs an iterative depth-first search (no recursion, so 10^4
// tasks cannot overflow the stack) and returns one cycle as a path that
// starts and ends with the same task, or nil.
func findCycle(tasks []*TaskConfig, byID map[string]*TaskConfig) []string {
	const (
		unvisited = iota
		inProgress
		done
	)
	state := make(map[string]int, len(tasks))
	type frame struct {
		id      string
		parents []string
		next    int
	}
	for _, root := range tasks {
		if state[root.ID] != unvisited {
			continue
		}
		stack := []frame{{id: root.ID, parents: sortedKeys(root.DependsOn)}}
		state[root.ID] = inProgress
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == len(top.parents) {
				state[top.id] = done
				stack = stack[:len(stack)-1]
				continue
			}
			parent := top.parents[top.next]
			top.next++
			switch state[parent] {
			case inProgress:
				// The cycle is the part of the stack from parent to top,
				// closed by parent again.
				var path []string
				start := 0
				for i := range stack {
					if stack[i].id == parent {
						start = i
						break
					}
				}
				for _, f := range stack[start:] {
					path = append(path, f.id)
				}
				return append(path, parent)
			case unvisited:
				state[parent] = inProgress
				stack = append(stack, frame{id: parent, parents: sortedKeys(byID[parent].DependsOn)})
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validateDuration accepts "" or a positive Go duration up to max.
func validateDuration(what, s string, max time.Duration) error {
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not a duration like \"90s\" or \"5m\"", ErrInvalidConfig, what, truncateForError(s))
	}
	if d <= 0 || d > max {
		return fmt.Errorf("%w: %s must be between 1ns and %s, got %s", ErrInvalidConfig, what, max, d)
	}
	return nil
}
