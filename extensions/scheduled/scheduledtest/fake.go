// Package scheduledtest answers for Gofer in unit tests of scheduled
// extensions: it stores subscriptions with a watermark, dedups trigger
// keys and records run starts and skipped ticks as the cluster would.
package scheduledtest

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// Start is one run start as the fake saw it.
type Start struct {
	Key string
	// At is the clock's time when the start arrived.
	At        time.Time
	Variables map[string]string
	// Existing is set when the key had started a run before.
	Existing bool
}

// Gofer is the fake. Its methods are safe for concurrent use.
type Gofer struct {
	Clock clock.Clock

	mu      sync.Mutex
	subs    map[schedule.Subscription]*extension.StoredSubscription
	keys    map[string]bool
	starts  []Start
	skipped map[schedule.Subscription][]int64
	reasons map[schedule.Subscription][]string
	// Down makes every call fail as an unreachable Gofer would.
	down   bool
	refuse error
	// refuseSkips makes skipped-ticks reports fail (nil: record them).
	refuseSkips error
	started     chan Start
}

// New returns a fake with no subscriptions.
func New(c clock.Clock) *Gofer {
	return &Gofer{Clock: c, subs: map[schedule.Subscription]*extension.StoredSubscription{}, keys: map[string]bool{},
		skipped: map[schedule.Subscription][]int64{}, reasons: map[schedule.Subscription][]string{}, started: make(chan Start, 1024)}
}

// Store stores a subscription created at created with a watermark (ms).
func (g *Gofer) Store(sub schedule.Subscription, settings map[string]string, created time.Time, watermarkMs int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.subs[sub] = &extension.StoredSubscription{NamespaceID: sub.Namespace, PipelineID: sub.Pipeline, SubscriptionID: sub.ID,
		Settings: settings, Status: "active", Created: created.UnixMilli(), Watermark: watermarkMs}
}

// SetDown makes the fake unreachable (true) or reachable again.
func (g *Gofer) SetDown(down bool) {
	g.mu.Lock()
	g.down = down
	g.mu.Unlock()
}

var errDown = &extension.APIError{Status: http.StatusServiceUnavailable, Message: "fake gofer is down"}

// Refuse makes run starts fail with err (nil: start again), as a
// disabled subscription's would (an *extension.APIError with a 4xx).
func (g *Gofer) Refuse(err error) {
	g.mu.Lock()
	g.refuse = err
	g.mu.Unlock()
}

// RefuseSkips makes skipped-ticks reports fail with err (nil: record
// them again).
func (g *Gofer) RefuseSkips(err error) {
	g.mu.Lock()
	g.refuseSkips = err
	g.mu.Unlock()
}

// SetStatus sets a stored subscription's status ("active", "disabled").
func (g *Gofer) SetStatus(sub schedule.Subscription, status string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.subs[sub]; s != nil {
		s.Status = status
	}
}

// Delete forgets a subscription, as deleting it (or its pipeline or
// namespace) does.
func (g *Gofer) Delete(sub schedule.Subscription) {
	g.mu.Lock()
	delete(g.subs, sub)
	g.mu.Unlock()
}

// Subscriptions implements scheduled.Gofer: every stored subscription.
func (g *Gofer) Subscriptions(context.Context) ([]extension.StoredSubscription, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down {
		return nil, errDown
	}
	var all []extension.StoredSubscription
	for _, s := range g.subs {
		c := *s
		all = append(all, c)
	}
	return all, nil
}

// Subscription implements scheduled.Gofer.
func (g *Gofer) Subscription(_ context.Context, ns, pipeline, id string) (*extension.StoredSubscription, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down {
		return nil, errDown
	}
	s := g.subs[schedule.Subscription{Namespace: ns, Pipeline: pipeline, ID: id}]
	if s == nil {
		return nil, &extension.APIError{Status: http.StatusNotFound, Message: "no such subscription"}
	}
	c := *s
	return &c, nil
}

// StartRun implements scheduled.Gofer as the cluster does for a tick key:
// the key's subscription must exist (404) and be active (409); a key
// starts at most one run; a new key for a tick at or before the watermark
// is refused (409: the tick was decided); a tick key moves the
// subscription's watermark (never back).
func (g *Gofer) StartRun(_ context.Context, ns, pipeline string, vars map[string]string, key string) (*extension.RunInfo, error) {
	g.mu.Lock()
	if g.down || g.refuse != nil {
		err := g.refuse
		if g.down {
			err = errDown
		}
		g.mu.Unlock()
		return nil, err
	}
	var unix int64
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		unix, _ = strconv.ParseInt(key[i+1:], 10, 64)
	}
	s := g.subs[schedule.Subscription{Namespace: ns, Pipeline: pipeline, ID: subID(key)}]
	var refusal error
	switch {
	case s == nil:
		refusal = &extension.APIError{Status: http.StatusNotFound, Message: "no such subscription"}
	case s.Status == "disabled":
		refusal = &extension.APIError{Status: http.StatusConflict, Message: "subscription is disabled"}
	case !g.keys[key] && unix*1000 <= s.Watermark:
		refusal = &extension.APIError{Status: http.StatusConflict, Message: "tick already decided"}
	}
	if refusal != nil {
		g.mu.Unlock()
		return nil, refusal
	}
	st := Start{Key: key, At: g.Clock.Now(), Variables: vars, Existing: g.keys[key]}
	g.keys[key] = true
	if unix*1000 > s.Watermark {
		s.Watermark = unix * 1000
	}
	g.starts = append(g.starts, st)
	g.mu.Unlock()
	g.started <- st
	return &extension.RunInfo{NamespaceID: ns, PipelineID: pipeline, RunID: int64(len(g.starts))}, nil
}

// subID is the subscription id of "kind:ns/pipeline/id:unix".
func subID(key string) string {
	last, first := -1, -1
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == ':' && last < 0 {
			last = i
		} else if key[i] == '/' && last >= 0 {
			first = i
			break
		}
	}
	if first < 0 || last < 0 {
		return ""
	}
	return key[first+1 : last]
}

// RecordSkippedTicks implements scheduled.Gofer as the cluster does:
// ticks at or before the watermark are ignored; one before the
// subscription's creation or over a minute in the future is refused (400),
// and so is a reason over extension.MaxSkipReason bytes.
func (g *Gofer) RecordSkippedTicks(_ context.Context, ns, pipeline, id string, sk extension.SkippedTicks) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down {
		return errDown
	}
	if g.refuseSkips != nil {
		return g.refuseSkips
	}
	key := schedule.Subscription{Namespace: ns, Pipeline: pipeline, ID: id}
	s := g.subs[key]
	if s == nil {
		return &extension.APIError{Status: http.StatusNotFound, Message: "no such subscription"}
	}
	if len(sk.Reason) > extension.MaxSkipReason {
		return &extension.APIError{Status: http.StatusBadRequest, Message: "reason: longer than 256 characters"}
	}
	g.reasons[key] = append(g.reasons[key], sk.Reason)
	for _, t := range append(slices.Clone(sk.Ticks), sk.Through) {
		if t.IsZero() {
			continue
		}
		if t.Unix()*1000 < s.Created/1000*1000 || t.After(g.Clock.Now().Add(time.Minute)) {
			return &extension.APIError{Status: http.StatusBadRequest, Message: "tick " + t.String() + " is before the subscription or in the future"}
		}
	}
	for _, t := range sk.Ticks {
		if t.Unix()*1000 > s.Watermark {
			g.skipped[key] = append(g.skipped[key], t.Unix())
			s.Watermark = t.Unix() * 1000
		}
	}
	if !sk.Through.IsZero() && sk.Through.Unix()*1000 > s.Watermark {
		g.skipped[key] = append(g.skipped[key], -sk.Through.Unix()) // a range end, negative
		s.Watermark = sk.Through.Unix() * 1000
	}
	return nil
}

// Started waits for the next run start (false after limit of real time).
func (g *Gofer) Started(limit time.Duration) (Start, bool) {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case s := <-g.started:
		return s, true
	case <-t.C:
		return Start{}, false
	}
}

// Starts returns every run start so far.
func (g *Gofer) Starts() []Start {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Start(nil), g.starts...)
}

// Skipped returns the skipped ticks recorded for sub (unix seconds; a
// range end is negative).
func (g *Gofer) Skipped(sub schedule.Subscription) []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int64(nil), g.skipped[sub]...)
}

// SkipReasons returns the reasons of the skipped-ticks reports for sub.
func (g *Gofer) SkipReasons(sub schedule.Subscription) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.reasons[sub]...)
}

// Watermark returns the subscription's watermark (ms).
func (g *Gofer) Watermark(sub schedule.Subscription) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.subs[sub]; s != nil {
		return s.Watermark
	}
	return 0
}
