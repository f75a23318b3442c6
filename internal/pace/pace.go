// Package pace writes at a bounded rate. Snapshots use it so that writing
// a whole state file does not fill the page cache with gigabytes of dirty
// pages that the final fsync must then flush at once, stalling every other
// fsync on the disk (raft's log appends among them).
package pace

import (
	"io"
	"time"
)

// Chunk is the largest single write passed through; pauses fall between
// chunks, so the rate holds at a granularity finer than a second.
const Chunk = 1 << 20

// burst is how far the writer may fall behind its schedule and then catch
// up at full speed; beyond it the schedule restarts from now, so a stall
// elsewhere is not followed by an unbounded burst.
const burst = 50 * time.Millisecond

// Writer passes writes to W at most Rate bytes per second.
type Writer struct {
	w     io.Writer
	rate  int64
	now   func() time.Time
	sleep func(time.Duration)
	next  time.Time // when the next byte is due
}

// NewWriter paces w at rate bytes per second with the real clock; a rate
// of 0 or less returns w itself (unlimited).
func NewWriter(w io.Writer, rate int64) io.Writer {
	if rate <= 0 {
		return w
	}
	return NewWriterClock(w, rate, time.Now, time.Sleep)
}

// NewWriterClock is NewWriter with the clock given (tests).
func NewWriterClock(w io.Writer, rate int64, now func() time.Time, sleep func(time.Duration)) *Writer {
	return &Writer{w: w, rate: rate, now: now, sleep: sleep}
}

func (p *Writer) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), Chunk)
		p.wait()
		m, err := p.w.Write(b[:n])
		written += m
		p.account(m)
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// wait sleeps until the next byte is due.
func (p *Writer) wait() {
	if d := p.next.Sub(p.now()); d > 0 {
		p.sleep(d)
	}
}

// account moves the schedule on by the time n bytes take at the rate.
func (p *Writer) account(n int) {
	now := p.now()
	if floor := now.Add(-burst); p.next.Before(floor) {
		p.next = floor
	}
	p.next = p.next.Add(time.Duration(int64(n) * int64(time.Second) / p.rate))
}
