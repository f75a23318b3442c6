package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/goferhq/gofer/agent/extcall"
	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/fsm/fsmtest"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// fakeLeaderCluster is a Cluster for a single leader over a real state
// machine: Apply encodes the command and applies it as raft would, unless
// fate says otherwise. Methods the tests do not need panic through the nil
// embedded interface.
type fakeLeaderCluster struct {
	Cluster
	f *fsm.FSM

	mu    sync.Mutex
	index uint64
	// fate decides what Apply does with a command (nil: apply it).
	fate func(t fsm.CommandType) applyFate
}

type applyFate int

const (
	applyIt applyFate = iota
	// applyThenTimeOut commits the entry but answers ErrOutcomeUnknown,
	// as a timed-out apply whose entry commits later.
	applyThenTimeOut
	// refuseIt answers the FSM's refusal without applying.
	refuseIt
)

func (c *fakeLeaderCluster) NodeID() string                         { return "leader" }
func (c *fakeLeaderCluster) FSM() *fsm.FSM                          { return c.f }
func (c *fakeLeaderCluster) IsLeader() bool                         { return true }
func (c *fakeLeaderCluster) Ready() bool                            { return true }
func (c *fakeLeaderCluster) Leader() (string, string)               { return "leader", "" }
func (c *fakeLeaderCluster) LastContact() time.Duration             { return 0 }
func (c *fakeLeaderCluster) State() string                          { return "Leader" }
func (c *fakeLeaderCluster) ClusterSecret() string                  { return "" }
func (c *fakeLeaderCluster) VerifyLeader(ctx context.Context) error { return nil }
func (c *fakeLeaderCluster) LastLogIndex() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.index
}

func (c *fakeLeaderCluster) Apply(ctx context.Context, t fsm.CommandType, meta fsm.Meta, body any) (*fsm.Result, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fate := applyIt
	if c.fate != nil {
		fate = c.fate(t)
	}
	if fate == refuseIt {
		return &fsm.Result{Err: fmt.Errorf("%w: refused by the test", fsm.ErrConflict)}, c.index, nil
	}
	data, err := fsm.Encode(t, meta, body)
	if err != nil {
		return nil, 0, err
	}
	c.index++
	res, _ := c.f.Apply(&raft.Log{Index: c.index, Term: 1, Type: raft.LogCommand, Data: data}).(*fsm.Result)
	if res == nil {
		res = &fsm.Result{}
	}
	if fate == applyThenTimeOut {
		return nil, 0, fmt.Errorf("%w: context deadline exceeded", ErrOutcomeUnknown)
	}
	return res, c.index, nil
}

// recordingCalls is ExtensionCalls that records the calls; unsubscribes
// wait for release when it is set.
type recordingCalls struct {
	mu      sync.Mutex
	calls   []string
	release chan struct{}
	started chan struct{}
	// eventErr is what ExternalEvent answers.
	eventErr error
}

func (r *recordingCalls) record(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *recordingCalls) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recordingCalls) Subscribe(ctx context.Context, id string, sub extcall.Subscription) error {
	r.record("subscribe " + sub.SubscriptionID)
	return nil
}

func (r *recordingCalls) Unsubscribe(ctx context.Context, id string, ref extcall.SubscriptionRef) error {
	if r.started != nil {
		r.started <- struct{}{}
	}
	if r.release != nil {
		<-r.release
	}
	r.record("unsubscribe " + ref.SubscriptionID)
	return nil
}

func (r *recordingCalls) Debug(ctx context.Context, id string) (string, error) { return "", nil }

func (r *recordingCalls) ExternalEvent(ctx context.Context, id string, ev extcall.Event) error {
	r.record("event " + id)
	return r.eventErr
}

// leaderAPI serves a dev-mode API over a fakeLeaderCluster with a pipeline
// "subs" and an extension "ext" installed.
func leaderAPI(t *testing.T, calls ExtensionCalls) (*Server, *fakeLeaderCluster, *client.Client) {
	t.Helper()
	s, c, _, cl := leaderAPIWith(t, Options{Dev: true, ExtensionCalls: calls})
	return s, c, cl
}

// leaderAPIWith is leaderAPI with opts; without Dev, cl holds the
// bootstrap (admin) token. It answers the server's URL too.
func leaderAPIWith(t *testing.T, opts Options) (*Server, *fakeLeaderCluster, string, *client.Client) {
	t.Helper()
	c := &fakeLeaderCluster{f: fsmtest.New(t)}
	// What a new cluster's first leader applies: the built-in roles and
	// the default namespace.
	now := time.Now().UnixMilli()
	if res, _, err := c.Apply(context.Background(), fsm.CmdClusterInit, fsm.Meta{Actor: "system", Timestamp: now}, fsm.ClusterInit{
		ClusterID: "test", Roles: model.BuiltinRoles(now), Namespace: model.Namespace{ID: model.DefaultNamespace, Name: "Default"},
	}); err != nil || res.Err != nil {
		t.Fatalf("cluster init: %v %v", err, res)
	}
	s := New(opts, c, hclog.NewNullLogger())
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	cl, err := client.New([]string{srv.URL}, client.WithRetryFor(0)) // a 503 is the answer to check
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if !opts.Dev {
		tok, err := cl.BootstrapToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cl, err = client.New([]string{srv.URL}, client.WithRetryFor(0), client.WithToken(tok.Secret)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.RegisterConfig(ctx, sdk.NewPipeline("subs", "subs").Tasks(sdk.NewTask("tsk", "img")).Config()); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.InstallExtension(ctx, client.InstallRequest{ID: "ext", Image: "example/ext:1"}); err != nil {
		t.Fatal(err)
	}
	return s, c, srv.URL, cl
}

// An external event the extension refuses keeps the extension's own 4xx
// and message (GitHub's extension answers 401 for a bad signature); a
// subscribe or debug call answered 401 is Gofer's credentials refused
// (502). A call that got no answer names only the extension, never its
// address.
func TestExtensionCallErrors(t *testing.T) {
	s := New(Options{Dev: true}, &fakeLeaderCluster{f: fsmtest.New(t)}, hclog.NewNullLogger())
	bad := &extcall.Error{ExtensionID: "github", Status: http.StatusUnauthorized, Message: "signature mismatch"}
	for _, tc := range []struct {
		kind   callKind
		err    error
		status int
		want   string
	}{
		{callEvent, bad, http.StatusUnauthorized, `extension "github" refused the event: signature mismatch`},
		{callEvent, &extcall.Error{ExtensionID: "github", Status: 400, Message: "no such event"}, 400, "no such event"},
		{callEvent, &extcall.Error{ExtensionID: "github", Status: 500, Message: "boom"}, 502, "answered 500: boom"},
		{callSubscribe, bad, http.StatusBadGateway, "refused Gofer's credentials"},
		{callDebug, bad, http.StatusBadGateway, "refused Gofer's credentials"},
		{callSubscribe, &extcall.Error{ExtensionID: "github", Status: 400, Message: "bad cron"}, 400, "refused the subscription: bad cron"},
	} {
		ae := classify(s.extensionCallError("github", tc.err, tc.kind))
		if ae.status != tc.status || !strings.Contains(ae.message, tc.want) {
			t.Errorf("kind %d, %v: %d %q, want %d with %q", tc.kind, tc.err, ae.status, ae.message, tc.status, tc.want)
		}
	}
	unreachable := &extcall.UnreachableError{ExtensionID: "github", Err: errors.New(`Post "http://172.17.0.5:8082/api/external-event": dial tcp 172.17.0.5:8082: connect: connection refused`)}
	for _, kind := range []callKind{callEvent, callSubscribe, callDebug} {
		ae := classify(s.extensionCallError("github", unreachable, kind))
		if ae.status != http.StatusServiceUnavailable || !strings.Contains(ae.message, `"github"`) ||
			strings.Contains(ae.message, "172.17") || strings.Contains(ae.message, "8082") || strings.Contains(ae.message, "dial") {
			t.Errorf("kind %d unreachable: %d %q", kind, ae.status, ae.message)
		}
	}
}
