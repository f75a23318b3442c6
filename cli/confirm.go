package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"
)

// Commands that destroy data the cluster cannot give back (docs/cli.md,
// "Confirmation") ask first. A typo in `gofer pipeline delete` must not
// take a pipeline's whole history with it.

// yesFlag skips the question, for scripts.
func yesFlag() cli.Flag {
	return &cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation (needed without a terminal)"}
}

// isTerminal reports whether r is an interactive terminal (not merely a
// character device: /dev/null, which cron jobs and CI give as stdin, is
// one, and must be refused, not read as "no"). Tests replace it to answer
// the question from a buffer.
var isTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// confirm asks the question question builds (phrased for a yes/no
// answer) on the terminal unless --yes was given; question is called only
// then, as it may ask the server what would be lost. Anything but y/yes declines, and the command
// stops with exit 1 having changed nothing. With no terminal to ask on
// (a script, a pipe, a CI job) it refuses with exit 2, as for any
// incomplete command line, and says to pass --yes: a script that forgot
// the flag must fail, not hang or delete.
func confirm(c *cli.Context, question func() string) error {
	if c.Bool("yes") {
		return nil
	}
	in := c.App.Reader
	if in == nil {
		in = os.Stdin
	}
	if !isTerminal(in) {
		return cli.Exit(fmt.Sprintf("%s destroys data for good and asks first, but there is no terminal to answer on: pass --yes to go ahead",
			c.Command.HelpName), 2)
	}
	fmt.Fprintf(c.App.ErrWriter, "%s [y/N] ", question())
	answer, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return cli.Exit("not confirmed; nothing changed", 1)
}

// countWords renders n things ("1 run", "3 runs"; "1000+ pipelines" for a
// full page, as the count came from one page).
func countWords(n, page int, unit string) string {
	if page > 0 && n >= page {
		return fmt.Sprintf("%d+ %ss", page, unit)
	}
	return plural(n, unit)
}
