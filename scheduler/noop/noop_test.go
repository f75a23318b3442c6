package noop

import (
	"context"
	"io"
	"testing"

	"github.com/goferhq/gofer/scheduler"
)

// A container prints its NOOP_OUTPUT, and nothing once it is removed.
func TestOutputIsTheOutputVariable(t *testing.T) {
	ctx := context.Background()
	s := New()
	if err := s.Start(ctx, scheduler.StartRequest{Name: "c", Env: map[string]string{OutputVariable: "line 1\nline 2\n"}}); err != nil {
		t.Fatal(err)
	}
	if got := logs(t, s, "c"); got != "line 1\nline 2\n" {
		t.Fatalf("logs = %q", got)
	}
	if err := s.Remove(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if got := logs(t, s, "c"); got != "" {
		t.Fatalf("logs after remove = %q, want none", got)
	}
}

func logs(t *testing.T, s *Scheduler, name string) string {
	t.Helper()
	rc, err := s.Logs(context.Background(), name, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
