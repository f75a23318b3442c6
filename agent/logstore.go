package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	gometrics "github.com/hashicorp/go-metrics/compat"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// The raft log stores a node can keep its log (and raft's stable store:
// current term, vote) in: raft.log_store.
const (
	// LogStoreBoltDB is raft-boltdb/v2: raft.db, one bbolt file. The
	// default, and what every data dir written before the choice existed
	// holds.
	LogStoreBoltDB = "boltdb"
	// LogStoreWAL is raft-wal: append-only segment files plus a small
	// bbolt meta file under wal/. One fsync per append instead of bbolt's
	// two, and truncation after a snapshot deletes whole segments rather
	// than growing a free list.
	LogStoreWAL = "wal"
)

// Files in the data directory that belong to the log store.
const (
	// logStoreFile records which store the data dir's raft log is in, so
	// a node never opens a log written by the other store as empty (it
	// would rejoin with a blank log and a forgotten vote).
	logStoreFile = "log-store"
	// walDir holds raft-wal's wal-meta.db and its *.wal segments.
	walDir = "wal"
	// walLockFile is locked (flock) while a node has the WAL open: raft-wal
	// opens its meta file without a lock timeout, so this lock is what
	// makes a second process on the data dir stop at once.
	walLockFile = "lock"
)

// logStore is what raft needs from the log store: the log, the stable
// store, and a close at shutdown. Both stores implement all three.
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// validLogStore reports whether name is a known raft.log_store.
func validLogStore(name string) bool { return name == LogStoreBoltDB || name == LogStoreWAL }

// logStoreMismatchError is a start refused because the data dir's raft log
// is in another store than configured. Switching means starting the node
// over as a new member: a store cannot read the other's files.
type logStoreMismatchError struct{ dir, recorded, configured string }

func (e *logStoreMismatchError) Error() string {
	return fmt.Sprintf("data dir %s holds a raft log in the %q log store, but raft.log_store is %q; "+
		"to keep this data set raft.log_store = %q (GOFER_WEB_RAFT__LOG_STORE). To switch this node to %q: "+
		"remove it from the cluster (gofer server remove <node-id>, through another member), stop it, "+
		"delete its raft data (in %s: %s, %s, %s, %s, %s and %s; keep %s), then start it with raft.log_store = %q and --join",
		e.dir, e.recorded, e.configured, e.recorded, e.configured,
		e.dir, raftDBFile, walDir+"/", "snapshots/", stateDBFile, cleanMarkerFile, logStoreFile, nodeIDFile, e.configured)
}

// recordedLogStore returns the store the data dir's raft log is in: the
// recorded one; boltdb for a data dir from before the record existed (it
// has raft.db); "" for a data dir with no raft log yet.
func recordedLogStore(dir string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, logStoreFile))
	switch {
	case err == nil:
		name := strings.TrimSpace(string(raw))
		if !validLogStore(name) {
			return "", fmt.Errorf("%s records an unknown raft log store %q (want %s or %s)",
				filepath.Join(dir, logStoreFile), name, LogStoreBoltDB, LogStoreWAL)
		}
		return name, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read raft log store record: %w", err)
	}
	// No record: a data dir from before it existed has raft.db; wal/
	// without a record is a first wal start that stopped before writing it.
	if _, err := os.Stat(filepath.Join(dir, raftDBFile)); err == nil {
		return LogStoreBoltDB, nil
	}
	if _, err := os.Stat(filepath.Join(dir, walDir)); err == nil {
		return LogStoreWAL, nil
	}
	return "", nil
}

// checkLogStore refuses a configured store that is not the one the data
// dir's raft log is in. It only reads, so a refused start changes nothing.
func checkLogStore(dir, configured string) error {
	recorded, err := recordedLogStore(dir)
	if err != nil {
		return err
	}
	if recorded != "" && recorded != configured {
		return &logStoreMismatchError{dir: dir, recorded: recorded, configured: configured}
	}
	return nil
}

// openConfiguredLogStore opens the configured raft log store after checking
// it against the data dir, and records the choice in the data dir. Opening
// takes the data dir's lock (raft.db's, or wal/lock's), so the check is
// repeated under it: a process that raced this one to a fresh data dir
// with the other store has written its record by then.
func openConfiguredLogStore(dir, name string, logger hclog.Logger) (logStore, error) {
	if err := checkLogStore(dir, name); err != nil {
		return nil, err
	}
	var s logStore
	var err error
	switch name {
	case LogStoreWAL:
		s, err = openWALStore(dir, logger)
	default:
		var b *raftboltdb.BoltStore
		b, err = openLogStore(dir)
		if err == nil {
			s = chunkedCompaction{logStore: b, chunk: compactionChunk}
		}
	}
	if err != nil {
		return nil, err
	}
	if err := checkLogStore(dir, name); err != nil {
		s.Close()
		return nil, err
	}
	if err := recordLogStore(dir, name); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// recordLogStore writes the record (durably) unless it is there already.
func recordLogStore(dir, name string) error {
	path := filepath.Join(dir, logStoreFile)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.WriteFile(path, []byte(name+"\n"), 0o600); err != nil {
		return fmt.Errorf("record raft log store: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// walStore is raft-wal with the lock that keeps a second process out.
type walStore struct {
	*wal.WAL
	// meta is raft-wal's wal-meta.db, passed in so Close can close it:
	// WAL.Close (v0.4.0) leaves it open, and it holds bbolt's lock, so a
	// later open in the same process (a failed start retried, a test)
	// would wait on it forever.
	meta *metadb.BoltMetaDB
	lock *os.File
}

// Close closes the WAL and its meta file, then releases the lock.
func (w *walStore) Close() error {
	err := errors.Join(w.WAL.Close(), w.meta.Close())
	return errors.Join(err, w.lock.Close())
}

// openWALStore locks wal/lock (waiting at most dataDirLockWait) and opens
// raft-wal in wal/. raft-wal fsyncs every append and recovers a torn tail
// segment on open.
func openWALStore(dir string, logger hclog.Logger) (*walStore, error) {
	wdir := filepath.Join(dir, walDir)
	if err := os.MkdirAll(wdir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft log dir %s: %w", wdir, err)
	}
	lockPath := filepath.Join(wdir, walLockFile)
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", lockPath, err)
	}
	deadline := time.Now().Add(dataDirLockWait)
	for {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			lock.Close()
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
		if time.Now().After(deadline) {
			lock.Close()
			return nil, &dataDirInUseError{dir: dir, file: lockPath}
		}
		time.Sleep(50 * time.Millisecond)
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(wdir, wal.WithLogger(logger.Named("wal")), wal.WithMetaStore(meta),
		wal.WithMetricsCollector(walMetrics{}))
	if err != nil {
		meta.Close()
		lock.Close()
		return nil, fmt.Errorf("open raft log %s: %w", wdir, err)
	}
	return &walStore{WAL: w, meta: meta, lock: lock}, nil
}

// walMetrics passes raft-wal's counters and gauges to go-metrics' global
// instance, where raft's own go (served as gofer_raft_wal_*;
// docs/metrics.md). It looks the instance up at each call: raft-wal's own
// go-metrics collector keeps the one it was built with, and the store is
// opened before the node's metrics install theirs.
type walMetrics struct{}

func (walMetrics) IncrementCounter(name string, delta uint64) {
	gometrics.IncrCounter([]string{"raft", "wal", name}, float32(delta))
}

func (walMetrics) SetGauge(name string, val uint64) {
	gometrics.SetGauge([]string{"raft", "wal", name}, float32(val))
}
