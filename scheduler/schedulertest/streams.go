package schedulertest

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/scheduler"
)

// testStreamLogsFollow is LogsFollow for a backend with separate streams
// (scheduler.StreamLogger): each stream, followed on its own, sees its
// output while the container runs — stderr included, which the one
// stream of such a backend can only give after the end — and ends by
// itself when the container exits; reading again, followed or not, gives
// the same bytes, and from an offset the bytes after it. Logs still holds
// both streams, each in its order.
func testStreamLogsFollow(t *testing.T, e *env, sl scheduler.StreamLogger, p Program) {
	req := e.start(t, p, nil)
	type followed struct {
		r    *bufio.Reader
		text strings.Builder
		err  error
	}
	streams := map[scheduler.LogStream]*followed{}
	done := make(chan scheduler.LogStream, 2)
	for _, kind := range []scheduler.LogStream{scheduler.Stdout, scheduler.Stderr} {
		rc, err := sl.StreamLogs(ctx(t), req.Name, kind, 0, true)
		if err != nil {
			t.Fatalf("StreamLogs %s: %v", kind, err)
		}
		defer rc.Close()
		f := &followed{r: bufio.NewReader(rc)}
		streams[kind] = f
		want := strings.Count(p.Text(kind == scheduler.Stderr), "\n")
		go func() {
			for range want {
				line, err := f.r.ReadString('\n')
				f.text.WriteString(line)
				if err != nil {
					f.err = err
					break
				}
			}
			done <- kind
		}()
	}
	for range 2 {
		kind := <-done
		if f := streams[kind]; f.err != nil {
			t.Fatalf("follow of %s ended before the container exited: %v (read %q)", kind, f.err, f.text.String())
		}
	}
	// Every line of both streams is in and the container still runs.
	if st, err := e.s.Inspect(ctx(t), req.Name); err != nil || st.State != scheduler.StateRunning {
		t.Fatalf("Inspect while following: %+v, %v", st, err)
	}
	if err := e.s.Stop(ctx(t), req.Name, time.Minute); err != nil {
		t.Fatal(err)
	}
	for kind, f := range streams {
		rest, err := io.ReadAll(f.r)
		if err != nil {
			t.Fatalf("the followed %s ended with %v", kind, err)
		}
		f.text.Write(rest)
	}
	if st := e.waitExited(t, req.Name); st.ExitCode != 4 {
		t.Fatalf("exit %d, want 4", st.ExitCode)
	}
	for kind, f := range streams {
		want := p.Text(kind == scheduler.Stderr)
		if got := f.text.String(); got != want {
			t.Fatalf("followed %s %q, want %q", kind, got, want)
		}
		for _, follow := range []bool{false, true} {
			if got := readStream(t, sl, req.Name, kind, 0, follow); got != want {
				t.Fatalf("%s read again (follow %v) %q, want %q", kind, follow, got, want)
			}
		}
		if got := readStream(t, sl, req.Name, kind, 4, true); got != want[4:] {
			t.Fatalf("%s from offset 4 %q, want %q", kind, got, want[4:])
		}
	}
	if _, err := sl.StreamLogs(ctx(t), req.Name, "stdin", 0, false); !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("StreamLogs of an unknown stream: %v, want ErrInvalid", err)
	}
	got := e.logs(t, req.Name, false)
	if so, se := split(got); so != p.Text(false) || se != p.Text(true) {
		t.Fatalf("Logs %q:\nstdout %q, want %q\nstderr %q, want %q", got, so, p.Text(false), se, p.Text(true))
	}
}

// readStream reads one stream whole (follow: of an exited container).
func readStream(t *testing.T, sl scheduler.StreamLogger, name string, kind scheduler.LogStream, offset int64, follow bool) string {
	t.Helper()
	rc, err := sl.StreamLogs(ctx(t), name, kind, offset, follow)
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
