// Package writeback has the kernel write a large file out while it is
// being written, instead of all at once when it is closed.
//
// A raft snapshot of a multi-GiB state is written through the page cache.
// Left alone, its pages stay dirty until they are 30 s old or the cache
// holds a tenth of memory (gigabytes here), and the snapshot's final fsync
// then flushes the rest at once: for seconds the disk does nothing else,
// and the raft log's fsyncs on every write queue behind it. Writer starts
// writeback of each region soon after it is written and waits for the
// region before it, so at most two regions are dirty at any time and the
// final fsync has almost nothing left to do.
package writeback

import (
	"io"
	"os"
)

// DefaultRegion is how many bytes are written between writebacks: large
// enough that the disk sees big sequential writes, small enough that the
// dirty pages never amount to a stall.
const DefaultRegion = 8 << 20

// Writer passes writes to W and starts writing File's pages to disk every
// Region bytes. File is the file W ends up in (W may buffer in front of
// it); it only needs to be open for reading.
type Writer struct {
	w       io.Writer
	f       *os.File
	region  int64
	written int64 // bytes passed to w
	started int64 // writeback started up to here
	waited  int64 // writeback finished up to here
	err     error // first writeback error; writeback then stops
}

// New returns a Writer over w that writes f's pages back every region
// bytes (DefaultRegion if region <= 0).
func New(w io.Writer, f *os.File, region int64) *Writer {
	if region <= 0 {
		region = DefaultRegion
	}
	return &Writer{w: w, f: f, region: region}
}

func (x *Writer) Write(p []byte) (int, error) {
	n, err := x.w.Write(p)
	x.written += int64(n)
	if x.err == nil && x.written-x.started >= x.region {
		x.advance()
	}
	return n, err
}

// advance starts writeback of what was written since the last call and
// waits for the region started the time before, which has had a region's
// worth of writing to complete.
func (x *Writer) advance() {
	if err := startRange(x.f, x.started, x.written-x.started); err != nil {
		x.err = err
		return
	}
	if x.started > x.waited {
		if err := waitRange(x.f, x.waited, x.started-x.waited); err != nil {
			x.err = err
			return
		}
		x.waited = x.started
	}
	x.started = x.written
}

// WrittenBack is how many bytes have been written to disk early (their
// writeback started and waited for). 0 where the platform has no
// sync_file_range, or after an error.
func (x *Writer) WrittenBack() int64 { return x.waited }

// Err is the first writeback error, if any. Writeback is an optimisation:
// the writes themselves went through; the file's own fsync still decides
// durability.
func (x *Writer) Err() error { return x.err }
