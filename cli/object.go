package cli

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// objectCommand is `pipeline object …` (run false) or `run object …`
// (run true): the same verbs, with RUN after PIPELINE for run objects.
func objectCommand(run bool) *cli.Command {
	scope, what := "PIPELINE", "pipeline"
	if run {
		scope, what = "PIPELINE RUN", "run"
	}
	return &cli.Command{
		Name:    "object",
		Aliases: []string{"objects"},
		Usage:   fmt.Sprintf("manage %s objects, which tasks receive through %s_object{{KEY}}", what, what),
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list a " + what + "'s objects", ArgsUsage: scope, Flags: pageFlags(), Action: objectList(run)},
			{Name: "get", Usage: "write an object's bytes to standard output", ArgsUsage: scope + " KEY", Action: objectGet(run)},
			{Name: "put", Usage: "store an object", ArgsUsage: scope + " KEY FILE|@-",
				Description: "FILE is read as is; @- (or @) reads standard input. Objects are capped by the server's object_store.max_object_bytes.",
				Flags:       []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace the object if the key exists"}},
				Action:      objectPut(run)},
			{Name: "delete", Usage: "delete an object (asks first)", ArgsUsage: scope + " KEY", Flags: []cli.Flag{yesFlag()}, Action: objectDelete(run)},
		},
	}
}

// objectSetup is setup for object commands: it checks for PIPELINE [RUN]
// plus rest arguments and returns the scope and the arguments after it.
func objectSetup(c *cli.Context, run bool, rest int) (*printer, *client.Client, client.ObjectScope, []string, error) {
	n := 1 + rest
	if run {
		n++
	}
	p, cl, err := setup(c, n)
	if err != nil {
		return nil, nil, client.ObjectScope{}, nil, err
	}
	a := c.Args().Slice()
	sc := client.ObjectScope{Pipeline: a[0]}
	if !run {
		return p, cl, sc, a[1:], nil
	}
	sc.Run, err = parseNumber(c, "RUN", a[1])
	return p, cl, sc, a[2:], err
}

var objectHeader = []string{"key", "size", "created"}

func objectRows(list ...*model.Object) [][]string {
	rows := make([][]string, len(list))
	for i, o := range list {
		rows[i] = []string{o.Key, strconv.FormatInt(o.Size, 10) + " B", humanTime(o.Created)}
	}
	return rows
}

func objectList(run bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, sc, _, err := objectSetup(c, run, 0)
		if err != nil {
			return err
		}
		list, err := cl.ListObjects(c.Context, sc, pageOf(c))
		if err != nil {
			return err
		}
		return p.result("objects", list, objectHeader, objectRows(list...))
	}
}

func objectGet(run bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		_, cl, sc, a, err := objectSetup(c, run, 1)
		if err != nil {
			return err
		}
		data, err := cl.GetObject(c.Context, sc, a[0])
		if err != nil {
			return err
		}
		_, err = c.App.Writer.Write(data)
		return err
	}
}

func objectPut(run bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, sc, a, err := objectSetup(c, run, 2)
		if err != nil {
			return err
		}
		src := a[1]
		if src != "@" && src != "@-" {
			src = "@" + src // a path, read as is
		}
		data, err := readValue(src)
		if err != nil {
			return err
		}
		o, err := cl.PutObject(c.Context, sc, a[0], data, c.Bool("force"))
		if err != nil {
			return err
		}
		if p.format == "plain" {
			p.message("✓ Stored object %q (%d bytes)", o.Key, o.Size)
			return nil
		}
		return p.result("object", o, objectHeader, objectRows(o))
	}
}

func objectDelete(run bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, sc, a, err := objectSetup(c, run, 1)
		if err != nil {
			return err
		}
		what := fmt.Sprintf("object %q of pipeline %q", a[0], c.Args().First())
		if run {
			what = fmt.Sprintf("object %q of run %s of pipeline %q", a[0], c.Args().Get(1), c.Args().First())
		}
		if err := confirm(c, func() string { return fmt.Sprintf("Delete %s?", what) }); err != nil {
			return err
		}
		if err := cl.DeleteObject(c.Context, sc, a[0]); err != nil {
			return err
		}
		p.message("✓ Deleted object %q", a[0])
		return nil
	}
}
