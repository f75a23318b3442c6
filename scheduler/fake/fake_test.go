package fake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/scheduler/schedulertest"
)

// programEnv carries a conformance program to the fake's script.
const programEnv = "FAKE_PROGRAM"

func TestConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) scheduler.Scheduler { return conformanceFake(t) })
}

// TestConformanceStreams: the fake as a backend with separate streams
// keeps the contract too (LogsFollow then checks each stream on its own).
func TestConformanceStreams(t *testing.T) {
	runConformance(t, func(t *testing.T) scheduler.Scheduler { return conformanceFake(t).WithStreams() })
}

func runConformance(t *testing.T, newFake func(t *testing.T) scheduler.Scheduler) {
	schedulertest.RunConformance(t, schedulertest.Factory{
		New: newFake,
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
			f, ok := s.(*Scheduler)
			if !ok {
				f = s.(Streams).Scheduler
			}
			if err := f.Create(req); err != nil {
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

// What the fake adds to the contract for the tests that use it: failures
// on demand, counts, test-controlled exits and output, canned logs.
func TestScriptsAndFaults(t *testing.T) {
	ctx := context.Background()
	s := New()
	canned := "canned\n"
	s.Scripts = func(req scheduler.StartRequest) Script {
		switch req.Name {
		case "held":
			return Script{Output: []Line{{Text: "one"}}, Hold: true}
		case "canned":
			return Script{Logs: func(bool) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(canned)), nil }}
		case "refused":
			return Script{StartErr: fmt.Errorf("no such image: %w", scheduler.ErrImageNotFound)}
		}
		return Script{}
	}
	s.FailNext(2, "Start")
	for i := range 2 {
		if err := s.Start(ctx, scheduler.StartRequest{Name: "held", Image: "x"}); !errors.Is(err, scheduler.ErrUnavailable) {
			t.Fatalf("Start %d: %v, want ErrUnavailable", i, err)
		}
	}
	if st, _ := s.Inspect(ctx, "held"); st.State != scheduler.StateNotFound {
		t.Fatalf("a refused Start made a container: %+v", st)
	}
	if err := s.Start(ctx, scheduler.StartRequest{Name: "held", Image: "x"}); err != nil {
		t.Fatal(err)
	}
	if s.Calls("Start") != 3 || s.Runs("held") != 1 {
		t.Fatalf("%d Start calls, %d runs", s.Calls("Start"), s.Runs("held"))
	}
	if !s.Print("held", Line{Stderr: true, Text: "two"}) || !s.Exit("held", 9) {
		t.Fatal("Print or Exit found no running container")
	}
	if st, err := s.Wait(ctx, "held"); err != nil || st.ExitCode != 9 {
		t.Fatalf("Wait: %+v, %v", st, err)
	}
	rc, err := s.Logs(ctx, "held", true)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "one\ntwo\n" {
		t.Fatalf("logs %q", b)
	}
	if err := s.Start(ctx, scheduler.StartRequest{Name: "canned", Image: "x"}); err != nil {
		t.Fatal(err)
	}
	if rc, err := s.Logs(ctx, "canned", false); err != nil {
		t.Fatal(err)
	} else if b, _ := io.ReadAll(rc); string(b) != canned {
		t.Fatalf("canned logs %q", b)
	}
	if err := s.Start(ctx, scheduler.StartRequest{Name: "refused", Image: "x"}); !errors.Is(err, scheduler.ErrImageNotFound) {
		t.Fatalf("Start: %v, want the script's error", err)
	}
	s.SetDown(true)
	if _, err := s.List(ctx, nil); !errors.Is(err, scheduler.ErrUnavailable) {
		t.Fatalf("List while down: %v", err)
	}
	s.SetDown(false)
	if list, err := s.List(ctx, nil); err != nil || len(list) != 2 {
		t.Fatalf("List: %+v, %v", list, err)
	}
}
