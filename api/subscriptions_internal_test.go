package api

import (
	"context"
	"strings"
	"testing"

	"github.com/goferhq/gofer/fsm"
)

// A create whose commit has no known outcome (a timed-out apply, the
// entry committed after all) leaves the extension subscribed; only the
// FSM's definite refusal makes the leader unsubscribe.
func TestFailedSubscriptionCommitUnsubscribesOnlyOnRefusal(t *testing.T) {
	calls := &recordingCalls{}
	s, c, cl := leaderAPI(t, calls)
	ctx := context.Background()

	c.fate = func(t fsm.CommandType) applyFate {
		if t == fsm.CmdSubscriptionCreate {
			return applyThenTimeOut
		}
		return applyIt
	}
	if _, err := cl.Subscribe(ctx, "subs", "ext", "late", nil); err == nil {
		t.Fatal("a create whose outcome is unknown succeeded")
	}
	s.subLocks.unsubscribing.Wait()
	if got := strings.Join(calls.list(), ", "); got != "subscribe late" {
		t.Fatalf("calls after an unknown outcome: %s, want only the subscribe", got)
	}
	if _, err := cl.GetSubscription(ctx, "subs", "ext", "late"); err != nil {
		t.Fatalf("the entry committed after all: %v", err)
	}

	c.fate = func(t fsm.CommandType) applyFate {
		if t == fsm.CmdSubscriptionCreate {
			return refuseIt
		}
		return applyIt
	}
	if _, err := cl.Subscribe(ctx, "subs", "ext", "refused", nil); err == nil {
		t.Fatal("a refused create succeeded")
	}
	s.subLocks.unsubscribing.Wait()
	if got := strings.Join(calls.list(), ", "); got != "subscribe late, subscribe refused, unsubscribe refused" {
		t.Fatalf("calls after a refusal: %s", got)
	}
}

// The unsubscribe that follows a refused commit holds the subscription's
// lock until it ends, so a subscribe that follows cannot overtake it.
func TestUnsubscribeAfterRefusedCommitHoldsTheLock(t *testing.T) {
	calls := &recordingCalls{release: make(chan struct{}), started: make(chan struct{}, 1)}
	s, c, cl := leaderAPI(t, calls)
	ctx := context.Background()
	c.fate = func(t fsm.CommandType) applyFate {
		if t == fsm.CmdSubscriptionCreate {
			return refuseIt
		}
		return applyIt
	}
	for _, enable := range []bool{false, true} {
		calls.mu.Lock()
		calls.calls = nil
		calls.mu.Unlock()
		id := "sub"
		if enable {
			// An enable refused at commit: the same hand-over.
			id = "dis"
			c.fate = nil
			if _, err := cl.Subscribe(ctx, "subs", "ext", id, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.SetSubscriptionStatus(ctx, "subs", "ext", id, "disabled"); err != nil {
				t.Fatal(err)
			}
			<-calls.started
			calls.release <- struct{}{}
			s.subLocks.unsubscribing.Wait()
			c.fate = func(t fsm.CommandType) applyFate {
				if t == fsm.CmdSubscriptionSetStatus {
					return refuseIt
				}
				return applyIt
			}
			if _, err := cl.SetSubscriptionStatus(ctx, "subs", "ext", id, "active"); err == nil {
				t.Fatal("a refused enable succeeded")
			}
		} else if _, err := cl.Subscribe(ctx, "subs", "ext", id, nil); err == nil {
			t.Fatal("a refused create succeeded")
		}
		<-calls.started // the unsubscribe runs, and waits
		key := subscriptionKey(fsm.SubscriptionRef{NamespaceID: "default", PipelineID: "subs", ExtensionID: "ext", SubscriptionID: id})
		if !s.subLocks.held(key) {
			t.Fatalf("%s: the subscription's lock is free while its unsubscribe is still running", id)
		}
		calls.release <- struct{}{}
		s.subLocks.unsubscribing.Wait()
		if s.subLocks.held(key) {
			t.Fatalf("%s: the lock is still held after the unsubscribe", id)
		}
	}
}

// held reports whether key's lock is taken (tests).
func (l *subscriptionLocks) held(key string) bool {
	l.mu.Lock()
	m, ok := l.locks[key]
	l.mu.Unlock()
	if !ok {
		return false
	}
	if m.TryLock() {
		m.Unlock()
		return false
	}
	return true
}
