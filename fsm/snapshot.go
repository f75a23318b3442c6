package fsm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/internal/pace"
	"github.com/goferhq/gofer/internal/writeback"
	"github.com/goferhq/gofer/store"
)

// SetSnapshotWriteRate bounds how fast snapshots are written, in bytes per
// second (0 or less: unlimited). A paced write keeps the page cache from
// collecting the whole state file as dirty pages that the snapshot's final
// fsync would flush at once, stalling the raft log's own fsyncs.
func (f *FSM) SetSnapshotWriteRate(bytesPerSecond int64) { f.snapshotWriteRate.Store(bytesPerSecond) }

// SetSnapshotDir names the directory raft's FileSnapshotStore was created
// in. Persist then writes the snapshot file's pages to disk region by
// region as it goes (internal/writeback) instead of leaving gigabytes of
// dirty pages for the final fsync, which stalled the raft log's fsyncs.
func (f *FSM) SetSnapshotDir(dir string) { f.snapshotDir.Store(&dir) }

// Snapshot captures the state at exactly the current applied index by
// opening a bbolt read transaction here, on the FSM goroutine; Persist
// streams that transaction's view while later entries keep applying.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.Flush()
	tx, err := f.db.BeginRead()
	if err != nil {
		return nil, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	s := &snapshot{tx: tx, rate: f.snapshotWriteRate.Load(), aborted: f.snapshotsAborted, logger: f.logger}
	if dir := f.snapshotDir.Load(); dir != nil {
		s.dir = *dir
	}
	return s, nil
}

// AbortSnapshots makes a snapshot being written, and any later one, fail
// at its next write: a paced snapshot of a large state takes longer than
// the node's shutdown timeout (16 s per GiB at 64 MiB/s), and raft's
// shutdown waits for it. Raft cancels the sink; the previous snapshot
// stays the latest.
func (f *FSM) AbortSnapshots() { f.abortSnapshotsOnce.Do(func() { close(f.snapshotsAborted) }) }

// ErrSnapshotAborted: the node is shutting down (AbortSnapshots).
var ErrSnapshotAborted = errors.New("snapshot aborted: the node is shutting down")

type snapshot struct {
	tx      *bbolt.Tx
	rate    int64 // bytes per second; 0: unlimited
	aborted <-chan struct{}
	dir     string // raft's snapshot store directory; "": no early writeback
	logger  hclog.Logger

	writtenBack int64 // bytes Persist had written to disk early (tests)
}

// abortable fails every write once aborted closes.
type abortable struct {
	w       io.Writer
	aborted <-chan struct{}
}

func (a abortable) Write(p []byte) (int, error) {
	select {
	case <-a.aborted:
		return 0, ErrSnapshotAborted
	default:
		return a.w.Write(p)
	}
}

// Persist writes the whole state file to sink, at most rate bytes per
// second.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	var out io.Writer = sink
	if f := s.openSinkFile(sink); f != nil {
		defer f.Close()
		wb := writeback.New(sink, f, writeback.DefaultRegion)
		defer func() {
			s.writtenBack = wb.WrittenBack()
			if err := wb.Err(); err != nil {
				s.logger.Debug("snapshot written without early writeback", "error", err)
			}
		}()
		out = wb
	}
	w := bufio.NewWriterSize(abortable{pace.NewWriter(out, s.rate), s.aborted}, 1<<20)
	if _, err := s.tx.WriteTo(w); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := w.Flush(); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

// openSinkFile opens, read-only, the file raft's FileSnapshotStore writes
// sink's data to: <dir>/snapshots/<id>.tmp/state.bin, the layout of
// hashicorp/raft's file_snapshot.go (TestPersistWritesBackEarly fails if
// a raft upgrade moves it). nil for any other sink: the snapshot is then
// written exactly as before, only without early writeback.
func (s *snapshot) openSinkFile(sink raft.SnapshotSink) *os.File {
	if s.dir == "" {
		return nil
	}
	if _, ok := sink.(*raft.FileSnapshotSink); !ok {
		return nil
	}
	f, err := os.Open(filepath.Join(s.dir, "snapshots", sink.ID()+".tmp", "state.bin"))
	if err != nil {
		s.logger.Debug("snapshot written without early writeback", "error", err)
		return nil
	}
	return f
}

// Release ends the read transaction.
func (s *snapshot) Release() { _ = s.tx.Rollback() }

// Restore replaces all state with the snapshot in rc: it writes the stream
// to a temporary file, checks that it is a Gofer state file, then swaps it
// in by rename. Waiters are woken because everything may have changed.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.discardPending()
	tmp := f.db.Path() + ".restore"
	if err := writeFileSync(tmp, rc); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("receive snapshot: %w", err)
	}
	if err := store.Validate(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := f.db.Replace(tmp, f.dbOpts); err != nil {
		return err
	}
	if err := f.loadAppliedIndex(); err != nil {
		return err
	}
	f.logger.Info("restored state from snapshot", "applied_index", f.applied.Load())
	f.authGen.Add(1)
	f.restores.Add(1)
	f.changes.Notify()
	f.runChanges.Notify()
	f.keyRotationChanges.Notify()
	return nil
}

func writeFileSync(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
