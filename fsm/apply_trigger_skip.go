package fsm

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// maxTickUnix is the largest tick a key may carry (as ParseTickKey).
const maxTickUnix = 1 << 40

// applyTriggerSkip records skipped ticks (TriggerSkip). It checks the
// extension is installed and enabled, the subscription exists and every
// tick is in range before writing; a disabled subscription may still
// record skips (its ticks pass unfired).
func applyTriggerSkip(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[TriggerSkip](body)
	e, err := mustExtension(a, cmd.ExtensionID)
	if err != nil {
		return nil, err
	}
	if e.Status != model.ExtensionEnabled {
		return nil, fmt.Errorf("%w: extension %q is disabled", ErrConflict, e.ID)
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

	// Checks done; write. Ticks the watermark already passed were decided
	// before (a retried command): nothing is recorded for them.
	res := &TriggerSkipped{Watermark: s.Watermark}
	details := func(tick int64) map[string]string {
		d := subscriptionDetails(cmd.SubscriptionRef)
		d["tick"] = strconv.FormatInt(tick, 10)
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
		from := res.Watermark/1000 + 1
		d["from"] = strconv.FormatInt(from, 10)
		d["through"] = strconv.FormatInt(cmd.Through, 10)
		d["range"] = "true"
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
