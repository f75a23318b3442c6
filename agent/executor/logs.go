package executor

import (
	"context"
	"io"
	"time"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store/model"
)

// logChunkBytes is the most output one LogAppend carries, keeping raft
// entries small (DESIGN §9).
const logChunkBytes = 32 << 10

// collectLogs replicates a container's output into the task's log until
// the stream ends (the container exited) or ctx ends. It reads from the
// beginning and skips what the task's LogOffset says is stored, so a new
// leader continues exactly where the old one stopped. The returned channel
// closes when it is done.
func (e *Executor) collectLogs(ctx context.Context, t *model.TaskExecution) <-chan struct{} {
	done := make(chan struct{})
	ref, attempt, name, skip := taskRef(t), t.Attempt, t.Container, t.LogOffset
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(done)
		rc, err := e.openLogs(ctx, name)
		if err != nil {
			return
		}
		defer rc.Close()

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
					case <-ctx.Done():
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()

		var (
			offset   int64 // position in the container's output
			pending  []byte
			startsAt int64 // offset of pending[0]
		)
		flush := func() bool {
			if len(pending) == 0 {
				return true
			}
			_, ok := e.applyCmd(ctx, fsm.CmdLogAppend, fsm.LogAppend{TaskRef: ref, Attempt: attempt,
				Offset: startsAt, Data: pending, MaxBytes: e.cfg.LogMaxBytes})
			pending = nil
			return ok || ctx.Err() == nil
		}
		ticker := time.NewTicker(e.cfg.LogFlushInterval)
		defer ticker.Stop()
		for {
			select {
			case piece, open := <-pieces:
				if !open {
					flush()
					return
				}
				if end := offset + int64(len(piece)); end <= skip {
					offset = end
					continue
				} else if offset < skip {
					piece, offset = piece[skip-offset:], skip
				}
				if len(pending) == 0 {
					startsAt = offset
				}
				pending = append(pending, piece...)
				offset += int64(len(piece))
				if len(pending) >= logChunkBytes && !flush() {
					return
				}
			case <-ticker.C:
				if !flush() {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return done
}

// openLogs opens the container's log stream, riding out short scheduler
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
		e.logger.Warn("cannot read container logs; retrying", "container", name, "error", err)
		if !sleep(ctx, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
