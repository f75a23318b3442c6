package nomad

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/goferhq/gofer/scheduler"
)

var _ scheduler.StreamLogger = (*Scheduler)(nil)

// Logs implements scheduler.Scheduler. ctx governs the whole stream.
//
// Nomad keeps stdout and stderr as separate files and serves each as its
// own stream (/v1/client/fs/logs), and records no order across them. The
// one stream is therefore stdout, then stderr: every read gives the same
// bytes in the same order, which the executor relies on to resume a log at
// a byte offset (a new leader, a reopened stream). The price: while a task
// runs, a follower of Logs sees its stdout only; its stderr comes when it
// ends. The executor therefore reads each stream live with StreamLogs.
//
// With follow, stdout ends when the task is dead: Nomad's own follow
// stream does not end then, so a Wait alongside it cancels the stream
// (Options.LogSettle after the end) and stdout is read once more without follow,
// skipping what was already delivered, so the lines written just before
// the end are not lost; then stderr is read whole.
//
// A missing job is an error wrapping ErrInvalid. A task that has not
// started has no logs yet: without follow the stream is empty, with
// follow it waits for the start.
func (s *Scheduler) Logs(ctx context.Context, name string, follow bool) (io.ReadCloser, error) {
	return s.openLogs(ctx, name, follow, []string{"stdout", "stderr"}, 0)
}

// StreamLogs implements scheduler.StreamLogger: one of the task's streams
// on its own, from a byte offset, so both can be followed live (the
// executor does, and resumes each at its own position). With follow it
// ends when the task is dead, as Logs does (same settling, same final
// read without follow).
func (s *Scheduler) StreamLogs(ctx context.Context, name string, stream scheduler.LogStream, offset int64, follow bool) (io.ReadCloser, error) {
	if stream != scheduler.Stdout && stream != scheduler.Stderr {
		return nil, fmt.Errorf("nomad: logs %s: unknown stream %q: %w", name, stream, scheduler.ErrInvalid)
	}
	if offset < 0 {
		return nil, fmt.Errorf("nomad: logs %s: negative offset %d: %w", name, offset, scheduler.ErrInvalid)
	}
	return s.openLogs(ctx, name, follow, []string{string(stream)}, offset)
}

// openLogs streams the log types one after the other, the first from skip.
func (s *Scheduler) openLogs(ctx context.Context, name string, follow bool, types []string, skip int64) (io.ReadCloser, error) {
	snap, err := s.read(ctx, "logs", name, 0)
	if err != nil {
		return nil, err
	}
	if snap.job == nil {
		return nil, fmt.Errorf("nomad: logs %s: no such job: %w", name, scheduler.ErrInvalid)
	}
	lctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	l := &logStream{PipeReader: pr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		pw.CloseWithError(s.copyLogs(lctx, name, snap, follow, types, skip, pw))
	}()
	return l, nil
}

// copyLogs writes the task's output of the given types to w, one type
// after the other, skipping the first skip bytes of the first; nil means
// it is all there. Only the first type is followed: the others are read
// once it ended, that is once the task is dead.
func (s *Scheduler) copyLogs(ctx context.Context, name string, snap snapshot, follow bool, types []string, skip int64, w io.Writer) error {
	st := describe(snap)
	for follow && !started(snap) && st.State != scheduler.StateExited && st.State != scheduler.StateNotFound {
		var err error
		if snap, err = s.read(ctx, "logs", name, max(snap.index, 1)); err != nil {
			return err
		}
		st = describe(snap)
	}
	if !started(snap) {
		return nil // never ran: no output
	}
	if st.State == scheduler.StateExited {
		follow = false
		// Output of the task's last moment may still be on its way to
		// the log files.
		if wait := time.Until(st.Finished.Add(s.opts.LogSettle)); wait > 0 {
			if err := sleep(ctx, min(wait, s.opts.LogSettle)); err != nil {
				return fmt.Errorf("nomad: logs %s: %w: %w", name, scheduler.ErrUnavailable, err)
			}
		}
	}
	actx, cancel := s.short(ctx)
	alloc, _, err := s.cli.Allocations().Info(snap.alloc.ID, s.query(actx, nil))
	cancel()
	if err != nil {
		return classify("logs", name, err)
	}

	dead := make(chan struct{})
	var waitErr error
	wctx, stopWait := context.WithCancel(ctx)
	var waiter sync.WaitGroup
	if follow {
		waiter.Go(func() {
			err := s.waitDead(wctx, name)
			if err == nil {
				err = sleep(wctx, s.opts.LogSettle) // see Options.LogSettle
			}
			if err != nil && wctx.Err() == nil {
				waitErr = err
			}
			close(dead)
		})
	}
	// The first type as it comes; the next once it is complete (with
	// follow: once the task has ended), so every read of Logs gives the
	// same bytes in the same order.
	var errs []error
	n, err := skip, error(nil)
	if follow {
		n, err = s.stream(ctx, alloc, types[0], true, skip, dead, deliverTo(w))
	}
	if err == nil {
		_, err = s.stream(ctx, alloc, types[0], false, max(n, skip), nil, deliverTo(w))
	}
	errs = append(errs, err)
	for _, typ := range types[1:] {
		if err != nil {
			break
		}
		_, err = s.stream(ctx, alloc, typ, false, 0, nil, deliverTo(w))
		errs = append(errs, err)
	}
	stopWait()
	waiter.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("nomad: logs %s: %w: %w", name, scheduler.ErrUnavailable, ctx.Err())
	}
	if err := errors.Join(append(errs, waitErr)...); err != nil {
		return fmt.Errorf("nomad: logs %s: %w: %w", name, scheduler.ErrUnavailable, err)
	}
	return nil
}

// waitDead waits until the task has really ended. A Wait that fails
// with ErrUnavailable (a server without a leader, a cut connection) says
// nothing about the task: it is retried with backoff until ctx ends, so
// one bad answer does not end a follow stream that is still needed.
func (s *Scheduler) waitDead(ctx context.Context, name string) error {
	backoff := waitRetryMin
	for {
		_, err := s.Wait(ctx, name)
		if err == nil || !errors.Is(err, scheduler.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		s.log.Debug("waiting for the task's end failed; retrying", "name", name, "error", err, "in", backoff)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, waitRetryMax)
	}
}

// The backoff of waitDead's retries.
const (
	waitRetryMin = 100 * time.Millisecond
	waitRetryMax = 5 * time.Second
)

// Options.LogSettle (default 2s) is how long the logs of a task are still
// read after it ended. Nomad writes a task's output to its log files through two
// asynchronous copies (the docker driver's log collector, then logmon,
// which buffers and flushes every 100 ms), and its task state turns dead
// without waiting for them: a read right at the end misses the last
// bytes. Measured with Nomad 1.6.5, the last lines reached the files up to
// 0.7 s after the task's end; 2 s is the margin. A final write without a
// newline is worse: the docker driver's log collector holds a partial
// line until its stream closes and is shut down when the container
// exits, and such a fragment was seen arriving more than 2 s late (a
// later read has it). That one is not waited for. On a client so loaded
// that the copies lag further (seen at a load average of 20 on 2 cores:
// a task's only line missing 2 s after its end), a longer setting helps.

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// started reports whether the task's process was started (only then does
// Nomad have log files for it).
func started(snap snapshot) bool {
	if snap.alloc == nil {
		return false
	}
	ts := snap.alloc.TaskStates[taskName]
	return ts != nil && !ts.StartedAt.IsZero()
}

// stream reads one log type from the beginning, skipping the first skip
// bytes, and hands each frame's data to deliver; it returns the bytes
// read (skipped included). A follow stream runs until stop is closed,
// then takes what Nomad already sent and ends.
func (s *Scheduler) stream(ctx context.Context, alloc *nomadapi.Allocation, typ string, follow bool, skip int64,
	stop <-chan struct{}, deliver func([]byte)) (int64, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	frames, errc := s.cli.AllocFS().Logs(alloc, follow, taskName, typ, "start", 0, nil, s.query(sctx, nil))
	var n int64
	take := func(f *nomadapi.StreamFrame) {
		data := f.Data
		if d := min(skip-n, int64(len(data))); d > 0 {
			data = data[d:]
		}
		n += int64(len(f.Data))
		if len(data) > 0 {
			deliver(data)
		}
	}
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				return n, nil
			}
			take(f)
		case err := <-errc:
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			return n, classify("logs "+typ, alloc.ID, err)
		case <-stop:
			// The task is dead: end the request, keep what arrived.
			cancel()
			stop = nil
			for {
				select {
				case f, ok := <-frames:
					if !ok {
						return n, nil
					}
					take(f)
				case <-errc:
					return n, ctx.Err()
				}
			}
		}
	}
}

// deliverTo writes each piece to w; a write error is a closed reader, and
// the streams end with its ctx.
func deliverTo(w io.Writer) func([]byte) {
	return func(b []byte) { _, _ = w.Write(b) }
}

// logStream is the reader Logs returns. Close cancels the requests and
// waits for the copying goroutine, so nothing outlives Close.
type logStream struct {
	*io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (l *logStream) Close() error {
	l.once.Do(func() {
		l.cancel()
		_ = l.PipeReader.Close()
		<-l.done
	})
	return nil
}
