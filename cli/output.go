package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
)

// printer writes command results in the chosen format: plain tables with
// humanized times, the API's JSON object, or nothing.
type printer struct {
	format string
	w      io.Writer
	// c is the command being run: a list command (one with --limit)
	// learns from it whether the page it printed was full.
	c *cli.Context
}

func out(c *cli.Context) (*printer, error) {
	f := c.String(flagOutput)
	switch f {
	case "plain", "json", "silent":
	default:
		return nil, fmt.Errorf("--output %q must be plain, json or silent", f)
	}
	return &printer{format: f, w: c.App.Writer, c: c}, nil
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
	p.moreHint(len(rows))
	return nil
}

// serverPageLimit is the page size the server uses when --limit is not
// given (docs/api.md, "Pagination").
const serverPageLimit = 50

// moreHint tells on stderr, after a list table, that the page was full
// and how to see the next one: a list is a page, and without the hint a
// user reading 50 rows cannot tell there are 400. It is silent for
// commands without --limit, for -o json (scripts page by count) and for
// a short page (the end of the list).
func (p *printer) moreHint(n int) {
	if p.c == nil || !hasFlag(p.c.Command, "limit") || n == 0 {
		return
	}
	limit := p.c.Int("limit")
	if limit <= 0 {
		limit = serverPageLimit
	}
	if n < limit {
		return
	}
	next := p.c.Int("offset") + n
	fmt.Fprintf(p.c.App.ErrWriter, "showing %d; more with --offset %d\n", n, next)
}

func hasFlag(cmd *cli.Command, name string) bool {
	if cmd == nil {
		return false
	}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// pageFlags are a list's paging flags for lists in name order
// (namespaces, pipelines, secrets, …): alphabetical, --reverse for Z–A.
func pageFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "limit", Aliases: []string{"l"}, Usage: "at most this many items (server default 50, max 1000)"},
		&cli.IntFlag{Name: "offset", Usage: "skip this many items"},
		&cli.BoolFlag{Name: "reverse", Aliases: []string{"r"}, Usage: "last first"},
	}
}

func pageOf(c *cli.Context) client.Page {
	return client.Page{Limit: c.Int("limit"), Offset: c.Int("offset"), Reverse: c.Bool("reverse")}
}

// timePageFlags are the paging flags of lists in time order (runs,
// events, config versions, deployments): newest first, as a user asking
// "what happened" expects; --oldest-first for the API's own order.
func timePageFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "limit", Aliases: []string{"l"}, Usage: "at most this many items (server default 50, max 1000)"},
		&cli.IntFlag{Name: "offset", Usage: "skip this many items (from the newest)"},
		&cli.BoolFlag{Name: "oldest-first", Usage: "oldest first (the default is newest first)"},
		// --reverse meant "newest first" before that became the default;
		// scripts passing it keep working.
		&cli.BoolFlag{Name: "reverse", Aliases: []string{"r"}, Hidden: true, Usage: "newest first: the default, accepted for older scripts"},
	}
}

func timePageOf(c *cli.Context) client.Page {
	return client.Page{Limit: c.Int("limit"), Offset: c.Int("offset"), Reverse: !c.Bool("oldest-first")}
}

// message prints a line in plain mode only.
func (p *printer) message(format string, args ...any) {
	if p.format == "plain" {
		fmt.Fprintf(p.w, format+"\n", args...)
	}
}

// tableWidth is the widest a list table may be: wider rows wrap on an
// ordinary terminal and the columns stop lining up.
const tableWidth = 120

// minCellWidth is the narrowest fitTable shortens a column to, so a cut
// value still says something.
const minCellWidth = 12

// columnGap is the space between columns.
const columnGap = 2

// table writes an aligned table; headers are upper-cased. A table with a
// header (a list) is fitted to tableWidth columns by shortening its
// widest cells (-o json shows them whole); a two-column key/value table
// is printed as it is, as it may hold a value the user must copy.
func table(w io.Writer, header []string, rows [][]string) {
	if len(header) > 0 {
		up := make([]string, len(header))
		for i, h := range header {
			up[i] = strings.ToUpper(h)
		}
		rows = append([][]string{up}, fitTable(up, rows, tableWidth)...)
	}
	writeAligned(w, rows)
}

// writeAligned writes rows as text/tabwriter does with columnGap padding
// (every cell but a line's last padded to its column's widest plus the
// gap), measuring cells by display width (displayWidth) rather than runes,
// so a cell with wide characters does not shift the columns after it.
func writeAligned(w io.Writer, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i := 0; i < len(r)-1; i++ {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], displayWidth(r[i]))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, cell := range r {
			b.WriteString(cell)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-displayWidth(cell)+columnGap))
			}
		}
		b.WriteByte('\n')
	}
	io.WriteString(w, b.String())
}

// fitTable returns rows whose widest cells are cut (ending in "…") so
// that header and rows line up in at most width columns (display width:
// a wide character counts two). It narrows the
// widest column first, never below minCellWidth or its header, so short
// columns (ids, states, times) stay whole.
func fitTable(header []string, rows [][]string, width int) [][]string {
	widths := make([]int, len(header))
	floor := make([]int, len(header))
	for i, h := range header {
		widths[i] = displayWidth(h)
		floor[i] = max(widths[i], minCellWidth)
	}
	for _, r := range rows {
		for i, cell := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], displayWidth(cell))
			}
		}
	}
	total := func() int {
		n := columnGap * (len(widths) - 1)
		for _, w := range widths {
			n += w
		}
		return n
	}
	cut := false
	for over := total() - width; over > 0; over = total() - width {
		widest := -1
		for i, w := range widths {
			if w > floor[i] && (widest < 0 || w > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break // every column is as narrow as it may be
		}
		// Narrow the widest column to the next widest (or by what is
		// over), so several long columns share the cut.
		next := floor[widest]
		for i, w := range widths {
			if i != widest && w < widths[widest] && w > next {
				next = w
			}
		}
		widths[widest] = max(next, widths[widest]-over, floor[widest])
		cut = true
	}
	if !cut {
		return rows
	}
	out := make([][]string, len(rows))
	for j, r := range rows {
		out[j] = make([]string, len(r))
		for i, cell := range r {
			if i < len(widths) {
				cell = ellipsize(cell, widths[i])
			}
			out[j][i] = cell
		}
	}
	return out
}

// ellipsize cuts s to at most n columns (display width), the last one "…".
func ellipsize(s string, n int) string {
	if displayWidth(s) <= n {
		return s
	}
	return truncateWidth(s, n-1) + "…"
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
