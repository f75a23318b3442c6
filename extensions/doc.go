// Package extensions holds Gofer's built-in extensions (interval, cron,
// github). Each is a subcommand of the one gofer binary and talks to the
// cluster only through package client, never assuming it reaches the
// leader (docs/architecture.md §2). They arrive with the triggers work.
package extensions
