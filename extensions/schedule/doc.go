// Package schedule is the schedule logic of the built-in interval and cron
// extensions, kept pure (no clocks, no I/O) so it can be tested exhaustively:
// the cron expression parser and its Next search (with explicit DST rules),
// interval parsing against the install's minimum, the catch-up decision for
// missed ticks, and the trigger keys that make a tick start at most one run.
// docs/triggers.md describes the user-visible semantics; DESIGN.md says why
// the code is shaped this way.
package schedule
