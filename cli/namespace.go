package cli

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// pageFlags are the pagination flags every list command takes.
func namespaceCommand() *cli.Command {
	return &cli.Command{
		Name:    "namespace",
		Aliases: []string{"namespaces", "ns"},
		Usage:   "manage namespaces, which group pipelines",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list namespaces", Flags: pageFlags(), Action: namespaceList},
			{Name: "get", Usage: "show a namespace", ArgsUsage: "ID", Action: namespaceGet},
			{Name: "create", Usage: "create a namespace", ArgsUsage: "ID",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "name", Usage: "human-readable name (default: the id)"},
					&cli.StringFlag{Name: "description", Aliases: []string{"d"}, Usage: "what the namespace is for"},
				}, Action: namespaceCreate},
			{Name: "update", Usage: "change a namespace's name or description", ArgsUsage: "ID",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "name", Usage: "new human-readable name"},
					&cli.StringFlag{Name: "description", Aliases: []string{"d"}, Usage: "new description"},
				}, Action: namespaceUpdate},
			{Name: "delete", Usage: "delete a namespace and every pipeline in it (asks first)", ArgsUsage: "ID",
				Flags: []cli.Flag{yesFlag()}, Action: namespaceDelete},
		},
	}
}

func namespaceRows(list ...*model.Namespace) [][]string {
	rows := make([][]string, len(list))
	for i, ns := range list {
		rows[i] = []string{ns.ID, ns.Name, orDash(ns.Description), humanTime(ns.Created)}
	}
	return rows
}

var namespaceHeader = []string{"id", "name", "description", "created"}

func namespaceList(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	list, err := cl.ListNamespaces(c.Context, pageOf(c))
	if err != nil {
		return err
	}
	return p.result("namespaces", list, namespaceHeader, namespaceRows(list...))
}

func namespaceGet(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	ns, err := cl.GetNamespace(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	return p.result("namespace", ns, nil, kv("id", ns.ID, "name", ns.Name, "description", orDash(ns.Description),
		"created", humanTime(ns.Created), "modified", humanTime(ns.Modified)))
}

func namespaceCreate(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	ns, err := cl.CreateNamespace(c.Context, c.Args().First(), c.String("name"), c.String("description"))
	if err != nil {
		return err
	}
	if p.format == "plain" {
		p.message("✓ Created namespace %q", ns.ID)
		return nil
	}
	return p.result("namespace", ns, namespaceHeader, namespaceRows(ns))
}

func namespaceUpdate(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	var name, desc *string
	if c.IsSet("name") {
		v := c.String("name")
		name = &v
	}
	if c.IsSet("description") {
		v := c.String("description")
		desc = &v
	}
	if name == nil && desc == nil {
		return usageError(c, "nothing to update: pass --name and/or --description")
	}
	ns, err := cl.UpdateNamespace(c.Context, c.Args().First(), name, desc)
	if err != nil {
		return err
	}
	if p.format == "plain" {
		p.message("✓ Updated namespace %q", ns.ID)
		return nil
	}
	return p.result("namespace", ns, namespaceHeader, namespaceRows(ns))
}

func namespaceDelete(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	id := c.Args().First()
	question := func() string {
		const page = 1000
		inNS, err := client.New([]string{c.String(flagAPIBaseURL)}, client.WithToken(c.String(flagToken)), client.WithNamespace(id),
			client.WithTLS(cliTLS(c)))
		if err == nil {
			var list []*model.Pipeline
			if list, err = inNS.Consistent().ListPipelines(c.Context, client.Page{Limit: page}); err == nil {
				return fmt.Sprintf("Delete namespace %q and its %s with all their runs?", id, countWords(len(list), page, "pipeline"))
			}
		}
		return fmt.Sprintf("Delete namespace %q with every pipeline and run in it?", id)
	}
	if err := confirm(c, question); err != nil {
		return err
	}
	if err := cl.DeleteNamespace(c.Context, id); err != nil {
		return err
	}
	p.message("✓ Deleted namespace %q", c.Args().First())
	return nil
}

// setup checks the argument count and returns the printer and client.
func setup(c *cli.Context, nargs int) (*printer, *client.Client, error) {
	if err := args(c, nargs); err != nil {
		return nil, nil, err
	}
	p, err := out(c)
	if err != nil {
		return nil, nil, err
	}
	cl, err := newClient(c)
	if err != nil {
		return nil, nil, err
	}
	return p, cl, nil
}

// setupNumbered is setup for commands taking NAME NUMBER (a pipeline and
// a version, say); it returns the parsed number.
func setupNumbered(c *cli.Context, what string) (*printer, *client.Client, int64, error) {
	if err := args(c, 2); err != nil {
		return nil, nil, 0, err
	}
	return setupNumberedArgs(c, what)
}

// setupNumberedArgs is setupNumbered once the argument count is checked:
// the second argument is the number.
func setupNumberedArgs(c *cli.Context, what string) (*printer, *client.Client, int64, error) {
	p, err := out(c)
	if err != nil {
		return nil, nil, 0, err
	}
	cl, err := newClient(c)
	if err != nil {
		return nil, nil, 0, err
	}
	n, err := parseNumber(c, what, c.Args().Get(1))
	return p, cl, n, err
}

func parseNumber(c *cli.Context, what, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, usageError(c, "%s must be a non-negative number, got %q", what, s)
	}
	return n, nil
}
