package store

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
)

// DB is the state database. The handle can be swapped underneath readers
// (snapshot restore), so every access goes through View/Update, which hold
// a read lock on the handle for the length of the transaction.
type DB struct {
	mu   sync.RWMutex
	bolt *bbolt.DB
	path string
}

// Options tune how the state file is opened.
type Options struct {
	// NoSync skips fsync on commit. The FSM uses it because the state file
	// is rebuilt from raft's fsync'd snapshot and log after any crash; see
	// fsm/DESIGN.md.
	NoSync bool
}

// Open opens (creating if needed) the state file at path and makes sure
// every bucket exists.
func Open(path string, opts Options) (*DB, error) {
	b, err := openBolt(path, opts, false)
	if err != nil {
		return nil, err
	}
	d := &DB{bolt: b, path: path}
	if err := d.bolt.Update(createBuckets); err != nil {
		b.Close()
		return nil, fmt.Errorf("create buckets: %w", err)
	}
	return d, nil
}

func openBolt(path string, opts Options, readOnly bool) (*bbolt.DB, error) {
	b, err := openBoltMapped(path, opts, readOnly, mmapSize(path))
	if errors.Is(err, syscall.ENOMEM) {
		// A process address-space limit (ulimit -v) too small for the
		// reservation: open with a tight map instead, and accept that a
		// write growing it waits for open snapshots (see mmapSize).
		b, err = openBoltMapped(path, opts, readOnly, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	return b, nil
}

func openBoltMapped(path string, opts Options, readOnly bool, mmap int) (*bbolt.DB, error) {
	return bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:        5 * time.Second,
		NoSync:         opts.NoSync,
		NoFreelistSync: true,
		// A file that is never fsync'd gains nothing from the fsync bbolt
		// does each time it extends the file; that fsync flushed every
		// dirty page of the state file at once, in the FSM's apply path.
		NoGrowSync:      opts.NoSync,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: mmap,
		ReadOnly:        readOnly,
	})
}

// Path is the file the database lives in.
func (d *DB) Path() string { return d.path }

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(tx *bbolt.Tx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.bolt.View(fn)
}

// Update runs fn in a read-write transaction. Only the FSM may call it.
func (d *DB) Update(fn func(tx *bbolt.Tx) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.bolt.Update(fn)
}

// BeginWrite starts a write transaction that outlives the handle lock; the
// FSM keeps one open across raft batches (see fsm/DESIGN.md) and must
// commit or roll it back before Replace.
func (d *DB) BeginWrite() (*bbolt.Tx, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.bolt.Begin(true)
}

// BeginRead starts a read transaction that outlives the handle lock, for
// streaming a snapshot. The caller must Rollback it. A Replace meanwhile
// does not wait for it: the transaction keeps reading the state it began
// on, and the old handle closes once it ends.
func (d *DB) BeginRead() (*bbolt.Tx, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.bolt.Begin(false)
}

// Sync flushes the file to disk.
func (d *DB) Sync() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.bolt.Sync()
}

// Close closes the database.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bolt.Close()
}

// ErrInvalidStateFile means a file offered as state is not a Gofer state db.
var ErrInvalidStateFile = errors.New("store: not a valid gofer state file")

// Validate opens path read-only and checks that it is a bbolt file holding
// Gofer's meta bucket.
func Validate(path string) error {
	b, err := openBolt(path, Options{}, true)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidStateFile, err)
	}
	defer b.Close()
	return b.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return fmt.Errorf("%w: no meta bucket", ErrInvalidStateFile)
		}
		return nil
	})
}

// Replace swaps the live file for the one at newPath: it waits for the
// readers that hold the handle lock (View, Update: short), renames newPath
// over the live path, fsyncs the directory, opens the new file and swaps
// the handle. newPath must already have passed Validate.
//
// The old handle is closed in the background, not here: bbolt's Close
// waits for every read transaction, and a snapshot's (BeginRead) may be
// waiting on raft's main goroutine — which, installing a snapshot or a
// user restore, waits for this Replace: closing here deadlocked the node.
// The old handle still reads the old file (renamed over, but open) until
// its last transaction ends; the new file has its own inode and lock.
func (d *DB) Replace(newPath string, opts Options) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Rename(newPath, d.path); err != nil {
		return fmt.Errorf("install restored state: %w", err)
	}
	if err := syncDir(d.path); err != nil {
		return err
	}
	b, err := openBolt(d.path, opts, false)
	if err != nil {
		return err
	}
	if err := b.Update(createBuckets); err != nil {
		b.Close()
		return fmt.Errorf("create buckets: %w", err)
	}
	old := d.bolt
	d.bolt = b
	go func() { _ = old.Close() }()
	return nil
}

func syncDir(file string) error {
	dir, err := os.Open(dirOf(file))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			if i == 0 {
				return "/"
			}
			return path[:i]
		}
	}
	return "."
}
