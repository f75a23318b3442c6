package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"
)

// Usage mistakes exit 2 (docs/cli.md), whatever part of the command line
// is wrong: a missing or extra argument (usageError), an unknown flag or a
// bad flag value (onUsageError), an unknown command (unknownCommand).

// onUsageError turns urfave/cli's flag errors into a one-line error and
// the command's usage line, exit code 2, instead of the whole help page
// and exit code 1.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return usageError(c, "%v", err)
}

// withUsageErrors sets onUsageError on every command of the tree that has
// no handler of its own.
func withUsageErrors(cmds []*cli.Command) {
	for _, cmd := range cmds {
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = onUsageError
		}
		withUsageErrors(cmd.Subcommands)
	}
}

// unknownCommand records an unknown command name so that Run exits 2
// with a hint (urfave/cli would print "No help topic" and exit 3).
type unknownCommand struct{ name, parent string }

func (u *unknownCommand) handler(c *cli.Context, name string) {
	u.name, u.parent = name, strings.TrimSpace(c.Command.HelpName)
	if u.parent == "" {
		u.parent = c.App.Name
	}
}

func (u *unknownCommand) Error() string {
	return fmt.Sprintf("unknown command %q; `%s --help` lists the commands", u.name, u.parent)
}

// versionCommand prints this binary's version (the CLI and, being the
// same binary, the server it would run).
func versionCommand(build Build) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print this binary's version",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(c, "version takes no arguments, got %d", c.NArg())
			}
			out := c.App.Writer
			switch c.String(flagOutput) {
			case "json":
				return json.NewEncoder(out).Encode(map[string]string{"version": build.Version, "commit": build.Commit, "go": runtime.Version()})
			case "silent":
				return nil
			}
			_, err := fmt.Fprintf(out, "gofer %s (commit %s, %s)\n", build.Version, build.Commit, runtime.Version())
			return err
		},
	}
}
