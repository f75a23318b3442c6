package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/api"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/backup"
	"github.com/goferhq/gofer/store/model"
)

// SnapshotSave implements api.Cluster: take (or reuse) a raft snapshot on
// the leader and stream it with a header.
func (a *Agent) SnapshotSave(ctx context.Context, w io.Writer) error {
	if !a.IsLeader() {
		return api.ErrNotLeader
	}
	meta, rc, err := a.openSnapshot()
	if err != nil {
		return err
	}
	defer rc.Close()
	return backup.Write(w, backup.Header{Index: meta.Index, Term: meta.Term, Size: meta.Size,
		ClusterID: a.clusterID(), NodeID: a.nodeID, Created: time.Now().UnixMilli()}, rc)
}

// openSnapshot takes a fresh raft snapshot, or opens the newest one when
// nothing was applied since.
func (a *Agent) openSnapshot() (*raft.SnapshotMeta, io.ReadCloser, error) {
	f := a.raft.Snapshot()
	err := f.Error()
	if err == nil {
		return f.Open()
	}
	if !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil, nil, fmt.Errorf("take snapshot: %w", err)
	}
	metas, lerr := a.snapshots.List()
	if lerr != nil || len(metas) == 0 {
		return nil, nil, fmt.Errorf("take snapshot: %w (and no earlier snapshot: %v)", err, lerr)
	}
	return a.snapshots.Open(metas[0].ID)
}

// SnapshotRestore implements api.Cluster: replace the whole cluster's
// state with a backup. The backup keeps this cluster's identity and
// membership (the servers it records are rewritten to the live ones) so
// forwarding keeps working; everything else comes from the backup. Raft
// installs it on the leader and ships it to every follower.
func (a *Agent) SnapshotRestore(ctx context.Context, r io.Reader, opts api.RestoreOptions) (*api.RestoreResult, error) {
	if !a.IsLeader() {
		return nil, api.ErrNotLeader
	}
	a.restoreMu.Lock()
	defer a.restoreMu.Unlock()

	// Spool the whole file and verify it (magic, version, size, checksum)
	// before anything else: a damaged backup changes nothing.
	tmp, err := os.CreateTemp(a.cfg.Server.DataDir, "restore-*.db")
	if err != nil {
		return nil, err
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath)
	hdr, err := backup.Read(r, tmp, opts.ForceLegacy)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		return nil, cerr
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || isBackupFormatError(err) {
			return nil, fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
		}
		return nil, err
	}
	if hdr.Version == backup.LegacyVersion {
		a.logger.Warn("restoring a version 1 backup, which has no checksum (force_legacy)", "source_cluster", hdr.ClusterID, "source_index", hdr.Index)
	}
	// The checksum says the bytes are the ones saved; the state checker
	// says they are a sound state file (a legacy file, or a backup of a
	// damaged state, gets no further than this).
	if err := a.CheckState(ctx, tmpPath); err != nil {
		return nil, fmt.Errorf("%w: the backup's state is damaged: %v", api.ErrInvalidInput, err)
	}
	// Raft installs a user restore at an index above everything in its
	// log; record (a lower bound of) that index in the file so this
	// node's applied index does not go back to the backup's.
	restoreIndex := max(a.raft.LastIndex(), hdr.Index) + 1
	if err := a.keepMembership(tmpPath, restoreIndex, a.raft.CurrentTerm()); err != nil {
		return nil, err
	}
	st, err := os.Stat(tmpPath)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(tmpPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: hdr.Index, Term: hdr.Term, Size: st.Size()}
	timeout := 10 * time.Minute
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := a.raft.Restore(meta, f, timeout); err != nil {
		return nil, mapRaftError(fmt.Errorf("restore: %w", err))
	}
	a.logger.Info("restored cluster state from a backup", "source_cluster", hdr.ClusterID, "source_index", hdr.Index, "bytes", st.Size())
	return &api.RestoreResult{Index: hdr.Index, ClusterID: hdr.ClusterID, Size: st.Size()}, nil
}

// isBackupFormatError reports whether err says the file is damaged (the
// caller's mistake, 400) rather than that this node failed.
func isBackupFormatError(err error) bool {
	for _, e := range []error{backup.ErrBadMagic, backup.ErrUnsupportedVersion, backup.ErrLegacy, backup.ErrTruncated,
		backup.ErrChecksum, backup.ErrTrailingData, backup.ErrHeader} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// keepMembership rewrites the backup's cluster id and server records with
// the live cluster's, so a backup from another cluster (or an older
// membership) cannot break leader forwarding, and sets its applied index
// to the index the restore will sit at.
func (a *Agent) keepMembership(path string, index, term uint64) error {
	var servers []*model.Server
	var clusterID string
	if err := a.fsm.View(func(tx *bbolt.Tx) (err error) {
		clusterID = store.ClusterID(tx)
		servers, err = store.ListServers(tx)
		return err
	}); err != nil {
		return err
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalidInput, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := store.SetClusterID(tx, clusterID); err != nil {
			return err
		}
		if err := store.SetAppliedIndex(tx, index, term); err != nil {
			return err
		}
		return store.ReplaceServers(tx, servers)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// StateChecker verifies a state file offered from outside before it is
// opened for writing in this process.
type StateChecker func(ctx context.Context, path string) error

// CheckStateInProcess verifies a state file in this process. bbolt can
// panic on a goroutine of its own for some corruptions, which no recover
// catches, so servers use SubprocessStateChecker instead.
func CheckStateInProcess(_ context.Context, path string) error { return store.CheckFile(path) }

// CheckStateFile is the body of the hidden `gofer service check-state`
// command that SubprocessStateChecker runs.
func CheckStateFile(path string) error { return store.CheckFile(path) }

// SubprocessStateChecker runs `exe args... PATH` and treats any failure,
// including a crash, as a damaged file: a hostile backup can then kill
// only the checker, never the node.
func SubprocessStateChecker(exe string, args ...string) StateChecker {
	return func(ctx context.Context, path string) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, exe, append(append([]string(nil), args...), path)...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		msg := strings.TrimSpace(string(out))
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i] // the first line says what is wrong; a crash adds a stack
		}
		if msg == "" {
			msg = err.Error()
		}
		if rest, crashed := strings.CutPrefix(msg, "panic: "); crashed {
			return fmt.Errorf("the storage engine rejected it (%s)", rest)
		}
		return errors.New(strings.TrimPrefix(msg, "error: "))
	}
}
