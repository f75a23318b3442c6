package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/fsm/fsmtest"
	"github.com/goferhq/gofer/internal/metrics"
	"github.com/goferhq/gofer/store/model"
)

// authedAPI serves an API with auth on over a fresh state; it answers the
// URL and the bootstrap (admin) token's secret.
func authedAPI(t *testing.T, opts Options) (url, secret string) {
	t.Helper()
	c := &fakeLeaderCluster{f: fsmtest.New(t)}
	now := time.Now().UnixMilli()
	if res, _, err := c.Apply(context.Background(), fsm.CmdClusterInit, fsm.Meta{Actor: "system", Timestamp: now}, fsm.ClusterInit{
		ClusterID: "test", Roles: model.BuiltinRoles(now), Namespace: model.Namespace{ID: model.DefaultNamespace, Name: "Default"},
	}); err != nil || res.Err != nil {
		t.Fatalf("cluster init: %v %v", err, res)
	}
	srv := httptest.NewServer(New(opts, c, hclog.NewNullLogger()).Handler())
	t.Cleanup(srv.Close)
	cl, err := client.New([]string{srv.URL}, client.WithRetryFor(0))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cl.BootstrapToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, tok.Secret
}

// scrape GETs url+"/metrics" with token (none when empty) and answers the
// status and body.
func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsSeriesAfterRequests: requests are counted under their route
// template (never the raw path) with method and status, latency is a
// histogram, and the commands the state machine applied are timed by name.
func TestMetricsSeriesAfterRequests(t *testing.T) {
	m := metrics.New()
	_, c, url, cl := leaderAPIWith(t, Options{Dev: true, Metrics: m})
	c.f.SetObserver(m.FSM())
	ctx := context.Background()
	if _, err := cl.CreateNamespace(ctx, "metrics-ns", "Metrics", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.GetNamespace(ctx, "metrics-ns"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.GetNamespace(ctx, "no-such-ns"); err == nil {
		t.Fatal("a missing namespace was found")
	}
	if code, _ := sendRawNoVersion(t, url+"/api/not/a/route/x123"); code != http.StatusNotFound {
		t.Fatalf("unknown path answered %d", code)
	}
	code, body := scrape(t, url, "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	for _, want := range []string{
		`gofer_api_requests_total{code="201",method="POST",route="/api/namespaces"} 1`,
		`gofer_api_requests_total{code="200",method="GET",route="/api/namespaces/:ns"} 1`,
		`gofer_api_requests_total{code="404",method="GET",route="/api/namespaces/:ns"} 1`,
		`gofer_api_requests_total{code="404",method="GET",route="other"} 1`,
		`gofer_api_request_duration_seconds_bucket{method="POST",route="/api/namespaces",le="+Inf"} 1`,
		`gofer_fsm_apply_duration_seconds_count{command="namespace_create"} 1`,
		`gofer_fsm_batch_size_count`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	for _, raw := range []string{"metrics-ns", "no-such-ns", "x123"} {
		if strings.Contains(body, raw) {
			t.Errorf("a raw path segment %q is a label value: the route label must be the template", raw)
		}
	}
}

func sendRawNoVersion(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set(HeaderAPIVersion, APIVersion)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsAccess: token (default) needs a valid token of any role, open
// needs none, listener keeps /metrics off the API.
func TestMetricsAccess(t *testing.T) {
	for _, tc := range []struct {
		mode               string
		noToken, withToken int
	}{
		{"", http.StatusUnauthorized, http.StatusOK},
		{MetricsAccessToken, http.StatusUnauthorized, http.StatusOK},
		{MetricsAccessOpen, http.StatusOK, http.StatusOK},
		{MetricsAccessListener, http.StatusNotFound, http.StatusNotFound},
	} {
		t.Run("access="+tc.mode, func(t *testing.T) {
			url, secret := authedAPI(t, Options{Metrics: metrics.New(), MetricsAccess: tc.mode})
			if code, body := scrape(t, url, ""); code != tc.noToken {
				t.Errorf("without a token: %d %s, want %d", code, body, tc.noToken)
			}
			code, body := scrape(t, url, secret)
			if code != tc.withToken {
				t.Errorf("with a token: %d %s, want %d", code, body, tc.withToken)
			}
			if code == http.StatusOK && !strings.Contains(body, "gofer_api_requests_total") {
				t.Errorf("scrape lacks the request series:\n%s", body)
			}
			if code, body := scrape(t, url, "gofer_not-a-valid-token"); tc.noToken == http.StatusUnauthorized && code != http.StatusUnauthorized {
				t.Errorf("with an invalid token: %d %s, want 401", code, body)
			}
		})
	}
}

// TestTriggerLateness: interval and cron keys carry their tick's time, so
// the lateness of the run's creation is observed; other keys are not.
func TestTriggerLateness(t *testing.T) {
	m := metrics.New()
	s := &Server{opts: Options{Metrics: m}}
	now := time.Unix(1_700_000_100, 0)
	s.triggerLateness("cron:default/p/nightly:1700000000", now)   // 100 s late
	s.triggerLateness("interval:default/p/every:1700000090", now) // 10 s late
	s.triggerLateness("github:3f9a", now)
	s.triggerLateness("cron:default/p/bad:soon", now)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`gofer_trigger_lateness_seconds_sum{trigger="cron"} 100`,
		`gofer_trigger_lateness_seconds_count{trigger="cron"} 1`,
		`gofer_trigger_lateness_seconds_sum{trigger="interval"} 10`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(body, `trigger="github"`) {
		t.Error("a github key, which carries no scheduled time, was observed")
	}
}
