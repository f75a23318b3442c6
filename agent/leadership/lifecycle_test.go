package leadership

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goferhq/gofer/agent/clock"
)

// svc is a test service: it reports its start, and after ctx ends keeps a
// goroutine of its own running until release closes.
type svc struct {
	started chan string
	name    string
	run     func(ctx context.Context) error
}

func (s *svc) Run(ctx context.Context) error {
	s.started <- s.name
	return s.run(ctx)
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func TestLifecycleStartsAfterEstablishAndWaitsOnStop(t *testing.T) {
	established := make(chan struct{})
	started := make(chan string, 10)
	release := make(chan struct{})
	var stopped atomic.Int32
	lingering := func(ctx context.Context) error {
		// A service returns only after what it started returned.
		done := make(chan struct{})
		go func() {
			defer close(done)
			<-ctx.Done()
			<-release
		}()
		<-done
		stopped.Add(1)
		return nil
	}
	entries := []Entry{
		{Name: "a", New: func(Deps) Service { return &svc{started, "a", lingering} }},
		{Name: "b", New: func(Deps) Service { return &svc{started, "b", lingering} }},
	}
	l := New(Config{
		Establish: func(ctx context.Context) error {
			select {
			case <-established:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		Services: func() []Entry { return entries },
	})
	l.Start()
	select {
	case name := <-started:
		t.Fatalf("service %s started before leadership was established", name)
	default:
	}
	close(established)
	got := map[string]bool{waitFor(t, started, "a start"): true, waitFor(t, started, "a start"): true}
	if !got["a"] || !got["b"] {
		t.Fatalf("started %v, want a and b", got)
	}
	stopDone := make(chan bool)
	go func() { stopDone <- l.Stop() }()
	select {
	case <-stopDone:
		t.Fatal("Stop returned while services were still running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if !waitFor(t, stopDone, "Stop") {
		t.Fatal("Stop reported no term running")
	}
	if n := stopped.Load(); n != 2 {
		t.Fatalf("%d services had returned when Stop returned, want 2", n)
	}
	if l.Stop() {
		t.Fatal("a second Stop reported a term running")
	}
}

func TestLifecycleEstablishFailureStartsNothing(t *testing.T) {
	started := make(chan string, 1)
	l := New(Config{
		Establish: func(context.Context) error { return errors.New("no barrier") },
		Services: func() []Entry {
			return []Entry{{Name: "a", New: func(Deps) Service {
				return &svc{started, "a", func(ctx context.Context) error { <-ctx.Done(); return nil }}
			}}}
		},
	})
	l.Start()
	l.Stop()
	select {
	case <-started:
		t.Fatal("a service started although establish failed")
	default:
	}
}

// A service that panics or fails is rebuilt and restarted with backoff
// (1 s, then 2 s, ...); one that returns nil is left alone for the term;
// the others keep running throughout.
func TestLifecycleRestartsFailedServicesWithBackoff(t *testing.T) {
	c := clock.NewFake(time.Unix(1_000_000, 0))
	started := make(chan string, 10)
	var builds atomic.Int32
	var calls atomic.Int32
	flaky := func(ctx context.Context) error {
		switch calls.Add(1) {
		case 1:
			panic("boom")
		case 2:
			return errors.New("failed")
		}
		<-ctx.Done()
		return nil
	}
	l := New(Config{
		Establish: func(context.Context) error { return nil },
		Services: func() []Entry {
			return []Entry{
				{Name: "flaky", New: func(Deps) Service { builds.Add(1); return &svc{started, "flaky", flaky} }},
				{Name: "done", New: func(Deps) Service { return &svc{started, "done", func(context.Context) error { return nil }} }},
			}
		},
		Deps: Deps{Clock: c},
	})
	l.Start()
	defer l.Stop()
	seen := map[string]int{}
	seen[waitFor(t, started, "first starts")]++
	seen[waitFor(t, started, "first starts")]++
	if seen["flaky"] != 1 || seen["done"] != 1 {
		t.Fatalf("first starts: %v", seen)
	}
	for _, backoff := range []time.Duration{time.Second, 2 * time.Second} {
		now := c.Now()
		for c.NextDeadline() != now.Add(backoff) {
			armed := c.Armed()
			if c.NextDeadline() == now.Add(backoff) {
				break
			}
			waitFor(t, armed, "the restart backoff")
		}
		c.Advance(backoff - time.Millisecond)
		select {
		case name := <-started:
			t.Fatalf("%s restarted before its backoff ended", name)
		default:
		}
		c.Advance(time.Millisecond)
		if name := waitFor(t, started, "a restart"); name != "flaky" {
			t.Fatalf("%s restarted", name)
		}
	}
	if n := builds.Load(); n != 3 {
		t.Fatalf("flaky was built %d times, want a fresh instance per start (3)", n)
	}
}
