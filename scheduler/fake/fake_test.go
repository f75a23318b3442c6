package fake

import (
	"encoding/json"
	"testing"

	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/schedulertest"
)

// programEnv carries a conformance program to the fake's script.
const programEnv = "FAKE_PROGRAM"

func TestConformance(t *testing.T) {
	schedulertest.RunConformance(t, schedulertest.Factory{
		New: func(t *testing.T) scheduler.Scheduler { return conformanceFake(t) },
		Request: func(p schedulertest.Program) scheduler.StartRequest {
			b, err := json.Marshal(p)
			if err != nil {
				panic(err)
			}
			return scheduler.StartRequest{Image: "fake", Env: map[string]string{programEnv: string(b)}}
		},
		Unreachable: func(t *testing.T) scheduler.Scheduler {
			s := conformanceFake(t)
			s.SetDown(true)
			return s
		},
		CreateUnstarted: func(t *testing.T, s scheduler.Scheduler, req scheduler.StartRequest) {
			if err := s.(*Scheduler).Create(req); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// conformanceFake runs the suite's programs.
func conformanceFake(t *testing.T) *Scheduler {
	s := New()
	s.Scripts = func(req scheduler.StartRequest) Script {
		var p schedulertest.Program
		if err := json.Unmarshal([]byte(req.Env[programEnv]), &p); err != nil {
			t.Errorf("request %s carries no program: %v", req.Name, err)
		}
		sc := Script{Exit: p.Exit, Hold: p.UntilStopped, TermExit: p.Exit, IgnoreTERM: p.IgnoreTERM}
		for _, l := range p.Output {
			sc.Output = append(sc.Output, Line{Stderr: l.Stderr, Text: l.Text})
		}
		return sc
	}
	return s
}
