package model

import (
	"reflect"
	"testing"
)

// TaskVariables builds a container's variables as the executor does: the
// run's replace the task's whose names differ only in case (Unicode
// folding, so "ſ" replaces "S"), and among names of one source that
// differ only in case the last in sorted order wins.
func TestTaskVariables(t *testing.T) {
	for _, tc := range []struct {
		task, run, want map[string]string
	}{
		{map[string]string{"API_KEY": "pipeline_secret{{a}}", "api_key": "x"}, nil, map[string]string{"api_key": "x"}},
		{map[string]string{"S": "pipeline_secret{{a}}"}, map[string]string{"ſ": "x"}, map[string]string{"ſ": "x"}},
		{map[string]string{"Token": "t", "KEEP": "k"}, map[string]string{"TOKEN": "r"}, map[string]string{"TOKEN": "r", "KEEP": "k"}},
	} {
		if got := TaskVariables(tc.task, tc.run); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("TaskVariables(%v, %v) = %v, want %v", tc.task, tc.run, got, tc.want)
		}
	}
}
