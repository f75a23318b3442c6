package nomad

import (
	"bufio"
	"errors"
	"io"
	"testing"

	"github.com/goferhq/gofer/scheduler"
)

// StreamLogs follows each of the task's streams on its own: stderr
// arrives while the task still runs (Logs can give it only after the
// end), each stream ends when the task is dead with the bytes written
// just before the end, and a read from an offset skips that many bytes.
func TestContractStreamLogsFollowStderrLive(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "streams"
	// Opened before the task starts: they wait for the start.
	var stdout, stderr io.ReadCloser
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, func(name string) {
		var err error
		if stdout, err = s.StreamLogs(ctx, name, scheduler.Stdout, 0, true); err != nil {
			t.Error(err)
		}
		if stderr, err = s.StreamLogs(ctx, name, scheduler.Stderr, 0, true); err != nil {
			t.Error(err)
		}
		f.run(name)
	}); err != nil || stdout == nil || stderr == nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	defer stderr.Close()
	out, errs := bufio.NewReader(stdout), bufio.NewReader(stderr)
	f.write(name, "stderr", "one\n")
	if l, err := errs.ReadString('\n'); err != nil || l != "one\n" {
		t.Fatalf("first stderr line %q %v", l, err)
	}
	f.write(name, "stdout", "two\n")
	if l, err := out.ReadString('\n'); err != nil || l != "two\n" {
		t.Fatalf("first stdout line %q %v", l, err)
	}
	f.write(name, "stderr", "three\n")
	if l, err := errs.ReadString('\n'); err != nil || l != "three\n" {
		t.Fatalf("second stderr line %q %v", l, err)
	}
	if st, err := s.Inspect(ctx, name); err != nil || st.State != scheduler.StateRunning {
		t.Fatalf("stderr read while the task runs? Inspect %+v %v", st, err)
	}
	// Written just before the end, without a newline: both must arrive,
	// and both streams must end with the task.
	f.write(name, "stderr", "four")
	f.write(name, "stdout", "five")
	f.exit(name, 0, 0)
	for _, c := range []struct {
		r    *bufio.Reader
		want string
	}{{out, "five"}, {errs, "four"}} {
		rest, err := io.ReadAll(c.r)
		if err != nil || string(rest) != c.want {
			t.Fatalf("tail %q %v, want %q", rest, err, c.want)
		}
	}
	for _, c := range []struct {
		kind   scheduler.LogStream
		offset int64
		want   string
	}{
		{scheduler.Stdout, 0, "two\nfive"}, {scheduler.Stderr, 0, "one\nthree\nfour"},
		{scheduler.Stderr, 4, "three\nfour"}, {scheduler.Stderr, 20, ""},
	} {
		for _, follow := range []bool{false, true} {
			if got := readStream(t, s, name, c.kind, c.offset, follow); got != c.want {
				t.Fatalf("%s from %d (follow %v): %q, want %q", c.kind, c.offset, follow, got, c.want)
			}
		}
	}
	if _, err := s.StreamLogs(ctx, name, "stdin", 0, false); !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("unknown stream: %v, want ErrInvalid", err)
	}
	if _, err := s.StreamLogs(ctx, "no-such-job", scheduler.Stdout, 0, false); !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("missing job: %v, want ErrInvalid", err)
	}
}

// A follow that begins past what the first request delivered still skips
// the offset in the read after the end (it must not start over at what
// it happened to read).
func TestContractStreamLogsOffsetPastTheFollowedBytes(t *testing.T) {
	f := newFakeNomad(t)
	s := newFakeScheduler(t, f)
	ctx := testCtx(t)
	name := "offset"
	if err := startWith(t, f, s, scheduler.StartRequest{Name: name, Image: "x:1"}, f.run); err != nil {
		t.Fatal(err)
	}
	f.write(name, "stderr", "ab")
	rc, err := s.StreamLogs(ctx, name, scheduler.Stderr, 6, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	f.write(name, "stderr", "cdefgh")
	f.exit(name, 0, 0)
	if got, err := io.ReadAll(rc); err != nil || string(got) != "gh" {
		t.Fatalf("from offset 6: %q %v, want %q", got, err, "gh")
	}
}

// readStream reads one stream whole.
func readStream(t *testing.T, s *Scheduler, name string, kind scheduler.LogStream, offset int64, follow bool) string {
	t.Helper()
	rc, err := s.StreamLogs(testCtx(t), name, kind, offset, follow)
	if err != nil {
		t.Fatalf("StreamLogs %s: %v", kind, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", kind, err)
	}
	return string(b)
}
