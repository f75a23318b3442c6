package fsm

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Direct applies commands straight to an FSM, one at a time and with
// increasing indexes, as raft would on a single node. `gofer run local`
// uses it to run the executor with no cluster, and tests use it to drive
// the FSM exactly as the leader does.
type Direct struct {
	FSM *FSM
	// Actor stamps every command.
	Actor string
	// Now stamps every command's time (default time.Now).
	Now func() time.Time

	mu    sync.Mutex
	index uint64
}

// Apply encodes and applies one command; the error is only an encoding
// failure (the command's own outcome is in the result).
func (d *Direct) Apply(_ context.Context, t CommandType, body any) (*Result, error) {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	data, err := Encode(t, Meta{Actor: d.Actor, Timestamp: now().UnixMilli()}, body)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.index++
	res, _ := d.FSM.Apply(&raft.Log{Index: d.index, Term: 1, Type: raft.LogCommand, Data: data}).(*Result)
	if res == nil {
		res = &Result{}
	}
	return res, nil
}
