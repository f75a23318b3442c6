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

// useStreams reports whether the task's output is collected stream by
// stream: the backend keeps stdout and stderr apart (Nomad), and the
// attempt's log was not begun from the one ordered stream (a leader of a
// release before per-stream positions stored output without them; its
// LogOffset counts bytes of that stream, so it is continued that way).
func useStreams(sl scheduler.StreamLogger, t *model.TaskExecution) bool {
	return sl != nil && (t.StreamOffsets != nil || t.LogOffset == 0)
}

// streamSource is one output stream being collected.
type streamSource struct {
	kind   scheduler.LogStream
	mask   *mask.Stream
	pieces <-chan []byte
	// read is how far into the stream the pieces reached; resumeAt is
	// where this collector's output of it starts (the stored position).
	read, resumeAt int64
	before         []byte // the bytes just before resumeAt, for mask.Resume
	resumed        bool
}

// streamRun is a run of pending output from one stream (0 stdout, 1
// stderr).
type streamRun struct {
	stream int
	n      int
}

// collectStreams is collectLogs for a backend with separate streams. Both
// are read live and their pieces appended to the task's one log in the
// order they arrive, each masked by its own mask.Stream (a secret cannot
// span two streams). Every LogAppend carries how far into each stream the
// log then reaches (fsm.LogAppend.Streams), so a new leader resumes each
// stream at its own position, with the bytes just before it to finish
// masking a secret the old leader's output began. Chunking, retries of
// unreplicated output, a full log and the last flush are collectLogs'.
func (e *Executor) collectStreams(ctx context.Context, sl scheduler.StreamLogger, t *model.TaskExecution, masks [][]byte) {
	ref, attempt, name := taskRef(t), t.Attempt, t.Container
	var stored model.StreamOffsets // per stream, what the log holds
	if t.StreamOffsets != nil {
		stored = *t.StreamOffsets
	}
	if masks == nil {
		masks = e.interpolate(t).secrets
	}
	set := mask.New(masks)
	lookback := int64(max(set.MaxLen()-1, 0)) // what Resume needs
	quit := make(chan struct{})
	defer close(quit)
	var sources [2]*streamSource
	for i, at := range []int64{stored.Stdout, stored.Stderr} {
		kind := []scheduler.LogStream{scheduler.Stdout, scheduler.Stderr}[i]
		from := max(at-lookback, 0)
		rc, err := e.openStream(ctx, sl, name, kind, from)
		if err != nil {
			return
		}
		defer rc.Close()
		sources[i] = &streamSource{kind: kind, mask: mask.NewStream(set), pieces: e.readPieces(rc, quit), read: from, resumeAt: at}
	}

	var (
		pending  []byte      // masked output not replicated yet
		runs     []streamRun // which stream each byte of pending came from
		startsAt = t.LogOffset
	)
	release := func(i int, last bool) {
		if b := sources[i].mask.Next(last); len(b) > 0 {
			pending = append(pending, b...)
			if k := len(runs) - 1; k >= 0 && runs[k].stream == i {
				runs[k].n += len(b)
			} else {
				runs = append(runs, streamRun{stream: i, n: len(b)})
			}
		}
	}
	// after is where each stream stands once the first n pending bytes
	// are stored.
	after := func(n int) model.StreamOffsets {
		so := stored
		for _, r := range runs {
			if n == 0 {
				break
			}
			k := min(r.n, n)
			if r.stream == 0 {
				so.Stdout += int64(k)
			} else {
				so.Stderr += int64(k)
			}
			n -= k
		}
		return so
	}
	consume := func(n int) {
		for n > 0 {
			k := min(runs[0].n, n)
			if runs[0].n -= k; runs[0].n == 0 {
				runs = runs[1:]
			}
			n -= k
		}
	}
	// flush is collectLogs' flush with per-stream positions.
	flush := func(last bool) bool {
		release(0, last)
		release(1, last)
		for len(pending) > 0 {
			n := min(len(pending), logChunkBytes)
			so := after(n)
			res, ok := e.applyCmd(ctx, nil, fsm.CmdLogAppend, fsm.LogAppend{TaskRef: ref, Attempt: attempt,
				Offset: startsAt, Data: pending[:n], MaxBytes: e.cfg.LogMaxBytes, Streams: &so})
			switch {
			case ok:
				consume(n)
				pending, startsAt, stored = pending[n:], startsAt+int64(n), so
				if a, _ := res.Value.(*fsm.LogAppended); a != nil && a.Full {
					return false
				}
			case res != nil:
				return false // refused: the attempt moved on
			default:
				return ctx.Err() == nil // not replicated: try again later
			}
		}
		pending, runs = nil, nil
		return true
	}
	held := func() int { return sources[0].mask.Pending() + sources[1].mask.Pending() }
	ticker := time.NewTicker(e.cfg.LogFlushInterval)
	defer ticker.Stop()
	for open := 2; ; {
		var i int
		var piece []byte
		var more bool
		select {
		case piece, more = <-sources[0].pieces:
			i = 0
		case piece, more = <-sources[1].pieces:
			i = 1
		case <-ticker.C:
			if !flush(false) {
				return
			}
			continue
		case <-ctx.Done():
			return
		}
		src := sources[i]
		if !more {
			src.pieces = nil // a nil channel is never ready
			if open--; open == 0 {
				e.flushLast(ctx, func() bool { return flush(true) }, func() bool { return len(pending) == 0 && held() == 0 })
				return
			}
			release(i, true) // nothing follows this stream's tail
			continue
		}
		if !src.take(piece) {
			continue
		}
		release(i, false)
		if len(pending)+held() >= logChunkBytes && !flush(false) {
			return
		}
	}
}

// take feeds a piece to the source's mask, keeping what comes before the
// resume position as context; it reports whether there is output.
func (src *streamSource) take(piece []byte) bool {
	if end := src.read + int64(len(piece)); end <= src.resumeAt {
		src.before = append(src.before, piece...)
		src.read = end
		return false
	} else if src.read < src.resumeAt {
		src.before = append(src.before, piece[:src.resumeAt-src.read]...)
		piece, src.read = piece[src.resumeAt-src.read:], src.resumeAt
	}
	if !src.resumed {
		src.mask.Resume(src.before)
		src.resumed, src.before = true, nil
	}
	src.mask.Write(piece)
	src.read += int64(len(piece))
	return true
}

// openStream opens one output stream from offset, riding out scheduler
// outages as openLogs does.
func (e *Executor) openStream(ctx context.Context, sl scheduler.StreamLogger, name string, kind scheduler.LogStream, offset int64) (io.ReadCloser, error) {
	backoff := 100 * time.Millisecond
	for {
		rc, err := sl.StreamLogs(ctx, name, kind, offset, true)
		if err == nil {
			return rc, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, scheduler.ErrUnavailable) {
			e.logger.Debug("no log stream for the container", "container", name, "stream", kind, "error", err)
			return nil, err
		}
		e.logger.Warn("cannot read container logs; retrying", "container", name, "stream", kind, "error", err)
		if !clock.Sleep(ctx, e.clock, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
