package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/fsm/fsmtest"
)

// fakeFollower is a Cluster for a follower whose leader is fakeLeader:
// real state (an empty bbolt file), the rest of raft faked. Methods the
// tests do not need panic through the nil embedded interface.
type fakeFollower struct {
	Cluster
	f      *fsm.FSM
	leader *fakeLeader
	mu     sync.Mutex
	secret string
	// silent is how long since this node heard from the leader (ns).
	silent atomic.Int64
	// leading makes it the leader, one whose quorum does not answer
	// (VerifyLeader waits until its context ends).
	leading atomic.Bool
}

func (c *fakeFollower) NodeID() string { return "follower" }
func (c *fakeFollower) FSM() *fsm.FSM  { return c.f }
func (c *fakeFollower) IsLeader() bool { return c.leading.Load() }
func (c *fakeFollower) Ready() bool    { return c.leading.Load() }
func (c *fakeFollower) ClusterSecret() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.secret
}

func (c *fakeFollower) setSecret(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secret = s
}

func (c *fakeFollower) LastContact() time.Duration { return time.Duration(c.silent.Load()) }
func (c *fakeFollower) State() string              { return "Follower" }
func (c *fakeFollower) VerifyLeader(ctx context.Context) error {
	if !c.leading.Load() {
		return ErrNotLeader
	}
	<-ctx.Done()
	return ctx.Err()
}
func (c *fakeFollower) Leader() (string, string) {
	if c.leader == nil {
		return "", ""
	}
	return "leader", c.leader.srv.URL
}

// fakeLeader answers the follower's questions: its health (the catch-up
// read index) and forwarded requests, counting the latter.
type fakeLeader struct {
	srv *httptest.Server
	// healthFails makes the health answer a 500: the leader cannot be
	// asked for its index.
	healthFails atomic.Bool
	healths     atomic.Int64
	forwarded   atomic.Int64
	// handle answers forwarded requests (default: 201).
	handle func(w http.ResponseWriter, r *http.Request)
}

func newFakeLeader(t *testing.T) *fakeLeader {
	t.Helper()
	l := &fakeLeader{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/system/health" {
			l.healths.Add(1)
			if l.healthFails.Load() {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, `{"state":"Leader","applied_index":0}`)
			return
		}
		l.forwarded.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		if l.handle != nil {
			l.handle(w, r)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func newFakeFollower(t *testing.T, leader *fakeLeader) *fakeFollower {
	t.Helper()
	f := fsmtest.New(t)
	return &fakeFollower{f: f, leader: leader, secret: strings.Repeat("s", 32)}
}

// followerAPI serves the API of a fake follower.
func followerAPI(t *testing.T, c *fakeFollower, opts Options) (*Server, string) {
	t.Helper()
	s := New(opts, c, hclog.NewNullLogger())
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// forgedSecret is shaped like a Gofer token; no node knows it.
var forgedSecret = TokenPrefix + strings.Repeat("A", 43)

type answer struct {
	code       int
	retryAfter string
	body       string
	took       time.Duration
}

func send(t *testing.T, method, url string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("gofer-api-version", "v0")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v after %s", method, url, err, time.Since(start))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(b), time.Since(start)}
}

// fillCatchUp takes every catch-up waiting slot until the test ends.
func fillCatchUp(t *testing.T, u *catchUp) {
	t.Helper()
	for i := 0; i < cap(u.slots); i++ {
		u.slots <- struct{}{}
	}
	t.Cleanup(func() {
		for i := 0; i < cap(u.slots); i++ {
			<-u.slots
		}
	})
}

// The catch-up says what it achieved: caught up, busy (nothing asked) or
// failed (the leader could not be asked, or this node did not reach its
// index in time).
func TestCatchUpResults(t *testing.T) {
	leader := newFakeLeader(t)
	c := newFakeFollower(t, leader)
	u := newCatchUp(c, http.DefaultTransport)
	ctx := context.Background()

	if got := u.wait(ctx); got != caughtUp {
		t.Fatalf("leader at index 0, this node at 0: %v, want caughtUp", got)
	}

	leader.healthFails.Store(true)
	if got := u.wait(ctx); got != catchUpFailed {
		t.Fatalf("leader health fails: %v, want catchUpFailed", got)
	}
	leader.healthFails.Store(false)

	asked := leader.healths.Load()
	fillCatchUp(t, u)
	start := time.Now()
	if got := u.wait(ctx); got != catchUpBusy {
		t.Fatalf("every slot taken: %v, want catchUpBusy", got)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("a busy catch-up took %s; it must answer at once", d)
	}
	if n := leader.healths.Load(); n != asked {
		t.Errorf("a busy catch-up asked the leader %d times", n-asked)
	}

	noLeader := newCatchUp(newFakeFollower(t, nil), http.DefaultTransport)
	if got := noLeader.wait(ctx); got != catchUpFailed {
		t.Fatalf("no leader: %v, want catchUpFailed", got)
	}
}

// A write with a well-formed token nobody knows, sent to a follower: 401
// from the follower once it caught up; 503 with Retry-After, not a
// forward, when every catch-up slot is taken; forwarded (the leader
// decides) only when the leader could not be asked.
func TestPreAuthUnknownTokenOnFollower(t *testing.T) {
	leader := newFakeLeader(t)
	c := newFakeFollower(t, leader)
	s, url := followerAPI(t, c, Options{})
	auth := map[string]string{"Authorization": "Bearer " + forgedSecret}
	write := func() answer { return send(t, http.MethodPost, url+"/api/namespaces", auth, `{"id":"nope"}`) }

	if a := write(); a.code != http.StatusUnauthorized {
		t.Fatalf("caught up, token unknown: %d %s; want 401", a.code, a.body)
	}
	if n := leader.forwarded.Load(); n != 0 {
		t.Fatalf("a provably unknown token was forwarded %d times", n)
	}

	t.Run("busy", func(t *testing.T) {
		fillCatchUp(t, s.catchUp)
		a := write()
		if a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
			t.Fatalf("catch-up slots all taken: %d (Retry-After %q) %s; want 503 with Retry-After", a.code, a.retryAfter, a.body)
		}
		if n := leader.forwarded.Load(); n != 0 {
			t.Fatalf("with the catch-up busy, an unknown token was forwarded to the leader (%d times)", n)
		}
		// A read served here says the same, rather than waiting.
		a = send(t, http.MethodGet, url+"/api/namespaces?min_index=999999999&wait=60s", auth, "")
		if a.code != http.StatusServiceUnavailable || a.took > 5*time.Second {
			t.Fatalf("read with a min_index wait, catch-up busy: %d after %s %s; want 503 at once", a.code, a.took, a.body)
		}
	})

	t.Run("leader cannot be asked", func(t *testing.T) {
		leader.healthFails.Store(true)
		defer leader.healthFails.Store(false)
		if a := write(); a.code != http.StatusCreated {
			t.Fatalf("leader health fails: %d %s; want the leader's answer (201)", a.code, a.body)
		}
		if n := leader.forwarded.Load(); n != 1 {
			t.Fatalf("forwarded %d times, want 1", n)
		}
	})
}

// A read served locally authenticates before it waits: a made-up token
// with ?min_index=<far ahead>&wait=60s or ?consistent=true gets its 401
// at once instead of holding the connection.
func TestUnknownTokenDoesNotWait(t *testing.T) {
	leader := newFakeLeader(t)
	c := newFakeFollower(t, leader)
	_, url := followerAPI(t, c, Options{})
	auth := map[string]string{"Authorization": "Bearer " + forgedSecret}
	a := send(t, http.MethodGet, url+"/api/namespaces?min_index=999999999&wait=3s", auth, "")
	if a.code != http.StatusUnauthorized || a.took > 2*time.Second {
		t.Fatalf("min_index wait with a made-up token: %d after %s; want 401 at once", a.code, a.took)
	}
	// On the leader, ?consistent=true confirms leadership with a quorum
	// (up to 5 s) only for a known token.
	c.leading.Store(true)
	a = send(t, http.MethodGet, url+"/api/namespaces?consistent=true", auth, "")
	if a.code != http.StatusUnauthorized || a.took > 2*time.Second {
		t.Fatalf("consistent read with a made-up token on the leader: %d after %s; want 401 at once", a.code, a.took)
	}
}

// The cluster secret is checked on the node that gets the request, before
// its body is read or forwarded.
func TestPreAuthClusterSecret(t *testing.T) {
	leader := newFakeLeader(t)
	c := newFakeFollower(t, leader)
	_, url := followerAPI(t, c, Options{})
	join := func(secret string) answer {
		return send(t, http.MethodPost, url+"/api/cluster/members", map[string]string{HeaderClusterSecret: secret},
			`{"id":"n4","raft_addr":"127.0.0.1:1","api_addr":"http://127.0.0.1:2"}`)
	}
	if a := join("x"); a.code != http.StatusUnauthorized {
		t.Fatalf("a wrong cluster secret: %d %s; want 401", a.code, a.body)
	}
	if n := leader.forwarded.Load(); n != 0 {
		t.Fatalf("a wrong cluster secret was forwarded to the leader")
	}
	if a := join(c.ClusterSecret()); a.code != http.StatusCreated || leader.forwarded.Load() != 1 {
		t.Fatalf("the right cluster secret: %d %s (forwarded %d); want it forwarded", a.code, a.body, leader.forwarded.Load())
	}
	c.setSecret("")
	if a := join("anything"); a.code != http.StatusUnauthorized || leader.forwarded.Load() != 1 {
		t.Fatalf("no cluster secret configured here: %d %s; want 401, not forwarded", a.code, a.body)
	}
}

// At most MaxForwards requests are forwarded at once; more get 503 with
// Retry-After at once rather than another outgoing connection.
func TestForwardCap(t *testing.T) {
	leader := newFakeLeader(t)
	leader.healthFails.Store(true) // the leader decides on the token
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	arrived := make(chan struct{}, 1)
	leader.handle = func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.WriteHeader(http.StatusCreated)
	}
	c := newFakeFollower(t, leader)
	_, url := followerAPI(t, c, Options{MaxForwards: 1})
	auth := map[string]string{"Authorization": "Bearer " + forgedSecret}
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url+"/api/namespaces", strings.NewReader(`{"id":"one"}`))
		req.Header.Set("gofer-api-version", "v0")
		req.Header.Set("Authorization", auth["Authorization"])
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-arrived
	a := send(t, http.MethodPost, url+"/api/namespaces", auth, `{"id":"two"}`)
	if a.code != http.StatusServiceUnavailable || a.retryAfter == "" || a.took > 2*time.Second {
		t.Fatalf("a second forward over a cap of 1: %d (Retry-After %q) after %s %s; want 503 with Retry-After at once", a.code, a.retryAfter, a.took, a.body)
	}
	if n := leader.forwarded.Load(); n != 1 {
		t.Fatalf("the leader got %d forwarded requests, want 1", n)
	}
	releaseOnce.Do(func() { close(release) })
	if code := <-first; code != http.StatusCreated {
		t.Fatalf("the first forward: %d, want 201", code)
	}
}

// A leader that is still the leader and heard from may take its own apply
// timeout to answer, however long the request waited for it: the hold
// bounds only the wait for a leader.
func TestForwardWaitsForALiveSlowLeader(t *testing.T) {
	leader := newFakeLeader(t)
	leader.healthFails.Store(true)
	leader.handle = func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second) // an fsync stall on the leader
		w.WriteHeader(http.StatusCreated)
	}
	c := newFakeFollower(t, leader)
	_, url := followerAPI(t, c, Options{ForwardHold: 300 * time.Millisecond, LeaderApplyTimeout: 5 * time.Second})
	a := send(t, http.MethodPost, url+"/api/namespaces", map[string]string{"Authorization": "Bearer " + forgedSecret}, `{"id":"slow"}`)
	if a.code != http.StatusCreated {
		t.Fatalf("a slow but live leader: %d %s; want its answer", a.code, a.body)
	}
}

// A leader this node stops hearing from (frozen, crashed, cut off) is
// given up on within about the silence bound, long before the answer
// budget and before any election: 503 with Retry-After.
func TestForwardGivesUpOnASilentLeader(t *testing.T) {
	leader := newFakeLeader(t)
	leader.healthFails.Store(true)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	leader.handle = func(w http.ResponseWriter, r *http.Request) {
		select { // frozen
		case <-stop:
		case <-r.Context().Done():
		}
	}
	c := newFakeFollower(t, leader)
	_, url := followerAPI(t, c, Options{LeaderSilence: 300 * time.Millisecond})
	go func() {
		// The leader stops sending heartbeats now; raft's last contact
		// grows from here.
		start := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				c.silent.Store(int64(time.Since(start)))
			}
		}
	}()
	a := send(t, http.MethodPost, url+"/api/namespaces", map[string]string{"Authorization": "Bearer " + forgedSecret}, `{"id":"frozen"}`)
	if a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
		t.Fatalf("a silent leader: %d (Retry-After %q) %s; want 503 with Retry-After", a.code, a.retryAfter, a.body)
	}
	if a.took > 3*time.Second {
		t.Errorf("a silent leader held the request %s; want about the 300 ms silence bound", a.took)
	}
	t.Logf("gave up after %s", a.took.Round(time.Millisecond))
}
