// Package schedulertest is the conformance suite every scheduler backend
// passes: the behaviour the executor relies on (agent/executor), written
// once and run against Docker, the in-memory fake (scheduler/fake) and any
// new backend. DESIGN.md beside this file states the contract and how a
// backend plugs in.
package schedulertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/scheduler"
)

// Factory is what a backend gives the suite.
type Factory struct {
	// New returns a scheduler on a working backend. It is called once per
	// case; cases run in parallel.
	New func(t *testing.T) scheduler.Scheduler
	// Request returns a request whose container runs p. The suite fills
	// in Name and Labels.
	Request func(p Program) scheduler.StartRequest
	// Labels, if set, are added to every container the suite starts (a
	// backend's own leak check finds them by these).
	Labels map[string]string
	// Unreachable returns a scheduler whose backend cannot be reached
	// (nothing listens where it points). Required unless skipped.
	Unreachable func(t *testing.T) scheduler.Scheduler
	// CreateUnstarted makes a container under req.Name that exists but
	// never started: what a leader that died between create and start
	// leaves behind. Required unless skipped.
	CreateUnstarted func(t *testing.T, s scheduler.Scheduler, req scheduler.StartRequest)
	// Skip names cases this backend truly cannot do, with the reason; a
	// skipped case says so in the test output. Naming a case that does
	// not exist fails the suite, so a stale entry cannot hide one.
	Skip map[string]string
}

// A case of the suite.
type testCase struct {
	name string
	run  func(t *testing.T, e *env)
}

// Cases lists the suite's cases by name (what Factory.Skip may name).
func Cases() []string {
	var names []string
	for _, c := range cases {
		names = append(names, c.name)
	}
	return names
}

// RunConformance runs every case as a parallel sub-test of t.
func RunConformance(t *testing.T, f Factory) {
	t.Helper()
	if f.New == nil || f.Request == nil {
		t.Fatal("schedulertest: Factory.New and Factory.Request are required")
	}
	known := map[string]bool{}
	for _, c := range cases {
		known[c.name] = true
	}
	for name := range f.Skip {
		if !known[name] {
			t.Fatalf("schedulertest: Factory.Skip names %q, which is no case (cases: %s)", name, strings.Join(Cases(), ", "))
		}
	}
	run := randHex(3)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if reason, ok := f.Skip[c.name]; ok {
				t.Skipf("not supported by this backend: %s", reason)
			}
			t.Parallel()
			c.run(t, &env{f: f, s: f.New(t), run: run})
		})
	}
}

// env is one case's scheduler and helpers.
type env struct {
	f   Factory
	s   scheduler.Scheduler
	run string
	n   int
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// name is a container name no other case, run or test binary uses.
func (e *env) name(t *testing.T) string {
	e.n++
	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 60 {
		base = base[len(base)-60:]
	}
	return fmt.Sprintf("gofer-conf-%s-%s-%d-%s", e.run, base, e.n, randHex(2))
}

// request makes p's request under a fresh name with the factory's labels
// and extra ones, and registers the container's removal.
func (e *env) request(t *testing.T, p Program, labels map[string]string) scheduler.StartRequest {
	t.Helper()
	req := e.f.Request(p)
	req.Name = e.name(t)
	req.Labels = map[string]string{}
	maps.Copy(req.Labels, e.f.Labels)
	maps.Copy(req.Labels, labels)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.s.Remove(c, req.Name); err != nil {
			t.Logf("cleanup: removing %s: %v", req.Name, err)
		}
	})
	return req
}

// start starts p and fails the test if that fails.
func (e *env) start(t *testing.T, p Program, labels map[string]string) scheduler.StartRequest {
	t.Helper()
	req := e.request(t, p, labels)
	if err := e.s.Start(ctx(t), req); err != nil {
		t.Fatalf("Start %s: %v", req.Name, err)
	}
	return req
}

// ctx is a per-call context that cannot hang a test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func sortedNames(list []scheduler.Container) []string {
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names
}
