package api

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
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

// Naming a secret in a subscription's settings needs the right to read
// it, at create and at enable, whether or not the cluster calls its
// extensions.
func TestSubscriptionSecretMarkersNeedTheRightToReadThem(t *testing.T) {
	for _, withCalls := range []bool{false, true} {
		opts := Options{}
		if withCalls {
			opts.ExtensionCalls = &recordingCalls{}
		}
		_, _, url, admin := leaderAPIWith(t, opts)
		ctx := context.Background()
		if _, err := admin.CreateRole(ctx, "subscriber", "", []model.Permission{{
			Resources: []string{"namespaces:default", "pipelines:subs", "subscriptions"},
			Actions:   []model.Action{model.ActionRead, model.ActionWrite},
		}}); err != nil {
			t.Fatal(err)
		}
		tok, err := admin.CreateToken(ctx, "sub", []string{"subscriber"}, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		user, err := client.New([]string{url}, client.WithRetryFor(0), client.WithToken(tok.Secret))
		if err != nil {
			t.Fatal(err)
		}
		for _, marker := range []string{"pipeline_secret{{tok}}", "global_secret{{tok}}"} {
			_, err := user.Subscribe(ctx, "subs", "ext", "sub1", map[string]string{"token": marker})
			if status(err) != 403 || !strings.Contains(err.Error(), "settings.token") {
				t.Fatalf("calls %v: a subscriber naming %s: %v, want 403", withCalls, marker, err)
			}
		}
		if _, err := user.Subscribe(ctx, "subs", "ext", "plain", map[string]string{"every": "5m"}); err != nil {
			t.Fatalf("calls %v: a subscription without markers: %v", withCalls, err)
		}
		if withCalls {
			continue // the enable below needs the secret to exist: tested without calls
		}
		// An admin subscribed with a marker and disabled it: the
		// subscriber may not enable it.
		if _, err := admin.Subscribe(ctx, "subs", "ext", "marked", map[string]string{"token": "global_secret{{tok}}"}); err != nil {
			t.Fatalf("calls %v: admin: %v", withCalls, err)
		}
		if _, err := admin.SetSubscriptionStatus(ctx, "subs", "ext", "marked", "disabled"); err != nil {
			t.Fatal(err)
		}
		_, err = user.SetSubscriptionStatus(ctx, "subs", "ext", "marked", "active")
		if status(err) != 403 || !strings.Contains(err.Error(), "settings.token") {
			t.Fatalf("calls %v: a subscriber enabling a subscription that names a global secret: %v, want 403", withCalls, err)
		}
		if _, err := admin.SetSubscriptionStatus(ctx, "subs", "ext", "marked", "active"); err != nil {
			t.Fatalf("calls %v: admin enable: %v", withCalls, err)
		}
	}
}

// The extension's own list leaves out a subscription whose secret markers
// do not resolve (it must never subscribe with a marker's text), and does
// not come up short for it: the SDK stops at a short page. Anyone else
// sees it as stored.
func TestOwnSubscriptionListLeavesOutUnresolvableMarkers(t *testing.T) {
	kr, err := seal.NewKeyring("api-test-encryption-key-9876543210ab")
	if err != nil {
		t.Fatal(err)
	}
	_, _, url, admin := leaderAPIWith(t, Options{Secrets: kr})
	ctx := context.Background()
	inst, err := admin.InstallExtension(ctx, client.InstallRequest{ID: "own", Image: "example/own:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutSecret(ctx, client.SecretScope{Pipeline: "subs"}, "tok", "hunter2", nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutSecret(ctx, client.SecretScope{Pipeline: "subs"}, "gone", "soon", nil, false); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []struct{ id, token string }{{"aaa", "pipeline_secret{{tok}}"}, {"bbb", "pipeline_secret{{gone}}"}, {"ccc", "y"}} {
		if _, err := admin.Subscribe(ctx, "subs", "own", sub.id, map[string]string{"token": sub.token}); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.DeleteSecret(ctx, client.SecretScope{Pipeline: "subs"}, "gone"); err != nil {
		t.Fatal(err)
	}
	ext, err := client.New([]string{url}, client.WithRetryFor(0), client.WithToken(inst.Token.Secret))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(cl *client.Client, p client.Page) string {
		t.Helper()
		subs, err := cl.ListExtensionSubscriptions(ctx, "own", p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range subs {
			if strings.Contains(s.Settings["token"], "{{") && cl == ext {
				t.Fatalf("the extension got the marker of %s: %v", s.SubscriptionID, s.Settings)
			}
			if s.SubscriptionID == "aaa" && cl == ext && s.Settings["token"] != "hunter2" {
				t.Fatalf("the extension got %v for aaa, want its secret resolved", s.Settings)
			}
			out = append(out, s.SubscriptionID)
		}
		return strings.Join(out, ",")
	}
	if got := ids(ext, client.Page{}); got != "aaa,ccc" {
		t.Fatalf("the extension's list: %s, want aaa,ccc", got)
	}
	if got := ids(ext, client.Page{Limit: 2}); got != "aaa,ccc" {
		t.Fatalf("the extension's first page of 2: %s, want aaa,ccc", got)
	}
	if got := ids(admin, client.Page{}); got != "aaa,bbb,ccc" {
		t.Fatalf("the admin's list: %s, want aaa,bbb,ccc", got)
	}
}

// status is a client error's HTTP status (0 for none).
func status(err error) int {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Status
	}
	return 0
}
