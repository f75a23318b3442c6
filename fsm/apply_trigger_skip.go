package fsm

import (
	"fmt"
	"slices"
	"time"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// maxTickUnix is the largest tick a key may carry (as ParseTickKey).
const maxTickUnix = 1 << 40

// skipFutureSlack is how far past the leader's clock a skipped tick may
// lie: an extension's clock may run a little ahead, but a watermark far in
// the future would stop every tick until then from firing.
const skipFutureSlack = time.Minute

// applyTriggerSkip records skipped ticks (TriggerSkip). It checks the
// extension is installed, the subscription exists and every tick is in
// range (not before the subscription, not in the future) before writing.
// A disabled extension or subscription may still record skips: its ticks
// pass unfired, and recording them starts nothing.
func applyTriggerSkip(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TriggerSkip](body)
	if _, err := mustExtension(a, cmd.ExtensionID); err != nil {
		return nil, err
	}
	s, err := mustSubscription(a, cmd.SubscriptionRef)
	if err != nil {
		return nil, err
	}
	if len(cmd.Ticks) == 0 && cmd.Through == 0 {
		return nil, fmt.Errorf("%w: ticks: at least one tick is required", ErrInvalid)
	}
	if len(cmd.Ticks) > MaxSkippedTicks {
		return nil, fmt.Errorf("%w: ticks: %d listed, at most %d per request", ErrInvalid, len(cmd.Ticks), MaxSkippedTicks)
	}
	if len(cmd.Reason) > MaxSkipReason {
		return nil, fmt.Errorf("%w: reason: longer than %d characters", ErrInvalid, MaxSkipReason)
	}
	for i, t := range cmd.Ticks {
		if t <= 0 || t > maxTickUnix {
			return nil, fmt.Errorf("%w: ticks[%d]: %d is not a unix time in seconds", ErrInvalid, i, t)
		}
	}
	if cmd.Through < 0 || cmd.Through > maxTickUnix {
		return nil, fmt.Errorf("%w: through: %d is not a unix time in seconds", ErrInvalid, cmd.Through)
	}
	ticks := slices.Clone(cmd.Ticks)
	slices.Sort(ticks)
	ticks = slices.Compact(ticks)
	if cmd.Through != 0 && len(ticks) > 0 && cmd.Through <= ticks[len(ticks)-1] {
		return nil, fmt.Errorf("%w: through: %d is not after the last listed tick %d", ErrInvalid, cmd.Through, ticks[len(ticks)-1])
	}
	earliest := s.Created/1000 - 1 // the subscription's first tick comes after its creation
	latest := (a.meta.Timestamp + skipFutureSlack.Milliseconds()) / 1000
	for _, t := range append(slices.Clone(ticks), cmd.Through) {
		if t == 0 {
			continue // no through
		}
		if t < earliest || t > latest {
			return nil, fmt.Errorf("%w: tick %d (%s) is before the subscription was created (%s) or after now (%s)", ErrInvalid,
				t, time.Unix(t, 0).UTC().Format(time.RFC3339), time.UnixMilli(s.Created).UTC().Format(time.RFC3339),
				time.UnixMilli(a.meta.Timestamp).UTC().Format(time.RFC3339))
		}
	}

	// Checks done; write. Ticks the watermark already passed were decided
	// before (a retried command): nothing is recorded for them.
	res := &TriggerSkipped{Watermark: s.Watermark}
	details := func(tick int64) model.EventDetails {
		d := subscriptionDetails(cmd.SubscriptionRef)
		d["tick"] = tick
		d["tick_time"] = time.Unix(tick, 0).UTC().Format(time.RFC3339)
		d["reason"] = cmd.Reason
		return d
	}
	for _, t := range ticks {
		if t*1000 <= res.Watermark {
			continue
		}
		if err := a.emitIn(s.NamespaceID, s.PipelineID, model.EventSkippedTick, details(t)); err != nil {
			return nil, err
		}
		res.Recorded++
		res.Watermark = t * 1000
	}
	if cmd.Through != 0 && cmd.Through*1000 > res.Watermark {
		d := details(cmd.Through)
		from := max(res.Watermark/1000+1, s.Created/1000)
		d["from"] = from
		d["through"] = cmd.Through
		d["range"] = true
		if err := a.emitIn(s.NamespaceID, s.PipelineID, model.EventSkippedTick, d); err != nil {
			return nil, err
		}
		res.Recorded++
		res.Watermark = cmd.Through * 1000
	}
	if res.Watermark != s.Watermark {
		s.Watermark = res.Watermark
		if err := store.PutSubscription(a.tx, s); err != nil {
			return nil, err
		}
	}
	return res, nil
}
