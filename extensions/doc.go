// Package extensions holds Gofer's built-in extensions, each a subcommand
// of the one gofer binary (`gofer service extension <kind>`) built on the
// Go extension SDK (sdk/go/extension), so each talks to the cluster only
// through the API, never assuming it reaches the leader
// (docs/architecture.md §2):
//
//   - schedule: cron and interval parsing, catch-up, trigger keys (pure);
//   - scheduled: the engine of the scheduled extensions (a worker per
//     subscription, catch-up, skipped-tick reports, a timer per tick);
//   - interval, cron: the two scheduled kinds;
//   - github: webhook deliveries verified and turned into runs.
//
// docs/triggers.md describes them for users.
package extensions
