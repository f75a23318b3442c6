package executor

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/executor/mask"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store/model"
)

// logChunkBytes is the most output one LogAppend carries, keeping raft
// entries small (docs/architecture.md §10).
const logChunkBytes = 32 << 10

// collectLogs replicates a container's output into the task's log until
// the stream ends (the container exited) or ctx ends. It reads from the
// beginning and skips what the task's LogOffset says is stored, so a new
// leader continues exactly where the old one stopped. Output that could
// not be replicated is kept and sent again (a hole would be permanent);
// once the log is full (its cap, or deleted) it stops shipping output
// that would be dropped anyway. The returned channel closes when it is
// done. masks are the secret values to hide (package mask derives the
// forms it hides); nil: resolve them from state.
func (e *Executor) collectLogs(ctx context.Context, t *model.TaskExecution, masks [][]byte) <-chan struct{} {
	done := make(chan struct{})
	ref, attempt, name, skip := taskRef(t), t.Attempt, t.Container, t.LogOffset
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(done)
		if t.LogsTruncated || t.LogsRemoved || t.LogsExpired {
			return
		}
		if sl, _ := e.sched.(scheduler.StreamLogger); useStreams(sl, t) {
			e.collectStreams(ctx, sl, t, masks)
			return
		}
		rc, err := e.openLogs(ctx, name)
		if err != nil {
			return
		}
		defer rc.Close()
		quit := make(chan struct{})
		defer close(quit)
		pieces := e.readPieces(rc, quit)

		if masks == nil {
			// Not started by this leader: mask what state resolves to
			// now (replaced values included).
			masks = e.interpolate(t).secrets
		}
		var (
			offset   int64 // position in the container's output
			set      = mask.New(masks)
			stream   = mask.NewStream(set)
			before   []byte // the output just before skip, for stream.Resume
			resumed  bool
			pending  []byte // masked output not replicated yet
			startsAt = skip // offset of pending[0]
		)
		keepBefore := func(p []byte) {
			before = append(before, p...)
			if k := set.MaxLen(); len(before) > k {
				before = append(before[:0], before[len(before)-k:]...)
			}
		}
		// flush masks what the stream can release and sends pending in
		// chunks; it reports whether collecting should go on. What could
		// not be replicated stays pending, and the stream holds a tail that
		// may be the start of a secret, unless the output has ended (last).
		flush := func(last bool) bool {
			pending = append(pending, stream.Next(last)...)
			for len(pending) > 0 {
				n := min(len(pending), logChunkBytes)
				res, ok := e.applyCmd(ctx, nil, fsm.CmdLogAppend, fsm.LogAppend{TaskRef: ref, Attempt: attempt,
					Offset: startsAt, Data: pending[:n], MaxBytes: e.cfg.LogMaxBytes})
				switch {
				case ok:
					pending, startsAt = pending[n:], startsAt+int64(n)
					if a, _ := res.Value.(*fsm.LogAppended); a != nil && a.Full {
						return false
					}
				case res != nil:
					return false // refused: the attempt moved on
				default:
					return ctx.Err() == nil // not replicated: try again later
				}
			}
			pending = nil
			return true
		}
		ticker := time.NewTicker(e.cfg.LogFlushInterval)
		defer ticker.Stop()
		for {
			select {
			case piece, open := <-pieces:
				if !open {
					e.flushLast(ctx, func() bool { return flush(true) }, func() bool { return len(pending) == 0 && stream.Pending() == 0 })
					return
				}
				if end := offset + int64(len(piece)); end <= skip {
					keepBefore(piece)
					offset = end
					continue
				} else if offset < skip {
					keepBefore(piece[:skip-offset])
					piece, offset = piece[skip-offset:], skip
				}
				if !resumed {
					// A secret the previous leader's output began before
					// skip is masked to its end.
					stream.Resume(before)
					resumed, before = true, nil
				}
				stream.Write(piece)
				offset += int64(len(piece))
				if len(pending)+stream.Pending() >= logChunkBytes && !flush(false) {
					return
				}
			case <-ticker.C:
				if !flush(false) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return done
}

// readPieces reads rc into a channel until it ends or quit closes.
func (e *Executor) readPieces(rc io.Reader, quit <-chan struct{}) <-chan []byte {
	pieces := make(chan []byte, 16)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(pieces)
		for {
			buf := make([]byte, 8<<10)
			n, err := rc.Read(buf)
			if n > 0 {
				select {
				case pieces <- buf[:n]:
				case <-quit:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return pieces
}

// flushLast sends the output left when the stream ended, retrying a
// failed replication for a while: supervise waits for it before recording
// the result, so the log of a finished task is whole.
func (e *Executor) flushLast(ctx context.Context, flush func() bool, empty func() bool) {
	backoff := 100 * time.Millisecond
	for deadline := e.clock.Now().Add(10 * time.Second); ; {
		if !flush() || empty() || !e.clock.Now().Before(deadline) || !clock.Sleep(ctx, e.clock, backoff) {
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// openLogs opens the container's log stream, riding out scheduler
// outages.
func (e *Executor) openLogs(ctx context.Context, name string) (io.ReadCloser, error) {
	backoff := 100 * time.Millisecond
	for {
		rc, err := e.sched.Logs(ctx, name, true)
		if err == nil {
			return rc, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, scheduler.ErrUnavailable) {
			// The container is gone (or the request is wrong): there is
			// nothing to read, and supervise learns why from Wait.
			e.logger.Debug("no log stream for the container", "container", name, "error", err)
			return nil, err
		}
		e.logger.Warn("cannot read container logs; retrying", "container", name, "error", err)
		if !clock.Sleep(ctx, e.clock, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
