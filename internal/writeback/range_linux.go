package writeback

import (
	"os"

	"golang.org/x/sys/unix"
)

// startRange queues the range's dirty pages for writing and returns
// without waiting. sync_file_range touches neither metadata nor the
// journal, so it does not entangle other files' fsyncs as an fdatasync of
// this file would.
func startRange(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// waitRange waits until the range's pages are on disk (written by an
// earlier startRange or by the kernel's own writeback).
func waitRange(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}
