package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/agent/extcall"
)

// A forwarded request that calls a running extension on the leader is
// given the time that call may take: the follower must not give up on a
// leader still within its bounds.
func TestLeaderWorkCoversExtensionCalls(t *testing.T) {
	need := map[string]time.Duration{
		"POST " + internalEventPath + ":extension": extcall.DefaultEventTimeout,
		// A queued unsubscribe may hold the lock, then the subscribe.
		"POST /api/namespaces/:ns/pipelines/:pipeline/subscriptions":                            unsubscribeTimeout + extcall.DefaultCallTimeout,
		"PATCH /api/namespaces/:ns/pipelines/:pipeline/subscriptions/:extension/:subscription":  unsubscribeTimeout + extcall.DefaultCallTimeout,
		"DELETE /api/namespaces/:ns/pipelines/:pipeline/subscriptions/:extension/:subscription": unsubscribeTimeout,
		"GET /api/extensions/:extension/debug":                                                  extcall.DefaultCallTimeout,
	}
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	for _, r := range (&Server{}).routeTable() {
		key := r.method + " " + r.path
		d, ok := need[key]
		if !ok {
			continue
		}
		delete(need, key)
		if got := leaderWork(r)(c); got < d {
			t.Errorf("%s: leader work %s, the extension call may take %s", key, got, d)
		}
	}
	for key := range need {
		t.Errorf("no route %s", key)
	}
}
