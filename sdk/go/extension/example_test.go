package extension_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goferhq/gofer/sdk/go/extension"
)

// ticker is a tiny extension: it starts a run of each subscribed pipeline
// every "every" (a Go duration), never more often than the install setting
// MIN_INTERVAL allows.
type ticker struct {
	gofer *extension.Client
	min   time.Duration

	// mu guards subs: the SDK calls Subscribe and Unsubscribe one at a
	// time, but the loops run on their own.
	mu   sync.Mutex
	subs map[string]context.CancelFunc
	wg   sync.WaitGroup
}

func (t *ticker) Init(_ context.Context, gofer *extension.Client) error {
	t.gofer, t.subs, t.min = gofer, map[string]context.CancelFunc{}, time.Minute
	if v := extension.Config("min_interval"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("MIN_INTERVAL: %w", err)
		}
		t.min = d
	}
	return nil
}

func (t *ticker) Info() extension.Documentation {
	return extension.Documentation{
		ConfigParams: []extension.Param{
			{Key: "MIN_INTERVAL", Documentation: "The shortest 'every' a pipeline may ask for (default 1m)."},
		},
		PipelineSubscriptionParams: []extension.Param{
			{Key: "every", Required: true, Documentation: "Time between runs, as a Go duration: 5m, 1h30m."},
		},
		Body: "Starts a run of the pipeline every 'every'.",
	}
}

func (t *ticker) Subscribe(_ context.Context, sub extension.Subscription) error {
	every, err := time.ParseDuration(sub.Params["every"])
	if err != nil {
		return fmt.Errorf("every: %q is not a duration such as 5m", sub.Params["every"])
	}
	if every < t.min {
		return fmt.Errorf("every: %s is under the minimum of %s", every, t.min)
	}
	id := sub.NamespaceID + "/" + sub.PipelineID + "/" + sub.ID
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.subs[id]; ok {
		return nil // already running: subscribing again is a no-op
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.subs[id] = cancel
	t.wg.Add(1)
	go t.loop(ctx, sub, every)
	return nil
}

// loop starts a run at each multiple of every. The key names the slot, so
// a restarted extension (or a second one) asking for the same slot gets the
// run already started instead of a second one.
func (t *ticker) loop(ctx context.Context, sub extension.Subscription, every time.Duration) {
	defer t.wg.Done()
	for {
		next := time.Now().Truncate(every).Add(every)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		key := fmt.Sprintf("interval:%s:%d", sub.ID, next.UnixMilli())
		if _, err := t.gofer.StartRun(ctx, sub.NamespaceID, sub.PipelineID, nil, key); err != nil {
			t.gofer.Logger().Error("could not start run", "pipeline", sub.PipelineID, "key", key, "error", err)
		}
	}
}

func (t *ticker) Unsubscribe(_ context.Context, sub extension.Subscription) error {
	id := sub.NamespaceID + "/" + sub.PipelineID + "/" + sub.ID
	t.mu.Lock()
	defer t.mu.Unlock()
	if cancel, ok := t.subs[id]; ok {
		cancel()
		delete(t.subs, id)
	}
	return nil
}

func (t *ticker) Shutdown(context.Context) {
	t.mu.Lock()
	for _, cancel := range t.subs {
		cancel()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// The main function of an extension binary. Gofer starts the container
// with the environment Run reads.
func Example() {
	if err := extension.Run(&ticker{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// The example extension, run against a stand-in for Gofer's API: the
// subscription Gofer has stored is restored at boot and its ticks start
// runs, each with its own idempotency key.
func TestExampleTicker(t *testing.T) {
	t.Setenv("MIN_INTERVAL", "10ms")
	var mu sync.Mutex
	var keys []string
	gofer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/extensions/interval/subscriptions":
			_ = json.NewEncoder(w).Encode(map[string]any{"subscriptions": []map[string]any{{
				"namespace_id": "default", "pipeline_id": "simple", "extension_id": "interval",
				"subscription_id": "fast", "settings": map[string]string{"every": "50ms"}, "status": "active",
			}}})
		case r.Method == http.MethodPost && r.URL.Path == "/api/namespaces/default/pipelines/simple/runs":
			mu.Lock()
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			n := len(keys)
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"run":{"namespace_id":"default","pipeline_id":"simple","run_id":%d,"variables":[]}}`, n)
		default:
			http.NotFound(w, r)
		}
	}))
	defer gofer.Close()

	cfg := extension.SystemConfig{ID: "interval", Secret: "s", GoferHosts: []string{gofer.URL}, BindAddress: "127.0.0.1:0"}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- extension.Serve(ctx, cfg, &ticker{}) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(keys)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runs started, want 2", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(keys[0], "interval:fast:") || keys[0] == keys[1] {
		t.Fatalf("keys %q", keys)
	}
}
