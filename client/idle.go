package client

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// A node that freezes (SIGSTOP, a network partition) neither sends nor
// closes: without a read deadline a follow would wait on it forever. A
// healthy stream speaks at least every keep-alive interval, which the
// server announces in its greeting (`: connected to node2 at byte 0;
// keep-alive 15s`), so a stream silent for idleKeepAlives intervals is
// treated as cut and resumed elsewhere.
const (
	idleKeepAlives = 3
	// defaultStreamIdle is the limit before a greeting names the interval,
	// or when it does not (an older server): three of the server's
	// default 15 s.
	defaultStreamIdle = 45 * time.Second
)

// idleBody is a response body that cancels its request when nothing
// arrives for its limit.
type idleBody struct {
	body  io.Reader
	timer *time.Timer
	limit atomic.Int64
	fired atomic.Bool
}

// watchIdle reads body, calling cancel (the request's) once it has been
// silent for limit.
func watchIdle(body io.Reader, cancel context.CancelFunc, limit time.Duration) *idleBody {
	b := &idleBody{body: body}
	b.limit.Store(int64(limit))
	b.timer = time.AfterFunc(limit, func() {
		b.fired.Store(true)
		cancel()
	})
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 && !b.fired.Load() {
		b.timer.Reset(time.Duration(b.limit.Load()))
	}
	return n, err
}

// keepAlive sets the limit from the interval the server announced.
func (b *idleBody) keepAlive(interval time.Duration) {
	limit := idleKeepAlives * interval
	b.limit.Store(int64(limit))
	if !b.fired.Load() {
		b.timer.Reset(limit)
	}
}

// stop ends the watch (the body is done with).
func (b *idleBody) stop() { b.timer.Stop() }

// cause replaces the read error of a body the watch cut.
func (b *idleBody) cause(err error) error {
	if b.fired.Load() {
		return fmt.Errorf("the node sent nothing (not even a keep-alive) for %s", time.Duration(b.limit.Load()))
	}
	return err
}

// greetingKeepAlive is the keep-alive interval a greeting comment
// announces (`connected to node2 at byte 0; keep-alive 15s`).
func greetingKeepAlive(comment string) (time.Duration, bool) {
	if !strings.HasPrefix(comment, "connected") {
		return 0, false
	}
	for _, part := range strings.Split(comment, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "keep-alive "); ok {
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				return d, true
			}
		}
	}
	return 0, false
}
