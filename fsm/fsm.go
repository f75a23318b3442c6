// Package fsm is Gofer's raft state machine: it applies committed commands
// to the bbolt state file (package store), one write transaction per batch,
// and snapshots/restores by streaming that file.
//
// Appliers are pure: given the state and a command they compute the same
// result on every node. See DESIGN.md for why and how.
package fsm

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// FSM implements raft.BatchingFSM over a store.DB.
type FSM struct {
	db      *store.DB
	dbOpts  store.Options
	logger  hclog.Logger
	applied atomic.Uint64
	changes *Notifier
	// runChanges is changes without the batches that only stored output
	// or did housekeeping: what the executor waits on.
	runChanges *Notifier
	// keyRotationChanges fires only for key rotation commands (and on a
	// restore), so the idle key rotator wakes for nothing else.
	keyRotationChanges *Notifier

	// Group commit of the state file (see DESIGN.md): applied batches
	// accumulate in one open write transaction, committed when a reader
	// needs them, a snapshot is taken, the node stops, the transaction
	// grows past maxPendingEntries, or the agent's flush timer fires.
	txMu           sync.Mutex
	pending        *bbolt.Tx
	pendingEntries int
	dirty          atomic.Bool
	// authGen counts changes to tokens and roles (and restores), so the
	// API can cache resolved identities and know when to drop them.
	authGen atomic.Uint64
	// restores counts snapshot restores, for leader services that stop
	// looking once the state has nothing for them until it is replaced
	// (the task slimmer).
	restores atomic.Uint64

	// obs watches applies for metrics (SetObserver); nil: nobody.
	obs Observer

	// snapshotWriteRate bounds how fast Persist writes, in bytes per
	// second (SetSnapshotWriteRate); 0: unlimited.
	snapshotWriteRate atomic.Int64
	// snapshotsAborted closes (AbortSnapshots) when the node shuts down,
	// so a paced Persist stops instead of holding the shutdown.
	snapshotsAborted   chan struct{}
	abortSnapshotsOnce sync.Once
	// snapshotDir is the raft FileSnapshotStore's directory
	// (SetSnapshotDir), where Persist finds the file it writes to start
	// its writeback early; "": no early writeback.
	snapshotDir atomic.Pointer[string]
}

// Observer watches the state machine apply, for metrics. It is a side
// effect only: nothing it does reaches the state, and the state machine
// never reads from it, so applies stay deterministic. Timing lives in the
// observer (this package keeps no clock).
type Observer interface {
	// Batch is told the size of each batch applied.
	Batch(n int)
	// Command is called before a command applies; done is called after
	// with the command's name and the value its applier returned.
	Command() (done func(name string, value any))
}

// SetObserver sets the apply observer; call it before raft starts.
func (f *FSM) SetObserver(o Observer) { f.obs = o }

var _ raft.BatchingFSM = (*FSM)(nil)

// New wraps db. The applied index is read from the file, so entries raft
// replays after a restart that the file already holds are skipped.
func New(db *store.DB, dbOpts store.Options, logger hclog.Logger) (*FSM, error) {
	f := &FSM{snapshotsAborted: make(chan struct{}), db: db, dbOpts: dbOpts, logger: logger.Named("fsm"), changes: NewNotifier(), runChanges: NewNotifier(), keyRotationChanges: NewNotifier()}
	if err := f.loadAppliedIndex(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FSM) loadAppliedIndex() error {
	return f.db.View(func(tx *bbolt.Tx) error {
		idx, _ := store.AppliedIndex(tx)
		f.applied.Store(idx)
		return nil
	})
}

// DB is the state file. Readers use View, which sees every applied entry;
// reading the DB directly sees only what has been committed.
func (f *FSM) DB() *store.DB { return f.db }

// maxPendingEntries bounds how many applied entries wait for a commit.
const maxPendingEntries = 4096

// View runs fn on state that includes every entry applied so far,
// committing the pending transaction first if there is one.
func (f *FSM) View(fn func(tx *bbolt.Tx) error) error {
	if f.dirty.Load() {
		f.Flush()
	}
	return f.db.View(fn)
}

// ViewCommitted runs fn on committed state without forcing a commit: for
// reads that may lag applied state by one flush interval (the leader's
// address, the cluster id).
func (f *FSM) ViewCommitted(fn func(tx *bbolt.Tx) error) error { return f.db.View(fn) }

// Dirty reports whether applied entries are waiting for a commit.
func (f *FSM) Dirty() bool { return f.dirty.Load() }

// Flush commits the pending transaction, if any. A commit failure panics,
// as any other state write failure does.
func (f *FSM) Flush() {
	f.txMu.Lock()
	defer f.txMu.Unlock()
	f.commitLocked()
}

func (f *FSM) commitLocked() {
	if f.pending == nil {
		return
	}
	if err := f.pending.Commit(); err != nil {
		f.logger.Error("state commit failed; stopping to avoid divergence", "error", err)
		panic(fmt.Sprintf("fsm: state commit failed: %v", err))
	}
	f.pending, f.pendingEntries = nil, 0
	f.dirty.Store(false)
}

// discardPending drops uncommitted applies (only before a Restore replaces
// all state anyway).
func (f *FSM) discardPending() {
	f.txMu.Lock()
	defer f.txMu.Unlock()
	if f.pending != nil {
		_ = f.pending.Rollback()
		f.pending, f.pendingEntries = nil, 0
		f.dirty.Store(false)
	}
}

// AppliedIndex is the index of the last raft entry reflected in state.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// AuthGeneration changes (after commit) whenever a token or role may have
// changed. Read it before reading state; an identity cached under an
// older generation must be reloaded.
func (f *FSM) AuthGeneration() uint64 { return f.authGen.Load() }

// Restores is how many snapshots this FSM restored: it changes (after the
// new state is in place) whenever the whole state was replaced.
func (f *FSM) Restores() uint64 { return f.restores.Load() }

// Changes wakes waiters after every applied batch and every restore.
func (f *FSM) Changes() *Notifier { return f.changes }

// RunChanges wakes waiters after every restore and every applied batch
// that may have changed runs or tasks, that is all but those holding only
// log output, housekeeping, or changes to namespaces' own fields, tokens,
// roles and events (commandSpec.quiet): a running task's output, replicated
// every 250 ms, would otherwise wake the executor each time, and so would
// every API write, each costing the leader a state commit and a read of
// every active run.
func (f *FSM) RunChanges() *Notifier { return f.runChanges }

// KeyRotationChanges wakes waiters after a batch that started, advanced or
// finished an encryption key rotation, and after every restore.
func (f *FSM) KeyRotationChanges() *Notifier { return f.keyRotationChanges }

// WaitForIndex blocks until the FSM has applied index, or ctx ends.
func (f *FSM) WaitForIndex(ctx context.Context, index uint64) error {
	for {
		changed := f.changes.Changed()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for index %d (applied %d): %w", index, f.applied.Load(), ctx.Err())
		}
	}
}

// Apply applies a single entry.
func (f *FSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries to the pending write transaction
// and records the last index and term in it. Entries at or below the
// recorded index are already in the state (raft replays the log tail
// after a restart) and are skipped. A storage failure panics: a node whose
// state cannot follow the log must stop, not diverge.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	results := make([]any, len(logs))
	authChanged, runsChanged, rotationChanged := false, false, false
	f.txMu.Lock()
	tx := f.pending
	if tx == nil {
		var err error
		if tx, err = f.db.BeginWrite(); err != nil {
			f.txMu.Unlock()
			panic(fmt.Sprintf("fsm: begin state transaction: %v", err))
		}
		f.pending = tx
	}
	appliedIdx, _ := store.AppliedIndex(tx)
	var last *raft.Log
	if f.obs != nil {
		f.obs.Batch(len(logs))
	}
	for i, l := range logs {
		if l.Index <= appliedIdx {
			continue
		}
		last = l
		if l.Type != raft.LogCommand {
			continue
		}
		var done func(string, any)
		if f.obs != nil {
			done = f.obs.Command()
		}
		res, t, tokensChanged := f.applyCommand(tx, l)
		results[i] = res
		if done != nil {
			var v any
			if res != nil && res.Err == nil {
				v = res.Value
			}
			done(t.String(), v)
		}
		spec := commands[t]
		authChanged = authChanged || spec.changesAuth || tokensChanged
		runsChanged = runsChanged || !spec.quiet
		rotationChanged = rotationChanged || spec.keyRotation
	}
	if last != nil {
		if err := store.SetAppliedIndex(tx, last.Index, last.Term); err != nil {
			f.txMu.Unlock()
			panic(fmt.Sprintf("fsm: record applied index: %v", err))
		}
		f.pendingEntries += len(logs)
		f.dirty.Store(true)
		if f.pendingEntries >= maxPendingEntries {
			f.commitLocked()
		}
	}
	f.txMu.Unlock()
	if n := len(logs); n > 0 && logs[n-1].Index > f.applied.Load() {
		f.applied.Store(logs[n-1].Index)
	}
	if authChanged {
		f.authGen.Add(1)
	}
	f.changes.Notify()
	if rotationChanged {
		f.keyRotationChanges.Notify()
	}
	if runsChanged {
		f.runChanges.Notify()
	}
	return results
}

// applyCtx is what an applier sees: the write transaction, the command's
// meta and its raft position.
type applyCtx struct {
	tx    *bbolt.Tx
	meta  Meta
	index uint64
	// legacyFormat: the entry came from a binary that wrote event details
	// as strings and deployment states PascalCase (envelope versions 1
	// and 2); the records it makes must keep that format byte for byte,
	// so a node replaying it writes what the node that first applied it
	// wrote.
	legacyFormat bool
	// releaseSteps: the entry is envelope version 4 or later, so canary
	// durations go under per-run keys and the release step events are
	// emitted; older entries write what their binaries wrote.
	releaseSteps bool
	// slimTasks: the entry is envelope version 6 or later, so run creation
	// writes slim task executions; older entries write fat ones.
	slimTasks bool
	// streamOffsets: the entry is envelope version 5 or later, so a log
	// append stores its per-stream positions on the task.
	streamOffsets bool
	// tokensChanged: the applier created or deleted a token, so cached
	// identities must be dropped (as after an auth command).
	tokensChanged bool
}

// emit appends a cluster-wide event (tokens, roles, membership, the
// system, global secrets): only tokens allowed cluster-wide events see it.
func (a *applyCtx) emit(kind string, details model.EventDetails) error {
	return a.emitIn("", "", kind, details)
}

// emitIn appends an event that belongs to namespace ns (and pipeline, when
// not empty), stamped with the command's time and actor. The scope is
// recorded on the event itself, from the applier's own arguments, so the
// API decides who may read it without interpreting details; an empty ns
// makes the event cluster-wide.
func (a *applyCtx) emitIn(ns, pipeline, kind string, details model.EventDetails) error {
	actor := a.meta.Actor
	if actor == "" {
		actor = "system"
	}
	if ns == "" {
		pipeline = ""
	}
	if a.legacyFormat {
		details = legacyDetails(details)
	}
	return store.AppendEvent(a.tx, &model.Event{Kind: kind, Details: details, Emitted: a.meta.Timestamp, Actor: actor,
		NamespaceID: ns, PipelineID: pipeline})
}

// applier applies one decoded command. It must check every precondition
// before writing anything, and return a business error (ErrNotFound…) for
// a refused command; any other error is a storage failure.
type applier func(a *applyCtx, body []byte) (any, error)

// decodeBody decodes a command body. The leader encoded it, so failure
// means a corrupt or incompatible log: stop rather than guess.
func decodeBody[T any](body []byte) *T {
	v := new(T)
	if fd, ok := any(v).(fastDecoder); ok && fd.decodeFast(body) {
		return v
	}
	if err := json.Unmarshal(body, v); err != nil {
		panic(fmt.Sprintf("fsm: undecodable %T body: %v", v, err))
	}
	return v
}

// applyCommand applies one entry; tokensChanged says its applier created
// or deleted a token (a run's API token) without being an auth command.
func (f *FSM) applyCommand(tx *bbolt.Tx, l *raft.Log) (res *Result, t CommandType, tokensChanged bool) {
	t, env, err := decode(l.Data)
	if err != nil {
		panic(fmt.Sprintf("fsm: undecodable entry at index %d: %v", l.Index, err))
	}
	a := &applyCtx{tx: tx, meta: env.Meta, index: l.Index, legacyFormat: env.legacyFormat(), releaseSteps: env.releaseSteps(), slimTasks: env.slimTasks(), streamOffsets: env.streamOffsets()}
	defer func() { tokensChanged = a.tokensChanged }()
	spec, ok := commands[t]
	if !ok {
		if t&IgnoreUnknownFlag != 0 {
			f.logger.Warn("ignoring unknown optional command; upgrade this node", "type", byte(t), "index", l.Index)
			return &Result{}, t, false
		}
		panic(fmt.Sprintf("fsm: unknown command type %d at index %d; upgrade this node", t, l.Index))
	}

	var idemKey string
	if env.Meta.IdempotencyKey != "" {
		idemKey = env.Meta.ActorID + "\x00" + env.Meta.IdempotencyKey
		rec, err := store.GetIdempotency(tx, idemKey)
		if err != nil {
			panic(fmt.Sprintf("fsm: read idempotency record: %v", err))
		}
		if rec != nil {
			return replay(t, env.Meta.RequestHash, rec), t, false
		}
	}

	value, err := spec.apply(a, env.Body)
	if err != nil && errorKind(err) == "" {
		panic(fmt.Sprintf("fsm: apply command %d at index %d: %v", t, l.Index, err))
	}
	if idemKey != "" {
		rec := &store.IdempotencyRecord{Command: byte(t), Index: l.Index, Recorded: env.Meta.Timestamp, RequestHash: env.Meta.RequestHash}
		if err != nil {
			rec.Error, rec.ErrorKind = err.Error(), errorKind(err)
		} else if value != nil {
			raw, mErr := json.Marshal(value)
			if mErr != nil {
				panic(fmt.Sprintf("fsm: encode result for idempotency: %v", mErr))
			}
			rec.Result = raw
		}
		if pErr := store.PutIdempotency(tx, idemKey, rec); pErr != nil {
			panic(fmt.Sprintf("fsm: write idempotency record: %v", pErr))
		}
	}
	return &Result{Value: value, Err: err}, t, false
}

// replay answers a repeated idempotency key with the recorded outcome. A
// key reused for a different request (its hash differs) or a different
// kind of command is refused, and nothing is written. Records or commands
// without a hash (written before requests were hashed) compare by command
// type only.
func replay(t CommandType, requestHash string, rec *store.IdempotencyRecord) *Result {
	if rec.RequestHash != "" && requestHash != "" && rec.RequestHash != requestHash {
		return &Result{Err: fmt.Errorf("%w: this key was used for another request (method, path, query or body differ)", ErrIdempotencyMismatch)}
	}
	if CommandType(rec.Command) != t {
		return &Result{Err: fmt.Errorf("%w: idempotency key was already used for a different request", ErrConflict)}
	}
	if rec.ErrorKind != "" {
		return &Result{Err: errorFromKind(rec.ErrorKind, rec.Error), Replayed: true}
	}
	var v any
	if len(rec.Result) > 0 {
		v = rec.Result
	}
	return &Result{Value: v, Replayed: true}
}

// ResultAs returns a result's value as *T, decoding it when the result is a
// replay of an earlier request (stored as JSON).
func ResultAs[T any](r *Result) (*T, error) {
	switch v := r.Value.(type) {
	case *T:
		return v, nil
	case json.RawMessage:
		out := new(T)
		if err := json.Unmarshal(v, out); err != nil {
			return nil, fmt.Errorf("decode replayed result: %w", err)
		}
		return out, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("fsm: result is %T, not %T", r.Value, new(T))
}

// legacyDetails spells every value of details as a string, the way
// binaries before typed details stored them (numbers in decimal, flags as
// true/false), for entries of envelope versions 1 and 2.
func legacyDetails(details model.EventDetails) model.EventDetails {
	out := make(model.EventDetails, len(details))
	for k, v := range details {
		switch v := v.(type) {
		case string:
			out[k] = v
		case int:
			out[k] = strconv.Itoa(v)
		case int64:
			out[k] = strconv.FormatInt(v, 10)
		case uint64:
			out[k] = strconv.FormatUint(v, 10)
		case bool:
			out[k] = strconv.FormatBool(v)
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}
