package fsm

import "sync"

// Notifier wakes everyone waiting for state to change: blocking reads
// (?min_index), event streams and log followers. It is a close-and-replace
// broadcast channel, so a notification never blocks the apply loop.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewNotifier returns a ready Notifier.
func NewNotifier() *Notifier { return &Notifier{ch: make(chan struct{})} }

// Changed returns a channel that is closed at the next change. Take it
// before checking state, then wait on it, to never miss a change.
func (n *Notifier) Changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

// Notify wakes all current waiters.
func (n *Notifier) Notify() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}
