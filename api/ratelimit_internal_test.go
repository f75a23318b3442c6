package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// A key gets its burst, then waits 1/rate per request; other keys are
// not affected, and an idle key's bucket refills.
func TestRateLimiterBurstAndRefill(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newRateLimiter(2, 3, clk.now, 100)
	for i := range 3 {
		if ok, _ := l.allow("token:a"); !ok {
			t.Fatalf("request %d within the burst refused", i+1)
		}
	}
	ok, wait := l.allow("token:a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request: ok=%v wait=%s; want refused, 500ms", ok, wait)
	}
	// A refused request takes nothing: the wait stays the same.
	if _, again := l.allow("token:a"); again != wait {
		t.Fatalf("a refused request moved the wait from %s to %s", wait, again)
	}
	if ok, _ := l.allow("token:b"); !ok {
		t.Fatal("another token was limited by the first one's requests")
	}
	clk.t = clk.t.Add(500 * time.Millisecond)
	if ok, _ := l.allow("token:a"); !ok {
		t.Fatal("refused after the announced wait")
	}
	clk.t = clk.t.Add(10 * time.Second)
	for i := range 3 {
		if ok, _ := l.allow("token:a"); !ok {
			t.Fatalf("after idling, request %d of a new burst refused", i+1)
		}
	}
}

// The map of buckets stays bounded: idle buckets go first, then the least
// recently used, and a bucket in use is kept.
func TestRateLimiterBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newRateLimiter(1, 2, clk.now, 4)
	for i := range 4 {
		l.allow(fmt.Sprintf("ip:10.0.0.%d", i))
	}
	clk.t = clk.t.Add(3 * time.Second) // longer than a refill (2 s)
	l.allow("token:busy")
	l.allow("token:busy")
	if n := l.size(); n != 1 {
		t.Fatalf("after the map filled with idle buckets: %d buckets, want 1 (the idle ones evicted)", n)
	}
	for i := range 10 {
		clk.t = clk.t.Add(time.Millisecond)
		l.allow(fmt.Sprintf("ip:10.0.1.%d", i))
		if n := l.size(); n > 4 {
			t.Fatalf("%d buckets, over the bound 4", n)
		}
	}
	// None was idle for a refill: the least recently used went each time,
	// the busy token's first (it gains at most one burst that way).
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, kept := l.buckets["token:busy"]; kept {
		t.Error("the least recently used bucket was kept")
	}
	for i := 6; i < 10; i++ {
		if _, kept := l.buckets[fmt.Sprintf("ip:10.0.1.%d", i)]; !kept {
			t.Errorf("recently used bucket ip:10.0.1.%d was evicted", i)
		}
	}
}

// A 429 says when to come back in whole seconds, at least one.
func TestRateLimitedAnswer(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want int
	}{{time.Millisecond, 1}, {time.Second, 1}, {1500 * time.Millisecond, 2}} {
		e := rateLimited(tc.wait, "token x", "api.rate_limit")
		if e.status != 429 || e.code != CodeRateLimited || e.retryAfter != tc.want {
			t.Errorf("wait %s: %d %s Retry-After %d; want 429 %s %d", tc.wait, e.status, e.code, e.retryAfter, CodeRateLimited, tc.want)
		}
	}
	if newRateLimiter(0, 10, time.Now, 10) != nil {
		t.Error("rate 0 made a limiter; want none (no limit)")
	}
}

// Every route has a body limit: the default, a smaller one, or none only
// where the handler bounds the body itself (objects: max_object_bytes) or
// the body is a backup (bounded by the body rate, body_min_rate).
func TestEveryRouteHasABodyLimit(t *testing.T) {
	unbounded := map[string]bool{
		"POST /api/namespaces/:ns/pipelines/:pipeline/objects/:key":           true,
		"POST /api/namespaces/:ns/pipelines/:pipeline/runs/:run/objects/:key": true,
		"POST /api/cluster/snapshot":                                          true,
	}
	const def = 512 << 10
	for _, r := range (&Server{}).routeTable() {
		name := r.method + " " + r.path
		switch {
		case r.bodyLimit < 0 && !unbounded[name]:
			t.Errorf("%s has no body limit", name)
		case r.bodyLimit > 0 && r.bodyLimit > def && r.path != internalEventPath+":extension":
			t.Errorf("%s allows %d bytes, more than the default %d", name, r.bodyLimit, def)
		}
	}
}

// IPv6 callers share a bucket per /64 (a host usually holds a whole /64);
// IPv4 callers have one each.
func TestAddressKeyGroupsIPv6By64(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"10.0.0.1", "10.0.0.2", false},
		{"::ffff:10.0.0.1", "10.0.0.1", false},
	} {
		if got := addressKey(c.a) == addressKey(c.b); got != c.same {
			t.Errorf("%s and %s share a bucket: %t (%q, %q), want %t", c.a, c.b, got, addressKey(c.a), addressKey(c.b), c.same)
		}
	}
}

// Eviction follows use, not creation: a key used again moves to the
// recently used end and outlives keys created after it; idle buckets at
// the old end all go at once, and the map and the use list stay in step.
func TestRateLimiterEvictsByLastUse(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newRateLimiter(1, 2, clk.now, 3)
	for _, k := range []string{"a", "b", "c"} {
		clk.t = clk.t.Add(time.Millisecond)
		l.allow(k)
	}
	clk.t = clk.t.Add(time.Millisecond)
	l.allow("a") // a is now the most recently used
	clk.t = clk.t.Add(time.Millisecond)
	l.allow("d") // full, none idle: b (least recently used) goes
	l.mu.Lock()
	_, hasA := l.buckets["a"]
	_, hasB := l.buckets["b"]
	l.mu.Unlock()
	if !hasA || hasB {
		t.Fatalf("after reusing a and adding d: a kept=%v b kept=%v; want a kept, b evicted", hasA, hasB)
	}
	clk.t = clk.t.Add(time.Second) // c's refill (2 s) not yet over
	l.allow("a")
	clk.t = clk.t.Add(1500 * time.Millisecond) // c and d idle for a refill now, a not
	l.allow("e")
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) != 2 || l.lru.Len() != 2 {
		t.Fatalf("%d buckets, %d in the use list; want 2 and 2 (c and d idle, evicted together)", len(l.buckets), l.lru.Len())
	}
	for _, k := range []string{"a", "e"} {
		if _, ok := l.buckets[k]; !ok {
			t.Errorf("bucket %s evicted", k)
		}
	}
}

// BenchmarkRateLimiterFullTable: a new key on every request with the table
// at its production bound and no bucket idle, the worst case for eviction
// (it used to scan every bucket under the mutex).
func BenchmarkRateLimiterFullTable(b *testing.B) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := newRateLimiter(DefaultAnonRateLimit, DefaultAnonRateBurst, clk.now, maxLimiters)
	for i := range maxLimiters {
		l.allow(fmt.Sprintf("ip:%d", i))
	}
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("new:%d", i)
	}
	for i := 0; b.Loop(); i++ {
		l.allow(keys[i%len(keys)] + strconv.Itoa(i))
	}
}

// The client address of a request a member forwarded is the one the
// member appended to X-Forwarded-For; anyone else's header is ignored.
func TestClientAddressTrustsOnlyMembers(t *testing.T) {
	c := newFakeFollower(t, nil)
	if err := c.f.DB().Update(func(tx *bbolt.Tx) error {
		return store.PutServer(tx, &model.Server{ID: "n2", RaftAddr: "10.1.1.2:7000", APIAddr: "http://10.1.1.2:8080"})
	}); err != nil {
		t.Fatal(err)
	}
	s := New(Options{}, c, hclog.NewNullLogger())
	for _, tc := range []struct {
		name, peer, from string
		xff              []string
		want             string
	}{
		{"client direct", "203.0.113.5:4000", "", nil, "203.0.113.5"},
		{"client forging both headers", "203.0.113.5:4000", "n2", []string{"198.51.100.1"}, "203.0.113.5"},
		{"member forwarding", "10.1.1.2:5000", "n2", []string{"198.51.100.7"}, "198.51.100.7"},
		{"member forwarding a client's own header", "10.1.1.2:5000", "n2", []string{"1.2.3.4, 198.51.100.7"}, "198.51.100.7"},
		{"member without the header", "10.1.1.2:5000", "n2", nil, "10.1.1.2"},
		{"member, garbage", "10.1.1.2:5000", "n2", []string{"nonsense"}, "10.1.1.2"},
		{"member not saying it forwarded", "10.1.1.2:5000", "", []string{"198.51.100.7"}, "10.1.1.2"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/api/namespaces", nil)
		r.RemoteAddr = tc.peer
		if tc.from != "" {
			r.Header.Set(HeaderForwardedFrom, tc.from)
		}
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := s.clientAddress(r); got != tc.want {
			t.Errorf("%s: %q; want %q", tc.name, got, tc.want)
		}
	}
}
