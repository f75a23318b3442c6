// Package extension turns a small Go type into a Gofer extension: the
// HTTP server Gofer calls to subscribe pipelines, and a client for Gofer's
// API to start runs.
//
// An extension is a container Gofer starts and supervises. Pipelines
// subscribe to it (an interval, a cron schedule, a GitHub repository) and
// it starts their runs through Gofer's ordinary API. The package depends
// on the standard library only.
//
// # Writing an extension
//
// Implement Extension (and EventHandler for webhooks, Debugger for a debug
// page) and call Run from main:
//
//	func main() {
//		if err := extension.Run(&ticker{}); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
//
// Run reads the environment Gofer sets (SystemConfig), calls Init with a
// Client, asks Gofer for the subscriptions it has stored and passes each to
// Subscribe (Gofer does not send them again to a restarted extension), and
// only then serves Gofer's calls. Calls into the extension are made one at
// a time; goroutines the extension starts itself need their own locking.
//
// # Starting runs
//
// Client.StartRun takes an idempotency key, required: build it from what
// caused the run ("interval:<subscription>:<tick unix>",
// "cron:<subscription>:<scheduled unix>", "github:<delivery id>"), so that
// a retry, a restarted extension or a second replica never starts the same
// run twice. Connection errors and 502/503/504 answers are retried with the
// same key; Gofer answers a key it has seen with the run it already
// started.
//
// The contract (environment, routes, bodies) is described in the
// repository's docs/extensions.md.
package extension
