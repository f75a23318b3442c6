package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/extensions/cron"
	"github.com/goferhq/gofer/extensions/github"
	"github.com/goferhq/gofer/extensions/interval"
	"github.com/goferhq/gofer/extensions/scheduled"
	"github.com/goferhq/gofer/sdk/go/extension"
)

// serviceExtensionCommand runs a built-in extension in this process: the
// entrypoint of the gofer/extension-<kind> images is exactly
// `/gofer service extension <kind>`. It reads the environment Gofer's
// supervisor sets (GOFER_EXTENSION_SYSTEM_*, install settings verbatim).
func serviceExtensionCommand() *cli.Command {
	run := func(name string, make func() extension.Extension) *cli.Command {
		return &cli.Command{
			Name:  name,
			Usage: "run the built-in " + name + " extension (started by Gofer's extension supervisor)",
			Description: `Reads GOFER_EXTENSION_SYSTEM_ID, _SECRET, _USE_TLS, _GOFER_CA, _GOFER_HOST (host:port, or a
comma-separated list), _BINDADDRESS and the install settings from the environment,
restores the subscriptions Gofer stores, then serves Gofer's calls until
POST /api/shutdown or SIGTERM. See docs/triggers.md.`,
			Action: func(c *cli.Context) error {
				if c.NArg() != 0 {
					return fmt.Errorf("%s takes no arguments", name)
				}
				return extension.Run(make())
			},
		}
	}
	return &cli.Command{
		Name:   "extension",
		Usage:  "run a built-in extension (interval, cron, github)",
		Hidden: true,
		Subcommands: []*cli.Command{
			run("interval", func() extension.Extension { return interval.New(scheduled.Options{}) }),
			run("cron", func() extension.Extension { return cron.New(scheduled.Options{}) }),
			run("github", func() extension.Extension { return github.New(github.Options{}) }),
		},
	}
}
