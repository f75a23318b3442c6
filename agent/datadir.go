package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
)

// Files in the data directory.
const (
	nodeIDFile  = "node-id"
	raftDBFile  = "raft.db"
	stateDBFile = "state.db"
	// cleanMarkerFile is written after a graceful stop has flushed the
	// state file. Its presence at start means the state file is complete
	// and can be trusted; see fsm/DESIGN.md.
	cleanMarkerFile = "state.clean"
)

// ErrDataDirInUse is wrapped when another process holds the data dir (the
// lock on its raft.db): a second server started on it stops at once.
var ErrDataDirInUse = errors.New("data dir in use")

// dataDirLockWait is how long start waits for the raft log's lock. A
// process that holds it holds it for as long as it runs, so waiting
// longer only delays the answer.
const dataDirLockWait = time.Second

// dataDirInUseError says which data dir is in use and how to get out.
type dataDirInUseError struct{ dir, file string }

func (e *dataDirInUseError) Error() string {
	return fmt.Sprintf("data dir %s is in use by another gofer process (%s is locked); stop it or choose another "+
		"--data-dir (server.data_dir, GOFER_WEB_SERVER__DATA_DIR)", e.dir, e.file)
}

func (e *dataDirInUseError) Is(target error) bool { return target == ErrDataDirInUse }

// openLogStore opens the raft log, which bbolt locks (flock) for as long
// as it is open: the first thing a start does with the data dir.
func openLogStore(dir string) (*raftboltdb.BoltStore, error) {
	path := filepath.Join(dir, raftDBFile)
	s, err := raftboltdb.New(raftboltdb.Options{
		Path: path,
		// Every append is fsync'd (NoSync stays false). The free list is
		// not written on each commit but rebuilt when the file is opened:
		// a long-lived log accumulates free pages, and rewriting that list
		// on every append is pure overhead on the write path.
		BoltOptions: &bbolt.Options{
			Timeout:        dataDirLockWait,
			FreelistType:   bbolt.FreelistMapType,
			NoFreelistSync: true,
		},
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, &dataDirInUseError{dir: dir, file: path}
	}
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", path, err)
	}
	return s, nil
}

// loadNodeID returns the node's persistent id: the configured one, the one
// recorded in the data dir, or a new random one. A data dir belongs to one
// node for life, so a configured id that disagrees with it is an error.
func loadNodeID(dataDir, configured string) (string, error) {
	path := filepath.Join(dataDir, nodeIDFile)
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		recorded := strings.TrimSpace(string(raw))
		if configured != "" && configured != recorded {
			return "", fmt.Errorf("data dir %s belongs to node %q, not %q; use another data dir or the recorded id", dataDir, recorded, configured)
		}
		return recorded, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read node id: %w", err)
	}
	id := configured
	if id == "" {
		var b [5]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		id = "node-" + hex.EncodeToString(b[:])
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

// openState opens the FSM's state file and decides whether raft may trust
// it on start (NoSnapshotRestoreOnStart). The file is written without
// fsync, so only a file that a graceful stop flushed and marked clean is
// trusted; after a crash it is discarded and rebuilt from raft's durable
// snapshot and log.
//
// A trusted file's applied index may be below the newest snapshot's
// index: raft numbers a snapshot by the last entry its FSM goroutine
// processed, including no-ops and barriers that never reach the FSM, and a
// user restore is placed above every index in the log. Every command entry
// up to the snapshot index is in the file either way, because the file is
// newer than (or was installed from) that snapshot.
func openState(dataDir string, logger hclog.Logger) (db *store.DB, trusted bool, err error) {
	statePath := filepath.Join(dataDir, stateDBFile)
	markerPath := filepath.Join(dataDir, cleanMarkerFile)
	opts := store.Options{NoSync: true}

	marker, mErr := os.ReadFile(markerPath)
	if mErr == nil {
		// The marker is single-use: remove it before anything writes, so a
		// crash later in this run is not mistaken for a clean stop.
		if err := os.Remove(markerPath); err != nil {
			return nil, false, fmt.Errorf("remove clean marker: %w", err)
		}
		if err := syncDir(dataDir); err != nil {
			return nil, false, err
		}
		recorded, _ := strconv.ParseUint(strings.TrimSpace(string(marker)), 10, 64)
		db, err := store.Open(statePath, opts)
		if err == nil {
			idx := db.ReadAppliedIndex()
			if idx == recorded {
				logger.Info("state file was closed cleanly; trusting it", "applied_index", idx)
				return db, true, nil
			}
			logger.Warn("clean marker does not match the state file; rebuilding from raft", "marker", recorded, "file", idx)
			db.Close()
		} else {
			logger.Warn("state file unreadable; rebuilding from raft", "error", err)
		}
	}
	if err := os.Remove(statePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("discard unflushed state file: %w", err)
	}
	db, err = store.Open(statePath, opts)
	return db, false, err
}

// markClean records that the state file was flushed at applied index idx.
func markClean(dataDir string, idx uint64) error {
	path := filepath.Join(dataDir, cleanMarkerFile)
	if err := os.WriteFile(path, []byte(strconv.FormatUint(idx, 10)+"\n"), 0o600); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	return syncDir(dataDir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
