// Package scheduled is the engine of the built-in interval and cron
// extensions: one goroutine per subscription that reads the subscription's
// watermark from Gofer, applies its catch-up policy (schedule.Due), reports
// skipped ticks, starts one run per fired tick with the tick's trigger key,
// and sleeps on a timer until the next tick. The two extensions differ only
// in how a subscription's parameters become a schedule (a Kind).
//
// Time comes from an injected clock (agent/clock), so tests advance a fake
// clock instead of sleeping.
package scheduled
