package sdk

import (
	"errors"
	"strings"
	"testing"
)

func task(id string, deps ...string) *TaskConfig {
	t := &TaskConfig{ID: id, Image: "busybox", DependsOn: map[string]RequiredParentStatus{}}
	for _, d := range deps {
		t.DependsOn[d] = RequiredParentStatusAny
	}
	return t
}

func TestValidateIdentifier(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"abc", true},
		{"simple_task", true},
		{"devops-test", true},
		{"A1_-z", true},
		{strings.Repeat("a", 32), true},
		{"ab", false},
		{strings.Repeat("a", 33), false},
		{"has space", false},
		{"dot.ted", false},
		{"slash/x", false},
		{"..x", false},
		{"nul\x00x", false},
		{"ünï", false},
		{"", false},
	}
	for _, tt := range tests {
		err := ValidateIdentifier(tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateIdentifier(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidIdentifier) {
			t.Errorf("ValidateIdentifier(%q) error %v does not wrap ErrInvalidIdentifier", tt.id, err)
		}
	}
}

func TestValidateDAG(t *testing.T) {
	tests := []struct {
		name    string
		tasks   []*TaskConfig
		wantErr error
		naming  string // the task the message must name
	}{
		{"diamond", []*TaskConfig{task("aaa"), task("bbb", "aaa"), task("ccc", "aaa"), task("ddd", "bbb", "ccc")}, nil, ""},
		{"duplicate", []*TaskConfig{task("aaa"), task("aaa")}, ErrDuplicateTask, `"aaa"`},
		{"unknown", []*TaskConfig{task("aaa"), task("bbb", "zzz")}, ErrUnknownDependency, `"bbb"`},
		{"self", []*TaskConfig{task("aaa", "aaa")}, ErrDependencyCycle, `"aaa"`},
		{"cycle", []*TaskConfig{task("aaa", "ccc"), task("bbb", "aaa"), task("ccc", "bbb")}, ErrDependencyCycle, "->"},
		{"invalid id", []*TaskConfig{task("a b")}, ErrInvalidIdentifier, `"a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateDAG(tt.tasks)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.naming) {
				t.Fatalf("error %q does not name %s", err, tt.naming)
			}
		})
	}
}

func TestValidateConfigFields(t *testing.T) {
	good := func() *PipelineConfig {
		return &PipelineConfig{ID: "simple", Name: "Simple", Tasks: []*TaskConfig{task("hello")}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	mutations := map[string]func(p *PipelineConfig){
		"bad pipeline id":   func(p *PipelineConfig) { p.ID = "x" },
		"no tasks":          func(p *PipelineConfig) { p.Tasks = nil },
		"nil task":          func(p *PipelineConfig) { p.Tasks = []*TaskConfig{nil} },
		"no image":          func(p *PipelineConfig) { p.Tasks[0].Image = " " },
		"negative parallel": func(p *PipelineConfig) { p.Parallelism = -1 },
		"bad condition":     func(p *PipelineConfig) { p.Tasks[0].DependsOn["hello"] = "Maybe" },
		"bad variable":      func(p *PipelineConfig) { p.Tasks[0].Variables = map[string]string{"A=B": "x"} },
	}
	for name, mutate := range mutations {
		p := good()
		mutate(p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: config accepted, want an error", name)
		}
	}
}

func TestDecodeConfigRejectsUnknownFields(t *testing.T) {
	_, err := DecodeConfig([]byte(`{"id":"simple","name":"x","tasks":[],"taks":[]}`))
	if err == nil || !strings.Contains(err.Error(), "taks") {
		t.Fatalf("got %v, want an error naming the unknown field", err)
	}
}

// A config written by hand spells run_retention.age as it likes: "720h"
// and "720h0m0s" normalise (and so hash) the same, and a zero age ("0s",
// "0") is no limit, valid and written as the builders write it (absent).
func TestRunRetentionAgeNormalisesAndZeroIsNoLimit(t *testing.T) {
	decode := func(age string) *PipelineConfig {
		t.Helper()
		p, err := DecodeConfig([]byte(`{"id":"simple","name":"Simple","run_retention":{"count":3,"age":"` + age + `"},"tasks":[{"id":"hello","image":"busybox"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, zero := range []string{"0s", "0", "0h0m"} {
		p := decode(zero)
		if err := p.Validate(); err != nil {
			t.Errorf("age %q refused: %v", zero, err)
		}
		if p.Normalize(); *p.RunRetention != (RunRetention{Count: 3}) {
			t.Errorf("age %q normalises to %+v, want count 3 and no age", zero, *p.RunRetention)
		}
	}
	short, long := decode("720h"), decode("720h0m0s")
	short.Normalize()
	long.Normalize()
	if *short.RunRetention != *long.RunRetention || short.RunRetention.Age != "720h0m0s" {
		t.Fatalf("720h normalises to %+v, 720h0m0s to %+v", *short.RunRetention, *long.RunRetention)
	}
	for _, bad := range []string{"-1h", "876000h", "soon"} {
		if err := decode(bad).Validate(); err == nil || !strings.Contains(err.Error(), "run_retention.age") {
			t.Errorf("age %q: %v, want an error naming run_retention.age", bad, err)
		}
	}
}
