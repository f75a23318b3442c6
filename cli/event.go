package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/store/model"
)

func eventCommand() *cli.Command {
	return &cli.Command{
		Name:    "event",
		Aliases: []string{"events"},
		Usage:   "read the cluster's event log",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list events, newest first; --follow streams new ones as they happen",
				Flags: append(timePageFlags(), &cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep streaming new events (after the listed ones)"},
					&cli.StringFlag{Name: "kind", Usage: "only events of this kind (audit: the audit log of API writes)"}),
				Action: eventList},
			{Name: "get", Usage: "show one event", ArgsUsage: "ID", Action: eventGet},
		},
	}
}

var eventHeader = []string{"id", "kind", "details", "actor", "emitted"}

func eventRow(e *model.Event) []string {
	return []string{strconv.FormatUint(e.ID, 10), e.Kind, orDash(detailWords(e.Details)), e.Actor, humanTime(e.Emitted)}
}

// detailWords renders details as "k=v k=v", keys sorted; a value that is
// empty or holds a space is quoted so the words still split.
func detailWords(d model.EventDetails) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := d.String(k)
		if v == "" || strings.ContainsAny(v, " \t\n\"") {
			v = strconv.Quote(v)
		}
		parts[i] = k + "=" + v
	}
	return strings.Join(parts, " ")
}

func eventList(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	if c.Bool("follow") {
		// Follow prints each event as one line (plain) or one JSON object
		// per line, starting with the stored history.
		if p.format == "plain" {
			table(p.w, eventHeader, nil)
		}
		return cl.StreamEvents(c.Context, true, func(e *model.Event) error {
			if k := c.String("kind"); k != "" && e.Kind != k {
				return nil
			}
			switch p.format {
			case "json":
				b, _ := json.Marshal(e)
				fmt.Fprintln(p.w, string(b))
			case "plain":
				fmt.Fprintln(p.w, strings.Join(eventRow(e), "  "))
			}
			return nil
		})
	}
	var list []*model.Event
	if k := c.String("kind"); k != "" {
		list, err = cl.ListEventsOfKind(c.Context, timePageOf(c), k)
	} else {
		list, err = cl.ListEvents(c.Context, timePageOf(c))
	}
	if err != nil {
		return err
	}
	rows := make([][]string, len(list))
	for i, e := range list {
		rows[i] = eventRow(e)
	}
	return p.result("events", list, eventHeader, rows)
}

func eventGet(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	id, err := parseNumber(c, "ID", c.Args().First())
	if err != nil {
		return err
	}
	e, err := cl.GetEvent(c.Context, uint64(id))
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("event", e, nil, nil)
	}
	// One event as key/value lines: its details whole, where the list
	// cuts them to fit the table.
	table(p.w, nil, kv("id", strconv.FormatUint(e.ID, 10), "kind", e.Kind, "namespace", orDash(e.NamespaceID),
		"pipeline", orDash(e.PipelineID), "actor", e.Actor, "emitted", humanTime(e.Emitted), "details", orDash(detailWords(e.Details))))
	return nil
}
