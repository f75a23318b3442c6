// Package extensions holds Gofer's built-in extensions (interval, cron,
// github). Each is a subcommand of the one gofer binary and talks to the
// cluster only through package client, never assuming it reaches the
// leader (docs/architecture.md §2). Today it holds their schedule logic
// (package schedule: cron and interval parsing, catch-up, trigger keys);
// the extensions themselves build on it (docs/triggers.md).
package extensions
