package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/goferhq/gofer/store/model"
)

// Token catch-up on followers. A token created through the leader is
// answered to its creator once the leader applied it; a follower learns of
// the entry with the next replication round, so for a moment it would
// answer "unknown token" to a token that exists. Before a follower says so,
// it asks the leader how far it has applied (a read index: the leader's
// health answer), waits until it has applied as much itself, and looks
// again. Everything the leader acknowledged before the question is then
// visible here.
//
// Unknown tokens can be sprayed at a node, so the waiting is bounded: one
// question to the leader at a time, shared by every request that arrived
// before it was sent (the rest share the next one); at most
// maxCatchUpWaiters requests wait; no request waits longer than
// catchUpWait. A request that finds every waiting slot taken is told so
// (catchUpBusy) and answered 503 with Retry-After at once: it is neither
// refused as unknown (the token may be one just created) nor forwarded
// (the leader would then absorb the flood).

const (
	catchUpWait       = time.Second
	maxCatchUpWaiters = 256
)

type catchUp struct {
	cluster Cluster
	client  *http.Client
	slots   chan struct{}

	mu      sync.Mutex
	running bool
	next    *indexCall // collects the waiters of the next question
}

// indexCall is one question to the leader.
type indexCall struct {
	done  chan struct{}
	index uint64
	err   error
}

func newCatchUp(cluster Cluster, transport http.RoundTripper) *catchUp {
	return &catchUp{
		cluster: cluster,
		client:  &http.Client{Transport: transport, Timeout: catchUpWait},
		slots:   make(chan struct{}, maxCatchUpWaiters),
	}
}

// catchUpResult is what wait achieved.
type catchUpResult int

const (
	// caughtUp: this node has applied everything the leader had applied
	// when asked (or is the leader): a token it does not know now, no node
	// knows.
	caughtUp catchUpResult = iota
	// catchUpBusy: every waiting slot was taken; nothing was asked.
	catchUpBusy
	// catchUpFailed: the leader could not be asked (none known, no answer
	// in time, not the leader any more) or this node did not apply up to
	// its index in time: nothing is proved.
	catchUpFailed
)

// wait brings this node up to the leader's applied index as of now,
// within catchUpWait.
func (u *catchUp) wait(ctx context.Context) catchUpResult { return u.waitFor(ctx, catchUpWait) }

// waitFor is wait within budget: a request that itself asked to wait for
// an index (?min_index, up to its ?wait) may wait as long for this node to
// catch up, so a node restarting or rebuilding its state still knows the
// token once it has applied what the leader had.
func (u *catchUp) waitFor(ctx context.Context, budget time.Duration) catchUpResult {
	if u == nil {
		return catchUpFailed
	}
	if u.cluster.IsLeader() {
		return caughtUp
	}
	select {
	case u.slots <- struct{}{}:
		defer func() { <-u.slots }()
	default:
		return catchUpBusy
	}
	ctx, cancel := context.WithTimeout(ctx, max(budget, catchUpWait))
	defer cancel()
	call := u.join()
	select {
	case <-call.done:
	case <-ctx.Done():
		return catchUpFailed
	}
	if call.err != nil {
		return catchUpFailed
	}
	if u.cluster.FSM().WaitForIndex(ctx, call.index) != nil {
		return catchUpFailed
	}
	return caughtUp
}

// join returns a question to the leader that has not been sent yet, and
// sends it unless one is in flight (then it goes when that one returns).
func (u *catchUp) join() *indexCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.next == nil {
		u.next = &indexCall{done: make(chan struct{})}
	}
	call := u.next
	if !u.running {
		u.startLocked()
	}
	return call
}

func (u *catchUp) startLocked() {
	call := u.next
	u.next, u.running = nil, true
	go func() {
		call.index, call.err = u.leaderIndex()
		close(call.done)
		u.mu.Lock()
		defer u.mu.Unlock()
		u.running = false
		if u.next != nil {
			u.startLocked()
		}
	}()
}

// leaderIndex asks the leader for its applied index.
func (u *catchUp) leaderIndex() (uint64, error) {
	_, leaderURL := u.cluster.Leader()
	if leaderURL == "" {
		return 0, ErrNoLeader
	}
	resp, err := u.client.Get(strings.TrimRight(leaderURL, "/") + "/api/system/health")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var h model.Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return 0, fmt.Errorf("leader health: %w", err)
	}
	if h.State != "Leader" {
		return 0, fmt.Errorf("%w: %s is %s", ErrNotLeader, leaderURL, h.State)
	}
	return h.AppliedIndex, nil
}
