package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

// kahnHasCycle is an independent reference: Kahn's algorithm over a DAG
// whose dependencies all exist.
func kahnHasCycle(tasks []*TaskConfig) bool {
	indeg := map[string]int{}
	children := map[string][]string{}
	for _, t := range tasks {
		indeg[t.ID] += 0
		for p := range t.DependsOn {
			indeg[t.ID]++
			children[p] = append(children[p], t.ID)
		}
	}
	var queue []string
	for id, d := range indeg {
		if d == 0 {
			queue = append(queue, id)
		}
	}
	seen := 0
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		seen++
		for _, c := range children[id] {
			indeg[c]--
			if indeg[c] == 0 {
				queue = append(queue, c)
			}
		}
	}
	return seen != len(indeg)
}

// FuzzValidateDAG builds a graph from fuzz bytes and checks ValidateDAG
// against the reference: it never panics, and it reports a cycle exactly
// when Kahn's algorithm finds one.
func FuzzValidateDAG(f *testing.F) {
	f.Add([]byte{4, 0, 1, 1, 2, 2, 3})
	f.Add([]byte{3, 0, 1, 1, 2, 2, 0})
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{200, 5, 7, 7, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		n := int(data[0])%64 + 1
		tasks := make([]*TaskConfig, n)
		for i := range tasks {
			tasks[i] = &TaskConfig{ID: fmt.Sprintf("t%03d", i), Image: "x", DependsOn: map[string]RequiredParentStatus{}}
		}
		unknown := false
		for i := 1; i+1 < len(data); i += 2 {
			child, parent := int(data[i])%n, int(data[i+1])
			if parent >= 250 { // a dependency on a task that does not exist
				tasks[child].DependsOn["missing"] = RequiredParentStatusAny
				unknown = true
				continue
			}
			tasks[child].DependsOn[tasks[parent%n].ID] = RequiredParentStatusSuccess
		}
		err := ValidateDAG(tasks)
		if unknown {
			if !errors.Is(err, ErrUnknownDependency) && !errors.Is(err, ErrDependencyCycle) {
				t.Fatalf("graph with a missing dependency: got %v", err)
			}
			return
		}
		if want := kahnHasCycle(tasks); want != errors.Is(err, ErrDependencyCycle) {
			t.Fatalf("cycle=%v but ValidateDAG returned %v", want, err)
		}
		if err != nil && !errors.Is(err, ErrDependencyCycle) {
			t.Fatalf("unexpected error: %v", err)
		}
	})
}

// FuzzDecodeConfig feeds arbitrary bytes to the config decoder and
// validator: they must never panic, and a config that validates must
// survive a JSON round trip unchanged and still validate.
func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(`{"id":"simple","name":"Simple","parallelism":0,"tasks":[{"id":"hello","image":"busybox","depends_on":{},"variables":{"A":"b"}}]}`))
	f.Add([]byte(`{"id":"dag","name":"d","tasks":[{"id":"aaa","image":"x","depends_on":{"bbb":"Any"}},{"id":"bbb","image":"x","depends_on":{"aaa":"Success"}}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"tasks":[null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := DecodeConfig(data)
		if err != nil {
			return
		}
		if cfg.Validate() != nil {
			return
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal a valid config: %v", err)
		}
		again, err := DecodeConfig(out)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("round-tripped config no longer validates: %v", err)
		}
	})
}
