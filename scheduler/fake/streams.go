package fake

import (
	"context"
	"fmt"
	"io"

	"github.com/goferhq/gofer/scheduler"
)

// Streams is the fake as a backend that keeps stdout and stderr apart
// (scheduler.StreamLogger, as Nomad): the executor reads each stream on
// its own and resumes each at its own offset. The fake itself offers only
// the one ordered stream (as Docker), so the executor's tests choose the
// path by which of the two they hand it. A script's Logs does not apply
// to StreamLogs: it serves what the script and Print wrote.
type Streams struct {
	*Scheduler
}

var _ scheduler.StreamLogger = Streams{}

// WithStreams returns s as a backend with separate streams.
func (s *Scheduler) WithStreams() Streams { return Streams{s} }

// StreamLogs streams one of the container's streams from offset; with
// follow it ends when the container exits. Failures count and are
// injected as Logs' are (op "StreamLogs").
func (s Streams) StreamLogs(ctx context.Context, name string, stream scheduler.LogStream, offset int64, follow bool) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.gate("StreamLogs", name); err != nil {
		return nil, err
	}
	if stream != scheduler.Stdout && stream != scheduler.Stderr {
		return nil, fmt.Errorf("fake: logs %s: unknown stream %q: %w", name, stream, scheduler.ErrInvalid)
	}
	c, ok := s.containers[name]
	if !ok {
		return nil, fmt.Errorf("fake: logs %s: no such container: %w", name, scheduler.ErrInvalid)
	}
	return &logReader{s: s.Scheduler, c: c, ctx: ctx, follow: follow, stream: stream, off: int(offset), closed: make(chan struct{})}, nil
}

// output is what a log reader of stream reads ("" is both, in order).
// Called with s.mu held.
func (c *container) output(stream scheduler.LogStream) []byte {
	switch stream {
	case scheduler.Stdout:
		return c.streams[0]
	case scheduler.Stderr:
		return c.streams[1]
	}
	return c.out
}
