package agent

// compactionChunk is how many raft log entries one transaction of a log
// compaction deletes (chunkedCompaction).
const compactionChunk = 4096

// chunkedCompaction deletes a prefix of the raft log in transactions of
// compactionChunk entries instead of one.
//
// After every snapshot raft deletes the log up to it (compactLogs) with one
// DeleteRange on its snapshot goroutine. raft-boltdb does that in a single
// bbolt transaction, and bbolt has one writer: every log append waits until
// it commits. A busy cluster appends hundreds of thousands of entries
// between two snapshots, and deleting 290,000 of them held appends — and so
// every write on the node, on the leader every write in the cluster — for
// about 2 s. In chunks, appends take turns with the deletes and wait for
// one chunk at most (tens of milliseconds).
//
// Only a prefix is chunked, oldest entries first, so a crash between two
// chunks leaves a shorter but contiguous log, as a finished compaction
// would; raft-boltdb's FirstIndex reads the first remaining entry. Any
// other range — raft deletes a conflicting suffix on a follower — is
// deleted in one call, as before: chunking it from the bottom could leave a
// hole.
type chunkedCompaction struct {
	logStore
	chunk uint64
}

func (c chunkedCompaction) DeleteRange(min, max uint64) error {
	first, err := c.FirstIndex()
	if err != nil || min > first || min > max || max-min < c.chunk {
		return c.logStore.DeleteRange(min, max)
	}
	for lo := min; ; lo += c.chunk {
		hi := max
		if max-lo >= c.chunk {
			hi = lo + c.chunk - 1
		}
		if err := c.logStore.DeleteRange(lo, hi); err != nil {
			return err
		}
		if hi == max {
			return nil
		}
	}
}
