package e2e

import (
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The history model of the chaos suite (e2e/chaos_test.go, build tag
// chaos), here without the tag so that its own test runs with the others.

// regInput is one operation on a register (an object key).
type regInput struct {
	key   string
	write bool
	value string // written value
}

// regOutput is what a read returned ("" = no such object).
type regOutput struct {
	value string
}

// registerModel is a register per object key: a read returns the last
// value written ("" before any write).
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(regInput).key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(regOutput).value == state.(string), state
	},
	Equal: func(a, b interface{}) bool { return a == b },
	DescribeOperation: func(input, output interface{}) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("put(%s, %q)", in.key, in.value)
		}
		return fmt.Sprintf("get(%s) -> %q", in.key, output.(regOutput).value)
	},
}

// TestChaosRegisterModelCatchesStaleReads: the checker the chaos suite
// relies on refuses a stale read after an acknowledged write, and accepts
// both outcomes of a write whose outcome is unknown (pending forever).
func TestChaosRegisterModelCatchesStaleReads(t *testing.T) {
	w := func(client int, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: regInput{key: "k", write: true, value: v}, Output: regOutput{}, Call: call, Return: ret}
	}
	r := func(client int, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: regInput{key: "k"}, Output: regOutput{value: v}, Call: call, Return: ret}
	}
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want bool
	}{
		{"read after write sees it", []porcupine.Operation{w(0, "a", 0, 10), r(1, "a", 20, 30)}, true},
		{"stale read after an acknowledged write", []porcupine.Operation{w(0, "a", 0, 10), w(0, "b", 20, 30), r(1, "a", 40, 50)}, false},
		{"read of a value never written", []porcupine.Operation{w(0, "a", 0, 10), r(1, "x", 20, 30)}, false},
		{"unknown write applied", []porcupine.Operation{w(0, "a", 0, 10), w(1, "b", 20, math.MaxInt64), r(2, "b", 40, 50), r(2, "b", 60, 70)}, true},
		{"unknown write never applied", []porcupine.Operation{w(0, "a", 0, 10), w(1, "b", 20, math.MaxInt64), r(2, "a", 40, 50)}, true},
		{"unknown write applied, then undone", []porcupine.Operation{w(0, "a", 0, 10), w(1, "b", 20, math.MaxInt64), r(2, "b", 40, 50), r(2, "a", 60, 70)}, false},
	}
	for _, tc := range cases {
		if got := porcupine.CheckOperations(registerModel, tc.ops); got != tc.want {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Keys are checked apart: a read of another key's value is wrong.
	ops := []porcupine.Operation{w(0, "a", 0, 10),
		{ClientId: 1, Input: regInput{key: "j"}, Output: regOutput{value: "a"}, Call: 20, Return: 30}}
	if porcupine.CheckOperations(registerModel, ops) {
		t.Error("a read of key j saw key k's value")
	}
}
