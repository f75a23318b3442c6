package api

import (
	"context"
	"encoding/json"
	"github.com/labstack/echo/v4"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/fsm"
)

// relayLeader is a leader that takes relayed audit entries and keeps them.
type relayLeader struct {
	mu      sync.Mutex
	entries []fsm.AuditEntry
	secrets []string
}

func newRelayLeader(t *testing.T) *fakeLeader {
	t.Helper()
	l := &relayLeader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != auditRelayPath {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var body auditRelayBody
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		l.mu.Lock()
		l.entries = append(l.entries, body.Entries...)
		l.secrets = append(l.secrets, r.Header.Get(HeaderClusterSecret))
		l.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	relayLeaders.Store(srv.URL, l)
	return &fakeLeader{srv: srv}
}

var relayLeaders sync.Map // URL → *relayLeader

func relayed(f *fakeLeader) ([]fsm.AuditEntry, []string) {
	v, _ := relayLeaders.Load(f.srv.URL)
	l := v.(*relayLeader)
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fsm.AuditEntry(nil), l.entries...), append([]string(nil), l.secrets...)
}

// drainAudit flushes what the node's auditor queued (its goroutine is not
// running in these tests).
func drainAudit(s *Server) {
	var batch []fsm.AuditEntry
	for {
		select {
		case e := <-s.audit.queue:
			batch = append(batch, e)
			continue
		default:
		}
		break
	}
	s.audit.flush(batch, 5*time.Second)
}

// A follower's own refusal of a write (a token no node could know,
// refused before forwarding) is audited: the follower passes the entry to
// the leader with the cluster secret.
func TestFollowerRefusalIsPassedToTheLeader(t *testing.T) {
	leader := newRelayLeader(t)
	c := newFakeFollower(t, leader)
	s, url := followerAPI(t, c, Options{})
	got := send(t, http.MethodPost, url+"/api/namespaces", map[string]string{"Authorization": "Bearer not-a-gofer-token"}, `{"id":"x"}`)
	if got.code != http.StatusUnauthorized {
		t.Fatalf("bad token on the follower: %d %s; want 401", got.code, got.body)
	}
	drainAudit(s)
	entries, secrets := relayed(leader)
	if len(entries) != 1 {
		t.Fatalf("the leader got %d entries: %+v; want the follower's 401", len(entries), entries)
	}
	e := entries[0]
	if e.Status != http.StatusUnauthorized || e.Outcome != AuditRefused || e.Route != "/api/namespaces" || e.Method != http.MethodPost || e.RequestID == "" {
		t.Errorf("relayed entry %+v; want POST /api/namespaces 401 refused with a request id", e)
	}
	if secrets[0] != c.ClusterSecret() {
		t.Errorf("relayed with cluster secret %q; want the node's", secrets[0])
	}
	if n := s.audit.droppedTotal.Load(); n != 0 {
		t.Errorf("%d entries dropped", n)
	}
}

// Entries still queued on a leader that stepped down before its batch
// was applied go to the new leader, suppressed count included.
func TestSteppedDownLeaderPassesItsQueue(t *testing.T) {
	leader := newRelayLeader(t)
	c := newFakeFollower(t, leader)
	s, _ := followerAPI(t, c, Options{})
	c.leading.Store(false) // it led when it queued them; it does no more
	s.audit.queue <- fsm.AuditEntry{At: 1, TokenID: "t1", Actor: "alice", Method: "POST", Route: "/api/namespaces", Status: 201, Outcome: AuditOK, RequestID: "r1"}
	s.audit.suppressed.Add(7)
	drainAudit(s)
	entries, _ := relayed(leader)
	if len(entries) != 2 || entries[0].RequestID != "r1" || entries[1].Outcome != AuditSuppressed || entries[1].Suppressed != 7 {
		t.Fatalf("the new leader got %+v; want r1 and a suppressed count of 7", entries)
	}
}

// With no leader to take them, relayed entries are dropped and counted,
// after the forwarding hold: the request path never waits for this.
func TestAuditRelayWithoutLeaderCountsDropped(t *testing.T) {
	c := newFakeFollower(t, nil)
	s, _ := followerAPI(t, c, Options{ForwardHold: 50 * time.Millisecond})
	s.audit.queue <- fsm.AuditEntry{Method: "POST", Route: "/api/namespaces", Status: 401, Outcome: AuditRefused}
	s.audit.suppressed.Add(3)
	drainAudit(s)
	if n := s.audit.droppedTotal.Load(); n != 4 {
		t.Fatalf("%d entries counted as dropped; want 4 (one entry, three suppressed)", n)
	}
	c.setSecret("")
	s.audit.queue <- fsm.AuditEntry{Method: "POST", Route: "/api/namespaces", Status: 401, Outcome: AuditRefused}
	drainAudit(s)
	if n := s.audit.droppedTotal.Load(); n != 5 {
		t.Fatalf("%d entries counted as dropped; want 5 (no cluster secret to relay with)", n)
	}
}

// The leader's side: relayed entries join its queue, a suppressed count
// its own; a bad batch is refused whole, naming the field.
func TestReceiveAuditQueuesEntries(t *testing.T) {
	c := newFakeFollower(t, nil)
	c.leading.Store(true)
	s, url := followerAPI(t, c, Options{})
	h := map[string]string{HeaderClusterSecret: c.ClusterSecret()}
	got := send(t, http.MethodPost, url+auditRelayPath, h, `{"entries":[{"method":"POST","route":"/x","status":401,"outcome":"refused","request_id":"r9"},{"method":"*","route":"*","outcome":"suppressed","suppressed":5}]}`)
	if got.code != http.StatusNoContent {
		t.Fatalf("relay: %d %s; want 204", got.code, got.body)
	}
	select {
	case e := <-s.audit.queue:
		if e.RequestID != "r9" {
			t.Errorf("queued %+v; want r9", e)
		}
	default:
		t.Fatal("the relayed entry was not queued")
	}
	if n := s.audit.suppressed.Load(); n != 5 {
		t.Errorf("suppressed %d; want 5", n)
	}
	select {
	case e := <-s.audit.queue:
		t.Errorf("the relay's own answer was audited: %+v", e)
	default:
	}
	got = send(t, http.MethodPost, url+auditRelayPath, h, `{"entries":[{"method":"POST","route":"/x","status":200,"outcome":"maybe"}]}`)
	if got.code != http.StatusBadRequest || !strings.Contains(got.body, "entries[0].outcome") {
		t.Errorf("bad outcome: %d %s; want 400 naming entries[0].outcome", got.code, got.body)
	}
	got = send(t, http.MethodPost, url+auditRelayPath, nil, `{"entries":[{"method":"POST","route":"/x","status":200,"outcome":"ok"}]}`)
	if got.code != http.StatusUnauthorized {
		t.Errorf("relay without the cluster secret: %d; want 401", got.code)
	}
}

// External events a follower relays pass the audit sampler, as anonymous
// refusals do (they are webhooks: anyone may send them): a flood of them
// makes at most a burst of entries, the rest a suppressed count.
func TestRelayedExternalEventsAreSampled(t *testing.T) {
	c := newFakeFollower(t, nil)
	c.leading.Store(true)
	s, url := followerAPI(t, c, Options{})
	h := map[string]string{HeaderClusterSecret: c.ClusterSecret(), headerEventHeaders: "e30=", "Content-Type": "application/octet-stream"}
	const sent = auditAnonBurst + 50
	for range sent {
		if got := send(t, http.MethodPost, url+internalEventPath+"ghost", h, "event"); got.code != http.StatusNotFound {
			t.Fatalf("relayed event for no extension: %d %s; want 404", got.code, got.body)
		}
	}
	queued := len(s.audit.queue)
	if queued > auditAnonBurst+5 || queued == 0 {
		t.Fatalf("%d of %d relayed events queued for the audit log; want at most the sampler's burst (%d)", queued, sent, auditAnonBurst)
	}
	if n := s.audit.suppressed.Load(); int(n)+queued != sent {
		t.Errorf("%d queued + %d suppressed; want %d in all", queued, n, sent)
	}
}

// steppingDown is a leader that loses leadership while its audit batch
// waits for raft: the apply fails with ErrNotLeader (nothing written).
type steppingDown struct{ *fakeFollower }

func (c steppingDown) Apply(context.Context, fsm.CommandType, fsm.Meta, any) (*fsm.Result, uint64, error) {
	c.leading.Store(false)
	return nil, 0, ErrNotLeader
}

// A batch whose apply fails because leadership went is not lost: it goes
// to the new leader.
func TestAuditBatchOfALeaderLostMidApplyIsPassedOn(t *testing.T) {
	leader := newRelayLeader(t)
	c := steppingDown{newFakeFollower(t, leader)}
	c.leading.Store(true)
	s := New(Options{}, c, hclog.NewNullLogger())
	s.audit.flush([]fsm.AuditEntry{{Method: "DELETE", Route: "/api/namespaces/:ns", Status: 204, Outcome: AuditOK, RequestID: "r7"}}, 5*time.Second)
	entries, _ := relayed(leader)
	if len(entries) != 1 || entries[0].RequestID != "r7" {
		t.Fatalf("the new leader got %+v; want r7", entries)
	}
	if n := s.audit.droppedTotal.Load(); n != 0 {
		t.Errorf("%d entries dropped", n)
	}
}

// A relay forwarded to the leader passes the reverse proxy, which flushes
// the writer from a timer; echo panics on a writer that cannot flush, and
// the panic (in a timer goroutine) ended the whole process.
func TestRelayResponseCanFlush(t *testing.T) {
	w := &relayResponse{header: http.Header{}}
	echo.NewResponse(w, echo.New()).Flush()
	var _ http.Flusher = w
}
