// Package github is the built-in GitHub extension (`gofer service extension
// github`): it takes GitHub webhooks that Gofer's external events listener
// forwards (POST /api/external/github), verifies their signature before
// reading them, and starts a run of every pipeline subscribed to the
// repository and event, once per delivery (docs/triggers.md).
package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// Install settings. The webhook secret is upstream's APP_WEBHOOK_SECRET;
// WEBHOOK_SECRET is accepted too (a Gofer addition for installs that use
// a plain webhook rather than a GitHub App); if both are set they must
// agree. Upstream's APP_ID, APP_INSTALLATION and APP_KEY (for check runs)
// are accepted and unused.
const (
	SettingAppWebhookSecret = "APP_WEBHOOK_SECRET"
	SettingWebhookSecret    = "WEBHOOK_SECRET"
)

// Subscription parameters. ParamEvents is ours; ParamEventFilter is
// upstream's name for the same thing.
const (
	ParamRepository  = "repository"
	ParamEvents      = "events"
	ParamEventFilter = "event_filter"
)

// MaxBody is the largest webhook body accepted (GitHub's own limit).
const MaxBody = 25 << 20

// Starter is the part of the SDK's client the extension uses.
type Starter interface {
	StartRun(ctx context.Context, namespace, pipeline string, variables map[string]string, idempotencyKey string) (*extension.RunInfo, error)
}

// Options configure the extension; zero values take defaults.
type Options struct {
	// Setting reads an install setting (default extension.Config, the
	// environment).
	Setting func(string) string
	// Gofer defaults to the SDK's client passed to Init.
	Gofer Starter
	// Logger defaults to the client's.
	Logger *slog.Logger
	// SeenDeliveries is how many delivery ids (and as many body
	// signatures) are remembered to drop redeliveries and replays
	// without calling Gofer (default 4096). Gofer dedups the key
	// "github:<delivery id>" in any case.
	SeenDeliveries int
}

// Extension is the GitHub extension for the SDK's Serve/Run.
type Extension struct {
	opts   Options
	secret []byte

	mu   sync.Mutex // the SDK calls one at a time; the lock keeps that an implementation detail
	subs map[schedule.Subscription]subscription
	seen *lru
	// signatures remembers the verified signatures of the same
	// deliveries as seen: a signed body replayed under a fresh delivery
	// id is dropped too.
	signatures *lru
}

type subscription struct {
	repository string
	filters    []filter
}

// New returns the GitHub extension.
func New(opts Options) *Extension {
	if opts.Setting == nil {
		opts.Setting = extension.Config
	}
	if opts.SeenDeliveries <= 0 {
		opts.SeenDeliveries = 4096
	}
	return &Extension{opts: opts, subs: map[schedule.Subscription]subscription{}, seen: newLRU(opts.SeenDeliveries),
		signatures: newLRU(opts.SeenDeliveries)}
}

// ErrNoSecret: the extension will not run without a webhook secret, since
// it could not tell GitHub's deliveries from anyone else's.
var ErrNoSecret = errors.New("install setting " + SettingAppWebhookSecret + " (or " + SettingWebhookSecret + ") is required")

// Init reads the webhook secret.
func (e *Extension) Init(_ context.Context, client *extension.Client) error {
	a, b := e.opts.Setting(SettingAppWebhookSecret), e.opts.Setting(SettingWebhookSecret)
	switch {
	case a == "" && b == "":
		return ErrNoSecret
	case a != "" && b != "" && a != b:
		return fmt.Errorf("install settings %s and %s disagree; set one", SettingAppWebhookSecret, SettingWebhookSecret)
	case a != "":
		e.secret = []byte(a)
	default:
		e.secret = []byte(b)
	}
	if e.opts.Gofer == nil {
		e.opts.Gofer = client
	}
	if e.opts.Logger == nil {
		if client != nil {
			e.opts.Logger = client.Logger()
		} else {
			e.opts.Logger = slog.New(slog.DiscardHandler)
		}
	}
	return nil
}

// Info documents the settings and parameters.
func (e *Extension) Info() extension.Documentation {
	return extension.Documentation{
		ConfigParams: []extension.Param{
			{Key: SettingAppWebhookSecret, Required: true, Documentation: "The webhook secret configured in GitHub; every delivery's X-Hub-Signature-256 is checked against it. WEBHOOK_SECRET is accepted as another name."},
		},
		PipelineSubscriptionParams: []extension.Param{
			{Key: ParamRepository, Required: true, Documentation: "The repository, org/repo."},
			{Key: ParamEvents, Required: true, Documentation: "Events that start a run: <event>[/<action>,<action>…], several separated by ';' or spaces, e.g. `push; pull_request/opened,synchronize`. Supported events: push, pull_request, release. Upstream's name event_filter is accepted."},
		},
		Body: "Point a GitHub webhook (content type application/json, with a secret) at Gofer's external events listener, POST /api/external/github.",
	}
}

func parseSubscription(params map[string]string) (subscription, error) {
	repo := strings.TrimSpace(params[ParamRepository])
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.ContainsAny(name, "/ ") {
		return subscription{}, fmt.Errorf("parameter %s %q must be org/repo", ParamRepository, repo)
	}
	text, from := params[ParamEvents], ParamEvents
	if up := params[ParamEventFilter]; up != "" {
		if text != "" && text != up {
			return subscription{}, fmt.Errorf("parameters %s and %s disagree; set one", ParamEvents, ParamEventFilter)
		}
		text, from = up, ParamEventFilter
	}
	filters, err := parseFilters(text)
	if err != nil {
		return subscription{}, fmt.Errorf("parameter %s: %w", from, err)
	}
	return subscription{repository: strings.ToLower(repo), filters: filters}, nil
}

// Subscribe validates and stores the subscription (again: replaced).
func (e *Extension) Subscribe(_ context.Context, sub extension.Subscription) error {
	s, err := parseSubscription(sub.Params)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.subs[schedule.Subscription{Namespace: sub.NamespaceID, Pipeline: sub.PipelineID, ID: sub.ID}] = s
	e.mu.Unlock()
	return nil
}

// Unsubscribe forgets the subscription.
func (e *Extension) Unsubscribe(_ context.Context, sub extension.Subscription) error {
	e.mu.Lock()
	delete(e.subs, schedule.Subscription{Namespace: sub.NamespaceID, Pipeline: sub.PipelineID, ID: sub.ID})
	e.mu.Unlock()
	return nil
}

// Shutdown has nothing to stop: the extension only answers calls.
func (e *Extension) Shutdown(context.Context) {}

// Debug lists the subscriptions.
func (e *Extension) Debug(context.Context) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(e.subs), func(a, b schedule.Subscription) int { return strings.Compare(a.String(), b.String()) })
	var b strings.Builder
	fmt.Fprintf(&b, "github extension, %d subscriptions\n", len(keys))
	for _, k := range keys {
		s := e.subs[k]
		fmt.Fprintf(&b, "%s  repository=%s  events=%s\n", k, s.repository, formatFilters(s.filters))
	}
	return b.String()
}
