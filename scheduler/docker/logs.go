package docker

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/goferhq/gofer/scheduler"
)

// Logs implements scheduler.Scheduler. ctx governs the whole stream, not
// just its opening: cancelling it ends the stream with an error.
//
// Without a TTY the engine multiplexes stdout and stderr into one body of
// framed chunks, in the order its log driver recorded them. Demultiplexing
// both streams into the same pipe writer keeps that order, which the
// executor's single task log needs (two readers would race). A TTY
// container's body is already one raw stream and is copied as is.
//
// A missing container is an error wrapping ErrInvalid: there is nothing to
// read and retrying will not create it.
func (s *Scheduler) Logs(ctx context.Context, name string, follow bool) (io.ReadCloser, error) {
	info, found, err := s.resolve(ctx, "logs", name)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("docker: logs %s: no such container: %w", name, scheduler.ErrInvalid)
	}
	lctx, cancel := context.WithCancel(ctx)
	body, err := s.cli.ContainerLogs(lctx, info.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow})
	if err != nil {
		cancel()
		if notFound(err) {
			return nil, fmt.Errorf("docker: logs %s: no such container: %w: %w", name, scheduler.ErrInvalid, err)
		}
		return nil, classify("logs", name, err)
	}
	tty := info.Config != nil && info.Config.Tty
	pr, pw := io.Pipe()
	l := &logStream{PipeReader: pr, cancel: cancel, done: make(chan struct{}), id: info.ID}
	go func() {
		defer close(l.done)
		defer body.Close()
		var err error
		if tty {
			_, err = io.Copy(pw, body)
		} else {
			_, err = stdcopy.StdCopy(pw, pw, body)
		}
		if err != nil {
			// A cut stream (engine restart) or ctx: the reader must not
			// mistake a truncated log for a complete one.
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			pw.CloseWithError(fmt.Errorf("docker: logs %s: %w: %w", name, scheduler.ErrUnavailable, err))
			return
		}
		pw.Close()
	}()
	return l, nil
}

// logStream is the reader Logs returns. Close cancels the request, which
// unblocks the copying goroutine even mid-read, and waits for it, so
// nothing outlives Close.
type logStream struct {
	*io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	id     string
}

// ContainerID is the engine's id of the container whose output this is:
// a container recreated under the same name has another, and offsets into
// one's output mean nothing in the other's.
func (l *logStream) ContainerID() string { return l.id }

func (l *logStream) Close() error {
	l.once.Do(func() {
		l.cancel()
		_ = l.PipeReader.Close()
		<-l.done
	})
	return nil
}
