package scheduled

import (
	"context"

	"github.com/goferhq/gofer/extensions/schedule"
)

// resync heals lost subscribe and unsubscribe calls: it lists the
// extension's subscriptions from Gofer, starts a worker for each active
// one the extension has none for, and stops the workers of subscriptions
// Gofer no longer has. A worker is stopped only if it saw its
// subscription stored before the list was asked for: Gofer asks the
// extension to subscribe before it stores a new subscription, so a
// younger worker's subscription may just not be in the list yet.
func (e *Extension) resync(ctx context.Context) {
	mark := e.seq.Add(1)
	stored, err := e.opts.Gofer.Subscriptions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log().Warn("resync: listing subscriptions failed; next time", "error", err)
		}
		return
	}
	have := make(map[schedule.Subscription]bool, len(stored))
	var stop []*worker
	e.mu.Lock()
	if e.ctx.Err() != nil {
		e.mu.Unlock()
		return
	}
	for _, s := range stored {
		key := schedule.Subscription{Namespace: s.NamespaceID, Pipeline: s.PipelineID, ID: s.SubscriptionID}
		have[key] = true
		if e.workers[key] != nil || s.Status == statusDisabled {
			continue
		}
		if err := e.validate(s.Settings); err != nil {
			e.log().Error("resync: stored subscription refused; not started", "subscription", key.String(), "error", err)
			continue
		}
		e.log().Warn("resync: starting the worker of a subscription the extension was not told of", "subscription", key.String())
		e.startLocked(key, s.Settings, true)
	}
	for key, w := range e.workers {
		if have[key] || !w.stored.Load() || w.seenAt.Load() > mark {
			continue
		}
		e.log().Warn("resync: stopping the worker of a subscription Gofer no longer has", "subscription", key.String())
		delete(e.workers, key)
		stop = append(stop, w)
	}
	e.mu.Unlock()
	for _, w := range stop {
		w.stop()
		<-w.done
	}
}
