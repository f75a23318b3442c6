package canary

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func validPolicy() Policy {
	return Policy{Percent: 50, Runs: 4, Duration: 10 * time.Minute, MaxFailureIncrease: 10}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Policy)
		want   []string // substrings, one per expected field error
	}{
		{"valid", func(*Policy) {}, nil},
		{"valid with p95 bound and edges", func(p *Policy) {
			p.Percent, p.Runs, p.MaxFailureIncrease, p.MaxP95 = 1, 1, 0, time.Second
		}, nil},
		{"valid upper edges", func(p *Policy) { p.Percent, p.MaxFailureIncrease = 99, 100 }, nil},
		{"percent 0", func(p *Policy) { p.Percent = 0 }, []string{"canary_percent: must be between 1 and 99, got 0"}},
		{"percent 100", func(p *Policy) { p.Percent = 100 }, []string{"canary_percent: must be between 1 and 99, got 100"}},
		{"runs 0", func(p *Policy) { p.Runs = 0 }, []string{"canary_runs: must be between 1 and 10000, got 0"}},
		{"runs over the cap", func(p *Policy) { p.Runs = MaxRuns + 1 }, []string{"canary_runs: must be between 1 and 10000, got 10001"}},
		{"runs at the cap", func(p *Policy) { p.Runs = MaxRuns }, nil},
		{"duration 0", func(p *Policy) { p.Duration = 0 }, []string{"canary_duration: must be positive, got 0s"}},
		{"increase negative", func(p *Policy) { p.MaxFailureIncrease = -1 }, []string{"max_failure_increase: must be between 0 and 100 percentage points, got -1"}},
		{"increase over 100", func(p *Policy) { p.MaxFailureIncrease = 100.5 }, []string{"max_failure_increase:", "got 100.5"}},
		{"increase NaN", func(p *Policy) { p.MaxFailureIncrease = math.NaN() }, []string{"max_failure_increase:", "got NaN"}},
		{"p95 negative", func(p *Policy) { p.MaxP95 = -time.Second }, []string{"max_p95_duration: must be 0 (off) or positive, got -1s"}},
		{"every field at once", func(p *Policy) { *p = Policy{MaxFailureIncrease: -1, MaxP95: -1} }, []string{
			"canary_percent:", "canary_runs:", "canary_duration:", "max_failure_increase:", "max_p95_duration:",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPolicy()
			tt.change(&p)
			err := p.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("Validate() = %v, want an ErrInvalidPolicy", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}
