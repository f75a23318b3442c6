package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

// printer writes command results in the chosen format: plain tables with
// humanized times, the API's JSON object, or nothing.
type printer struct {
	format string
	w      io.Writer
}

func out(c *cli.Context) (*printer, error) {
	f := c.String(flagOutput)
	switch f {
	case "plain", "json", "silent":
	default:
		return nil, fmt.Errorf("--output %q must be plain, json or silent", f)
	}
	return &printer{format: f, w: c.App.Writer}, nil
}

// result prints v as JSON (wrapped in {name: v}, like the API), or as a
// table built by rows.
func (p *printer) result(name string, v any, header []string, rows [][]string) error {
	switch p.format {
	case "json":
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		if name == "" {
			return enc.Encode(v)
		}
		return enc.Encode(map[string]any{name: v})
	case "silent":
		return nil
	}
	table(p.w, header, rows)
	return nil
}

// message prints a line in plain mode only.
func (p *printer) message(format string, args ...any) {
	if p.format == "plain" {
		fmt.Fprintf(p.w, format+"\n", args...)
	}
}

// table writes an aligned table; headers are upper-cased.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(header) > 0 {
		up := make([]string, len(header))
		for i, h := range header {
			up[i] = strings.ToUpper(h)
		}
		fmt.Fprintln(tw, strings.Join(up, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// kv renders one object as a two-column table.
func kv(pairs ...string) [][]string {
	var rows [][]string
	for i := 0; i+1 < len(pairs); i += 2 {
		rows = append(rows, []string{pairs[i] + ":", pairs[i+1]})
	}
	return rows
}

// humanTime renders epoch ms relative to now ("3 minutes ago"); 0 is "never".
func humanTime(ms int64) string {
	if ms == 0 {
		return "never"
	}
	return humanDuration(time.Since(time.UnixMilli(ms)))
}

func humanDuration(d time.Duration) string {
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		s = plural(int(d/time.Second), "second")
	case d < time.Hour:
		s = plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(int(d/time.Hour), "hour")
	case d < 60*24*time.Hour:
		s = plural(int(d/(24*time.Hour)), "day")
	default:
		s = plural(int(d/(30*24*time.Hour)), "month")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// usageError is a mistake in the command line itself.
func usageError(c *cli.Context, format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...)+fmt.Sprintf("\nusage: %s %s", c.Command.HelpName, c.Command.ArgsUsage), 2)
}

// args checks the positional argument count.
func args(c *cli.Context, n int) error {
	if c.NArg() != n {
		return usageError(c, "%s takes %d argument(s), got %d", c.Command.Name, n, c.NArg())
	}
	return nil
}
