package cli

import (
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/agent/retry"
)

// The debug tools run inside task containers (the gofer/gofer image's
// entrypoint is the gofer binary), so the scheduler's tests and users'
// pipelines get known behaviour without extra images: print the
// environment, fail, log on both streams, wait and honour SIGTERM. They use
// the standard library only and read their settings from the environment,
// which is how a pipeline task configures them.

// debugBadValue is the exit code for an unparsable setting (upstream's
// debug images use 42), distinct from a tool's intended failure.
const debugBadValue = 42

func debugCommand() *cli.Command {
	return &cli.Command{
		Name:  "debug",
		Usage: "tools that run inside task containers, for testing schedulers and pipelines",
		Subcommands: []*cli.Command{
			{Name: "envs", Usage: "print the environment, sorted, one KEY=VALUE per line", Action: debugEnvs},
			{
				Name:  "fail",
				Usage: "print a line, sleep, then exit non-zero",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "sleep", EnvVars: []string{"FAIL_SLEEP"}, Value: "1s", Usage: "how long to run before failing (Go duration)"},
					&cli.StringFlag{Name: "code", EnvVars: []string{"FAIL_CODE"}, Value: "1", Usage: "exit code"},
				},
				Action: debugFail,
			},
			{
				Name:  "log",
				Usage: "print LOGS_HEADER, then numbered lines alternating between stdout and stderr",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "lines", EnvVars: []string{"LOG_LINES"}, Value: "10", Usage: "how many lines"},
					&cli.StringFlag{Name: "interval", EnvVars: []string{"LOG_INTERVAL"}, Value: "100ms", Usage: "pause between lines (Go duration)"},
				},
				Action: debugLog,
			},
			{
				Name:  "wait",
				Usage: "sleep, then exit 0; SIGTERM ends it early, also with 0",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "duration", EnvVars: []string{"WAIT_DURATION"}, Value: "5s", Usage: "how long to sleep (Go duration)"},
				},
				Action: debugWait,
			},
		},
	}
}

func debugEnvs(c *cli.Context) error {
	env := os.Environ()
	sort.Strings(env)
	for _, kv := range env {
		fmt.Fprintln(c.App.Writer, kv)
	}
	return nil
}

func debugFail(c *cli.Context) error {
	d, err := debugDuration(c, "sleep")
	if err != nil {
		return err
	}
	code, err := strconv.Atoi(c.String("code"))
	if err != nil || code < 1 || code > 255 {
		return cli.Exit(fmt.Sprintf("debug fail: bad exit code %q (want 1-255)", c.String("code")), debugBadValue)
	}
	fmt.Fprintf(c.App.Writer, "debug fail: will exit with code %d in %s\n", code, d)
	retry.Sleep(c.Context, d)
	return cli.Exit(fmt.Sprintf("debug fail: exiting with code %d on purpose", code), code)
}

// debugLog writes odd lines to stdout and even lines to stderr, each
// naming its stream and number, so a log test can check that both
// streams arrive, interleaved, in the order written.
func debugLog(c *cli.Context) error {
	n, err := strconv.Atoi(c.String("lines"))
	if err != nil || n < 0 {
		return cli.Exit(fmt.Sprintf("debug log: bad line count %q", c.String("lines")), debugBadValue)
	}
	interval, err := debugDuration(c, "interval")
	if err != nil {
		return err
	}
	if h := os.Getenv("LOGS_HEADER"); h != "" {
		fmt.Fprintln(c.App.Writer, h)
	}
	for i := 1; i <= n; i++ {
		if i > 1 && !retry.Sleep(c.Context, interval) {
			return nil
		}
		if i%2 == 1 {
			fmt.Fprintf(c.App.Writer, "line %d of %d (stdout)\n", i, n)
		} else {
			fmt.Fprintf(c.App.ErrWriter, "line %d of %d (stderr)\n", i, n)
		}
	}
	return nil
}

// debugWait lets tests tell a graceful stop (exit 0 within the grace,
// with a message) from a kill (137).
func debugWait(c *cli.Context) error {
	d, err := debugDuration(c, "duration")
	if err != nil {
		return err
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(term)
	fmt.Fprintf(c.App.Writer, "debug wait: waiting %s\n", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		fmt.Fprintf(c.App.Writer, "debug wait: waited %s\n", d)
	case sig := <-term:
		name := "SIGINT"
		if sig == syscall.SIGTERM {
			name = "SIGTERM"
		}
		fmt.Fprintf(c.App.Writer, "received %s, exiting\n", name)
	}
	return nil
}

// debugDuration parses a duration flag; a bad value exits 42 with the
// reason rather than urfave's generic usage error.
func debugDuration(c *cli.Context, flag string) (time.Duration, error) {
	d, err := time.ParseDuration(c.String(flag))
	if err != nil || d < 0 {
		return 0, cli.Exit(fmt.Sprintf("debug %s: bad --%s %q: want a Go duration such as 1s or 250ms", c.Command.Name, flag, c.String(flag)), debugBadValue)
	}
	return d, nil
}
