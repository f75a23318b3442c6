package agent

import (
	"bufio"
	"context"
	"encoding/json"
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
	"github.com/goferhq/gofer/store/model"
)

// A backup file is one JSON header line followed by exactly Size bytes of
// state (a bbolt file, as raft snapshots hold it).
const (
	snapshotFormat        = "gofer-snapshot"
	snapshotFormatVersion = 1
	maxSnapshotHeader     = 64 << 10
)

type snapshotHeader struct {
	Format    string `json:"format"`
	Version   int    `json:"version"`
	Index     uint64 `json:"index"`
	Term      uint64 `json:"term"`
	Size      int64  `json:"size"`
	ClusterID string `json:"cluster_id"`
	NodeID    string `json:"node_id"`
	Created   int64  `json:"created"`
}

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
	hdr, _ := json.Marshal(snapshotHeader{
		Format: snapshotFormat, Version: snapshotFormatVersion, Index: meta.Index, Term: meta.Term,
		Size: meta.Size, ClusterID: a.clusterID(), NodeID: a.nodeID, Created: time.Now().UnixMilli(),
	})
	if _, err := w.Write(append(hdr, '\n')); err != nil {
		return err
	}
	n, err := io.Copy(w, rc)
	if err != nil {
		return err
	}
	if n != meta.Size {
		return fmt.Errorf("snapshot is %d bytes, expected %d", n, meta.Size)
	}
	return nil
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
func (a *Agent) SnapshotRestore(ctx context.Context, r io.Reader) (*api.RestoreResult, error) {
	if !a.IsLeader() {
		return nil, api.ErrNotLeader
	}
	a.restoreMu.Lock()
	defer a.restoreMu.Unlock()

	br := bufio.NewReaderSize(r, 1<<20)
	line, err := readHeaderLine(br)
	if err != nil {
		return nil, err
	}
	var hdr snapshotHeader
	if err := json.Unmarshal(line, &hdr); err != nil || hdr.Format != snapshotFormat {
		return nil, fmt.Errorf("%w: not a gofer snapshot (the file must come from 'gofer server snapshot save')", api.ErrInvalidInput)
	}
	if hdr.Version != snapshotFormatVersion {
		return nil, fmt.Errorf("%w: snapshot format version %d is not supported (this node reads %d)", api.ErrInvalidInput, hdr.Version, snapshotFormatVersion)
	}
	if hdr.Size <= 0 {
		return nil, fmt.Errorf("%w: snapshot header has no size", api.ErrInvalidInput)
	}

	tmp, err := os.CreateTemp(a.cfg.Server.DataDir, "restore-*.db")
	if err != nil {
		return nil, err
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath)
	n, err := io.CopyN(tmp, br, hdr.Size)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != hdr.Size {
		return nil, fmt.Errorf("%w: snapshot is truncated: read %d of %d bytes (%v)", api.ErrInvalidInput, n, hdr.Size, err)
	}
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

func readHeaderLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return nil, fmt.Errorf("%w: reading snapshot header: %v", api.ErrInvalidInput, err)
		}
		line = append(line, chunk...)
		if len(line) > maxSnapshotHeader {
			return nil, fmt.Errorf("%w: snapshot header is too long; not a gofer snapshot", api.ErrInvalidInput)
		}
		if !isPrefix {
			return line, nil
		}
	}
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
