package api

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/fsm/fsmtest"
)

// joinRecorder is a fresh node: no state yet, and it records the joins
// it is asked to make.
type joinRecorder struct {
	*fakeLeaderCluster
	joined []string
}

func (j *joinRecorder) HasState() bool { return false }
func (j *joinRecorder) JoinCluster(_ context.Context, url, _ string) error {
	j.joined = append(j.joined, url)
	return nil
}

// A node running with TLS never sends the caller's Authorization header
// to a cluster in clear: a join of an http:// address is refused.
func TestJoinFromATLSNodeNeedsHTTPS(t *testing.T) {
	peers := &tls.Config{MinVersion: tls.VersionTLS12} // every node has one, TLS or not
	// A node without TLS joins an http:// cluster as before.
	plain := &joinRecorder{fakeLeaderCluster: &fakeLeaderCluster{f: fsmtest.New(t)}}
	plainSrv := httptest.NewServer(New(Options{PeerTLS: peers}, plain, hclog.NewNullLogger()).Handler())
	defer plainSrv.Close()
	if status := joinThrough(t, plainSrv.URL, "http://10.0.0.1:8080"); status != http.StatusOK || len(plain.joined) != 1 {
		t.Fatalf("join of an http:// cluster from a plain node: %d, joined %v; want 200", status, plain.joined)
	}

	c := &joinRecorder{fakeLeaderCluster: &fakeLeaderCluster{f: fsmtest.New(t)}}
	s := New(Options{TLS: &tls.Config{MinVersion: tls.VersionTLS12}, PeerTLS: peers}, c, hclog.NewNullLogger())
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	join := func(address string) int { return joinThrough(t, srv.URL, address) }
	if status := join("http://10.0.0.1:8080"); status != http.StatusBadRequest || len(c.joined) != 0 {
		t.Fatalf("join of an http:// cluster from a TLS node: %d, joined %v; want 400 and no join", status, c.joined)
	}
	if status := join("https://10.0.0.1:8080"); status != http.StatusOK || len(c.joined) != 1 {
		t.Fatalf("join of an https:// cluster: %d, joined %v; want 200", status, c.joined)
	}
}

// joinThrough asks the node at base to join address, with a token.
func joinThrough(t *testing.T, base, address string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/cluster/join", strings.NewReader(`{"address": "`+address+`"}`))
	req.Header.Set("gofer-api-version", "v0")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
