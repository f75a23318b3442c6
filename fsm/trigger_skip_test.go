package fsm

import (
	"errors"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/sdk/go/extension"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

func (x *runFixture) skipEvents() []*model.Event {
	x.t.Helper()
	var out []*model.Event
	x.f.View(func(tx *bbolt.Tx) error {
		evs, err := store.ListEvents(tx, store.Page{Limit: store.MaxLimit}, func(e *model.Event) bool { return e.Kind == model.EventSkippedTick })
		out = evs
		return err
	})
	return out
}

// TestTriggerSkipRecordsEachTickOnce: every skipped tick after the
// watermark becomes one event in the subscription's pipeline; the
// watermark moves to the latest and never back; a retry or an older tick
// records nothing; bad commands change nothing.
func TestTriggerSkipRecordsEachTickOnce(t *testing.T) {
	x := newRunFixture(t)
	installExt(x, "interval", "tok1")
	ref := subRef("interval", "s1")
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: ref})
	x.b.clock = 10_000_000 // the leader's clock: 10,000 s, past every tick below

	res := x.ok(CmdTriggerSkip, TriggerSkip{SubscriptionRef: ref, Ticks: []int64{120, 60, 180, 60}, Reason: "catch_up latest"}).(*TriggerSkipped)
	if res.Recorded != 3 || res.Watermark != 180_000 {
		t.Fatalf("first skip: %+v, want 3 recorded and watermark 180000", res)
	}
	evs := x.skipEvents()
	if len(evs) != 3 {
		t.Fatalf("%d skip events, want 3", len(evs))
	}
	for i, want := range []int64{60, 120, 180} {
		e := evs[i]
		if tick, ok := e.Details.Int("tick"); !ok || tick != want || e.NamespaceID != "default" || e.PipelineID != "dag" ||
			e.Details.String("subscription_id") != "s1" || e.Details.String("extension_id") != "interval" || e.Details.String("reason") != "catch_up latest" {
			t.Errorf("event %d: %+v, want tick %d in default/dag", i, e, want)
		}
	}
	// A retry (same ticks) and older ticks record nothing.
	if res := x.ok(CmdTriggerSkip, TriggerSkip{SubscriptionRef: ref, Ticks: []int64{60, 120, 180}}).(*TriggerSkipped); res.Recorded != 0 || res.Watermark != 180_000 {
		t.Fatalf("retried skip: %+v, want nothing recorded", res)
	}
	// A run started by a later tick moves the watermark; skips behind it
	// record nothing and do not move it back.
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Extension: "interval", TriggerKey: "interval:default/dag/s1:600"})
	if res := x.ok(CmdTriggerSkip, TriggerSkip{SubscriptionRef: ref, Ticks: []int64{240, 300}}).(*TriggerSkipped); res.Recorded != 0 || res.Watermark != 600_000 {
		t.Fatalf("skip behind a fired tick: %+v, want nothing recorded, watermark 600000", res)
	}
	// A range: listed ticks then one event for the unlisted rest.
	res = x.ok(CmdTriggerSkip, TriggerSkip{SubscriptionRef: ref, Ticks: []int64{660}, Through: 6000, Reason: "r"}).(*TriggerSkipped)
	if res.Recorded != 2 || res.Watermark != 6_000_000 || x.subscription("interval", "s1").Watermark != 6_000_000 {
		t.Fatalf("range skip: %+v", res)
	}
	if evs := x.skipEvents(); len(evs) != 5 || evs[4].Details["range"] != true || evs[4].Details.String("from") != "661" || evs[4].Details.String("through") != "6000" {
		t.Fatalf("range event: %+v", evs[len(evs)-1])
	}

	many := make([]int64, MaxSkippedTicks+1)
	for i := range many {
		many[i] = int64(7000 + i)
	}
	refused := []struct {
		body TriggerSkip
		want error
	}{
		{TriggerSkip{SubscriptionRef: ref}, ErrInvalid},
		{TriggerSkip{SubscriptionRef: ref, Ticks: many}, ErrInvalid},
		{TriggerSkip{SubscriptionRef: ref, Ticks: []int64{-1}}, ErrInvalid},
		{TriggerSkip{SubscriptionRef: ref, Ticks: []int64{1 << 41}}, ErrInvalid},
		{TriggerSkip{SubscriptionRef: ref, Ticks: []int64{7000}, Through: 6999}, ErrInvalid},
		{TriggerSkip{SubscriptionRef: subRef("interval", "ghost"), Ticks: []int64{7000}}, ErrNotFound},
		{TriggerSkip{SubscriptionRef: subRef("ghost", "s1"), Ticks: []int64{7000}}, ErrNotFound},
		// A tick past the leader's clock (and its minute of slack) would
		// hold every tick until then back: refused, listed or as through.
		{TriggerSkip{SubscriptionRef: ref, Ticks: []int64{10_100}}, ErrInvalid},
		{TriggerSkip{SubscriptionRef: ref, Ticks: []int64{7000}, Through: 10_100}, ErrInvalid},
		// A tick before the subscription existed.
		{TriggerSkip{SubscriptionRef: subRef("interval", "late"), Ticks: []int64{7000}}, ErrInvalid},
	}
	x.ok(CmdSubscriptionCreate, SubscriptionCreate{SubscriptionRef: subRef("interval", "late")}) // created at ~10,000 s
	for i, r := range refused {
		if res := x.apply(CmdTriggerSkip, r.body); !errors.Is(res.Err, r.want) {
			t.Fatalf("case %d: got %v, want %v", i, res.Err, r.want)
		}
	}
	// (A dump comparison is not used: the applied index's binary value
	// may hold a newline byte that defeats stripping it.)
	if len(x.skipEvents()) != 5 || x.subscription("interval", "s1").Watermark != 6_000_000 {
		t.Fatal("refused skips changed the events or the watermark")
	}
	// A disabled extension's ticks pass unfired; recording them starts
	// nothing, so it is accepted (else they would be neither fired nor
	// recorded).
	x.ok(CmdExtensionSetStatus, ExtensionSetStatus{ID: "interval", Enabled: false})
	if res := x.ok(CmdTriggerSkip, TriggerSkip{SubscriptionRef: ref, Ticks: []int64{7000}}).(*TriggerSkipped); res.Recorded != 1 {
		t.Fatalf("skip by a disabled extension: %+v, want it recorded", res)
	}
	if len(x.skipEvents()) != 6 {
		t.Fatal("the disabled extension's skip wrote no event")
	}
}

// The SDK tells extensions the reason limit the FSM enforces.
func TestSkipReasonLimitMatchesTheSDK(t *testing.T) {
	if MaxSkipReason != extension.MaxSkipReason {
		t.Fatalf("fsm.MaxSkipReason %d, extension.MaxSkipReason %d", MaxSkipReason, extension.MaxSkipReason)
	}
}
