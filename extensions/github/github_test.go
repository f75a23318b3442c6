package github

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/goferhq/gofer/sdk/go/extension"
)

const secret = "s3cret-webhook"

type start struct {
	ns, pipeline, key string
	vars              map[string]string
}

type fakeGofer struct {
	mu     sync.Mutex
	starts []start
	fail   error
}

func (f *fakeGofer) StartRun(_ context.Context, ns, pipeline string, vars map[string]string, key string) (*extension.RunInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.starts = append(f.starts, start{ns, pipeline, key, vars})
	return &extension.RunInfo{NamespaceID: ns, PipelineID: pipeline, RunID: int64(len(f.starts))}, nil
}

func sign(body []byte, key string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func newExt(t *testing.T, settings map[string]string) (*Extension, *fakeGofer) {
	t.Helper()
	g := &fakeGofer{}
	e := New(Options{Setting: func(k string) string { return settings[k] }, Gofer: g})
	if err := e.Init(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	subscribe := func(pipeline, id string, params map[string]string) {
		if err := e.Subscribe(context.Background(), extension.Subscription{NamespaceID: "default", PipelineID: pipeline, ID: id, Params: params}); err != nil {
			t.Fatal(err)
		}
	}
	subscribe("build", "pushes", map[string]string{ParamRepository: "acme/widget", ParamEvents: "push"})
	subscribe("review", "prs", map[string]string{ParamRepository: "acme/widget", ParamEventFilter: "pull_request/opened,synchronize"})
	subscribe("ship", "releases", map[string]string{ParamRepository: "acme/widget", ParamEvents: "release/published; push"})
	subscribe("other", "pushes", map[string]string{ParamRepository: "acme/other", ParamEvents: "push"})
	return e, g
}

const pushBody = `{"ref":"refs/heads/main","repository":{"full_name":"acme/widget"},
 "head_commit":{"id":"abc123","author":{"name":"Ada","email":"ada@example.com","username":"ada"},
 "committer":{"name":"Bob","email":"bob@example.com","username":"bob"}}}`

// pushFor is a push delivery's body for delivery id: distinct deliveries
// have distinct bodies (and so signatures).
func pushFor(id string) string {
	return strings.Replace(pushBody, `"abc123"`, `"abc123-`+id+`"`, 1)
}

func delivery(body, sig, id, event string) extension.Event {
	h := map[string]string{HeaderDelivery: id, HeaderEvent: event}
	if sig != "" {
		h[HeaderSignature] = sig
	}
	return extension.Event{Headers: h, Body: []byte(body)}
}

func status(err error) int {
	var e *extension.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// TestGithubSignature: a correctly signed push starts a run of each
// matching pipeline with the seed's variables and the delivery's key; an
// unsigned, wrongly signed or tampered delivery, or one over 25 MiB, is
// refused and starts nothing.
func TestGithubSignature(t *testing.T) {
	e, g := newExt(t, map[string]string{SettingAppWebhookSecret: secret})
	ctx := context.Background()

	refusals := []struct {
		name string
		ev   extension.Event
		want int
	}{
		{"unsigned", delivery(pushBody, "", "d-0", "push"), http.StatusUnauthorized},
		{"wrong secret", delivery(pushBody, sign([]byte(pushBody), "guess"), "d-0", "push"), http.StatusUnauthorized},
		{"tampered", delivery(strings.Replace(pushBody, "main", "evil", 1), sign([]byte(pushBody), secret), "d-0", "push"), http.StatusUnauthorized},
		{"not hex", delivery(pushBody, "sha256=zz", "d-0", "push"), http.StatusUnauthorized},
		{"sha1 only", delivery(pushBody, "sha1=0123456789abcdef0123456789abcdef01234567", "d-0", "push"), http.StatusUnauthorized},
		{"no delivery id", delivery(pushBody, sign([]byte(pushBody), secret), "", "push"), http.StatusBadRequest},
	}
	big := make([]byte, MaxBody+1)
	refusals = append(refusals, struct {
		name string
		ev   extension.Event
		want int
	}{"oversized", delivery(string(big), sign(big, secret), "d-big", "push"), http.StatusRequestEntityTooLarge})
	for _, r := range refusals {
		if err := e.ExternalEvent(ctx, r.ev); status(err) != r.want {
			t.Errorf("%s: %v, want status %d", r.name, err, r.want)
		}
	}
	if len(g.starts) != 0 {
		t.Fatalf("refused deliveries started %d runs", len(g.starts))
	}

	if err := e.ExternalEvent(ctx, delivery(pushBody, sign([]byte(pushBody), secret), "d-1", "push")); err != nil {
		t.Fatal(err)
	}
	if len(g.starts) != 2 {
		t.Fatalf("push started %d runs, want 2 (build and ship): %+v", len(g.starts), g.starts)
	}
	pipes := map[string]bool{}
	for _, s := range g.starts {
		pipes[s.pipeline] = true
		if s.key != "github:d-1" || s.vars["GOFER_EXTENSION_GITHUB_REF"] != "refs/heads/main" || s.vars["GOFER_EXTENSION_GITHUB_HEAD_COMMIT_ID"] != "abc123" ||
			s.vars["GOFER_EXTENSION_GITHUB_EVENT"] != "push" || s.vars["GOFER_EXTENSION_GITHUB_REPOSITORY"] != "acme/widget" ||
			s.vars["GOFER_EXTENSION_GITHUB_HEAD_COMMIT_AUTHOR_EMAIL"] != "ada@example.com" || s.vars["GOFER_EXTENSION_GITHUB_HEAD_COMMIT_COMMITTER_USERNAME"] != "bob" {
			t.Errorf("start %+v", s)
		}
	}
	if !pipes["build"] || !pipes["ship"] {
		t.Fatalf("pipelines %v", pipes)
	}
	// Header names in another case work too (Gofer forwards them as sent).
	lowerBody := pushFor("d-lower")
	lower := extension.Event{Headers: map[string]string{"x-hub-signature-256": sign([]byte(lowerBody), secret), "x-github-delivery": "d-lower", "x-github-event": "push"}, Body: []byte(lowerBody)}
	if err := e.ExternalEvent(ctx, lower); err != nil || len(g.starts) != 4 {
		t.Fatalf("lower-case headers: %v, %d starts", err, len(g.starts))
	}
}

// TestGithubRedelivery: a delivery id seen before starts nothing more
// (the LRU); one the LRU has forgotten reaches Gofer with the same key,
// which Gofer dedups. A failed start is not remembered, so a redelivery
// retries it.
func TestGithubRedelivery(t *testing.T) {
	e, g := newExt(t, map[string]string{SettingWebhookSecret: secret})
	e.seen, e.signatures = newLRU(2), newLRU(2)
	ctx := context.Background()
	send := func(id string) error {
		body := pushFor(id) // GitHub's deliveries differ; a redelivery is the same body
		return e.ExternalEvent(ctx, delivery(body, sign([]byte(body), secret), id, "push"))
	}
	for _, id := range []string{"d-1", "d-1", "d-1"} {
		if err := send(id); err != nil {
			t.Fatal(err)
		}
	}
	if len(g.starts) != 2 {
		t.Fatalf("a delivery sent 3 times started %d runs, want 2 (one per pipeline)", len(g.starts))
	}
	send("d-2")
	send("d-3") // d-1 falls out of the LRU
	send("d-1")
	if len(g.starts) != 8 || g.starts[7].key != "github:d-1" {
		t.Fatalf("forgotten delivery: %d starts", len(g.starts))
	}
	g.fail = &extension.APIError{Status: 503}
	if err := send("d-4"); status(err) != http.StatusBadGateway {
		t.Fatalf("failed start: %v", err)
	}
	g.fail = nil
	if err := send("d-4"); err != nil || len(g.starts) != 10 {
		t.Fatalf("redelivery after a failure: %v, %d starts", err, len(g.starts))
	}
}

// TestGithubReplay: a signed body captured and sent again under a fresh
// delivery id (which Gofer's key dedup would not catch) starts nothing:
// the verified signature is remembered with the delivery id.
func TestGithubReplay(t *testing.T) {
	e, g := newExt(t, map[string]string{SettingAppWebhookSecret: secret})
	ctx := context.Background()
	sig := sign([]byte(pushBody), secret)
	if err := e.ExternalEvent(ctx, delivery(pushBody, sig, "d-1", "push")); err != nil || len(g.starts) != 2 {
		t.Fatalf("first delivery: %v, %d starts", err, len(g.starts))
	}
	// Upper-case hex is the same signature.
	for _, s := range []string{sig, "sha256=" + strings.ToUpper(strings.TrimPrefix(sig, "sha256="))} {
		if err := e.ExternalEvent(ctx, delivery(pushBody, s, "d-replayed", "push")); err != nil {
			t.Fatalf("replay: %v", err)
		}
	}
	if len(g.starts) != 2 {
		t.Fatalf("a replayed body started %d more runs: %+v", len(g.starts)-2, g.starts[2:])
	}
	// A failed delivery is not remembered: its redelivery (same id and
	// body) still retries.
	other := pushFor("d-2")
	g.fail = &extension.APIError{Status: http.StatusServiceUnavailable}
	if err := e.ExternalEvent(ctx, delivery(other, sign([]byte(other), secret), "d-2", "push")); status(err) != http.StatusBadGateway {
		t.Fatalf("failed start: %v", err)
	}
	g.fail = nil
	if err := e.ExternalEvent(ctx, delivery(other, sign([]byte(other), secret), "d-2", "push")); err != nil || len(g.starts) != 4 {
		t.Fatalf("redelivery after a failure: %v, %d starts", err, len(g.starts))
	}
}

// TestGithubRefusedTargetIsDone: a target Gofer refuses for good (its
// pipeline deleted: 404, its subscription disabled: 409) does not fail
// the delivery; the other targets start, the answer is a success and the
// delivery is remembered. A retryable failure still answers 502.
func TestGithubRefusedTargetIsDone(t *testing.T) {
	e, _ := newExt(t, map[string]string{SettingAppWebhookSecret: secret})
	g := &partialGofer{fail: map[string]error{
		"build": &extension.APIError{Status: http.StatusNotFound, Message: "no such pipeline"},
		"ship":  &extension.APIError{Status: http.StatusConflict, Message: "subscription is disabled"},
	}}
	e.opts.Gofer = g
	ctx := context.Background()
	send := func(id string) error {
		body := pushFor(id)
		return e.ExternalEvent(ctx, delivery(body, sign([]byte(body), secret), id, "push"))
	}
	if err := send("d-1"); err != nil {
		t.Fatalf("refused targets failed the delivery: %v", err)
	}
	if err := send("d-1"); err != nil || g.calls != 2 {
		t.Fatalf("the delivery was not remembered: %v, %d calls", err, g.calls)
	}
	g.fail["build"] = &extension.APIError{Status: http.StatusTooManyRequests}
	if err := send("d-2"); status(err) != http.StatusBadGateway {
		t.Fatalf("a retryable failure: %v, want 502", err)
	}
}

// partialGofer fails the starts of some pipelines.
type partialGofer struct {
	fail  map[string]error
	calls int
}

func (p *partialGofer) StartRun(_ context.Context, ns, pipeline string, _ map[string]string, _ string) (*extension.RunInfo, error) {
	p.calls++
	if err := p.fail[pipeline]; err != nil {
		return nil, err
	}
	return &extension.RunInfo{NamespaceID: ns, PipelineID: pipeline, RunID: 1}, nil
}

// TestGithubEventsAndActions: pull_request and release start runs with
// their variables only for the subscribed actions; other events none.
func TestGithubEventsAndActions(t *testing.T) {
	e, g := newExt(t, map[string]string{SettingAppWebhookSecret: secret})
	ctx := context.Background()
	pr := `{"action":"opened","repository":{"full_name":"ACME/widget"},"pull_request":{"head":{"ref":"feature","sha":"f00"},"user":{"login":"ada"}}}`
	closed := strings.Replace(pr, "opened", "closed", 1)
	rel := `{"action":"published","repository":{"full_name":"acme/widget"},"release":{"tag_name":"v1.2.0","target_commitish":"main","author":{"login":"bob"},"created_at":"2026-01-01T00:00:00Z","published_at":"2026-01-02T00:00:00Z"}}`
	for i, d := range []struct{ body, event string }{{pr, "pull_request"}, {closed, "pull_request"}, {rel, "release"}, {`{"zen":"hi"}`, "ping"}, {`{"action":"created","repository":{"full_name":"acme/widget"}}`, "issues"}} {
		if err := e.ExternalEvent(ctx, delivery(d.body, sign([]byte(d.body), secret), "d-"+string(rune('a'+i)), d.event)); err != nil {
			t.Fatalf("%s: %v", d.event, err)
		}
	}
	if len(g.starts) != 2 {
		t.Fatalf("%d starts, want 2: %+v", len(g.starts), g.starts)
	}
	if s := g.starts[0]; s.pipeline != "review" || s.vars["GOFER_EXTENSION_GITHUB_PULLREQUEST_HEAD_SHA"] != "f00" || s.vars["GOFER_EXTENSION_GITHUB_ACTION"] != "opened" || s.vars["GOFER_EXTENSION_GITHUB_PULLREQUEST_AUTHOR_USERNAME"] != "ada" {
		t.Errorf("pull_request start %+v", s)
	}
	if s := g.starts[1]; s.pipeline != "ship" || s.vars["GOFER_EXTENSION_GITHUB_RELEASE_TAG_NAME"] != "v1.2.0" || s.vars["GOFER_EXTENSION_GITHUB_RELEASE_AUTHOR_LOGIN"] != "bob" {
		t.Errorf("release start %+v", s)
	}
}

// TestGithubSettings: no secret refuses to start; bad parameters are
// refused naming the parameter.
func TestGithubSettings(t *testing.T) {
	if err := New(Options{Setting: func(string) string { return "" }, Gofer: &fakeGofer{}}).Init(context.Background(), nil); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("no secret: %v", err)
	}
	both := map[string]string{SettingAppWebhookSecret: "a", SettingWebhookSecret: "b"}
	if err := New(Options{Setting: func(k string) string { return both[k] }, Gofer: &fakeGofer{}}).Init(context.Background(), nil); err == nil {
		t.Fatal("disagreeing secrets accepted")
	}
	e, _ := newExt(t, map[string]string{SettingAppWebhookSecret: secret})
	for _, p := range []map[string]string{
		{ParamEvents: "push"},
		{ParamRepository: "acme", ParamEvents: "push"},
		{ParamRepository: "acme/widget"},
		{ParamRepository: "acme/widget", ParamEvents: "issues"},
		{ParamRepository: "acme/widget", ParamEvents: "pull_request/"},
		{ParamRepository: "acme/widget", ParamEvents: "push", ParamEventFilter: "release"},
	} {
		if err := e.Subscribe(context.Background(), extension.Subscription{NamespaceID: "n", PipelineID: "p", ID: "s", Params: p}); err == nil {
			t.Errorf("params %v accepted", p)
		}
	}
}

// TestGithubMissingValuesAreNotFinal: a start Gofer refuses because
// secrets or objects are not there is not a final no: the delivery
// answers 409 naming them, is not remembered, and its redelivery after
// the values are stored starts the run.
func TestGithubMissingValuesAreNotFinal(t *testing.T) {
	e, _ := newExt(t, map[string]string{SettingAppWebhookSecret: secret})
	msg := `pipeline "build" did not start a run: 1 secret or object it names is not there: pipeline_secret "token" does not exist (used by only.TOKEN; fix: gofer secret pipeline put build token VALUE -n default)`
	g := &partialGofer{fail: map[string]error{
		"build": &extension.APIError{Status: http.StatusConflict, Code: "conflict", Message: msg,
			Missing: []extension.MissingValue{{Kind: "pipeline_secret", Key: "token", Problem: "does not exist", UsedBy: []string{"only.TOKEN"}}}},
	}}
	e.opts.Gofer = g
	var logs strings.Builder
	e.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	body := pushFor("d-1")
	send := func() error { return e.ExternalEvent(ctx, delivery(body, sign([]byte(body), secret), "d-1", "push")) }
	err := send()
	if status(err) != http.StatusConflict || !strings.Contains(err.Error(), `pipeline_secret "token" does not exist`) {
		t.Fatalf("delivery with a missing secret: %v; want 409 naming it", err)
	}
	if !strings.Contains(logs.String(), "missing: pipeline_secret token") {
		t.Errorf("log %q does not name the missing value", logs.String())
	}
	delete(g.fail, "build") // the user stored the secret
	if err := send(); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if g.calls != 4 { // build and ship, twice: the redelivery was not dropped
		t.Fatalf("%d starts; the redelivery was dropped", g.calls)
	}
	if err := send(); err != nil || g.calls != 4 {
		t.Fatalf("a third delivery: %v, %d starts; want it remembered now", err, g.calls)
	}
}
