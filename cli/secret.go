package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

func secretCommand() *cli.Command {
	force := &cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace the secret if the key exists"}
	include := &cli.BoolFlag{Name: "include-secret", Aliases: []string{"i"}, Usage: "also print the plaintext value"}
	valueHelp := "VALUE is the secret itself, @FILE reads it from a file, @- (or @) from standard input " +
		"(a value on the command line ends up in your shell history)."
	return &cli.Command{
		Name:    "secret",
		Aliases: []string{"secrets"},
		Usage:   "manage secrets, which tasks receive through pipeline_secret{{KEY}} and global_secret{{KEY}}",
		Subcommands: []*cli.Command{
			{
				Name:  "pipeline",
				Usage: "secrets of one pipeline (in the --namespace)",
				Subcommands: []*cli.Command{
					{Name: "list", Usage: "list a pipeline's secrets (keys, never values)", ArgsUsage: "PIPELINE", Flags: pageFlags(), Action: secretList(true)},
					{Name: "get", Usage: "show a secret's metadata (and value with -i)", ArgsUsage: "PIPELINE KEY", Flags: []cli.Flag{include}, Action: secretGet(true)},
					{Name: "put", Usage: "store a secret", ArgsUsage: "PIPELINE KEY VALUE|@FILE|@-", Description: valueHelp,
						Flags: []cli.Flag{force}, Action: secretPut(true)},
					{Name: "delete", Usage: "delete a secret (asks first)", ArgsUsage: "PIPELINE KEY", Flags: []cli.Flag{yesFlag()}, Action: secretDelete(true)},
				},
			},
			{
				Name:  "global",
				Usage: "cluster-wide secrets, for the namespaces they allow (admins only)",
				Subcommands: []*cli.Command{
					{Name: "list", Usage: "list global secrets (keys, never values)", Flags: pageFlags(), Action: secretList(false)},
					{Name: "get", Usage: "show a global secret's metadata (and value with -i)", ArgsUsage: "KEY", Flags: []cli.Flag{include}, Action: secretGet(false)},
					{Name: "put", Usage: "store a global secret", ArgsUsage: "KEY VALUE|@FILE|@-", Description: valueHelp,
						Flags: []cli.Flag{force, &cli.StringSliceFlag{Name: "namespaces", Value: cli.NewStringSlice(".*"),
							Usage: "regular expression of the namespaces whose runs may use it; matches the whole id (repeatable)"}},
						Action: secretPut(false)},
					{Name: "delete", Usage: "delete a global secret (asks first)", ArgsUsage: "KEY", Flags: []cli.Flag{yesFlag()}, Action: secretDelete(false)},
				},
			},
		},
	}
}

// secretSetup is setup for secret commands: it checks for PIPELINE (for
// pipeline secrets) plus rest arguments and returns the scope and the
// arguments after PIPELINE.
func secretSetup(c *cli.Context, pipeline bool, rest int) (*printer, *client.Client, client.SecretScope, []string, error) {
	var sc client.SecretScope
	n := rest
	if pipeline {
		n++
	}
	p, cl, err := setup(c, n)
	if err != nil {
		return nil, nil, sc, nil, err
	}
	a := c.Args().Slice()
	if pipeline {
		sc.Pipeline, a = a[0], a[1:]
	}
	return p, cl, sc, a, nil
}

var secretHeader = []string{"key", "namespaces", "created", "modified"}

func secretRows(list ...*model.Secret) [][]string {
	rows := make([][]string, len(list))
	for i, s := range list {
		rows[i] = []string{s.Key, orDash(strings.Join(s.Namespaces, " ")), humanTime(s.Created), humanTime(s.Modified)}
	}
	return rows
}

func secretList(pipeline bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, sc, _, err := secretSetup(c, pipeline, 0)
		if err != nil {
			return err
		}
		list, err := cl.ListSecrets(c.Context, sc, pageOf(c))
		if err != nil {
			return err
		}
		return p.result("secrets", list, secretHeader, secretRows(list...))
	}
}

func secretGet(pipeline bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, sc, a, err := secretSetup(c, pipeline, 1)
		if err != nil {
			return err
		}
		v, err := cl.GetSecret(c.Context, sc, a[0], c.Bool("include-secret"))
		if err != nil {
			return err
		}
		s := v.Metadata
		rows := kv("key", s.Key, "namespaces", orDash(strings.Join(s.Namespaces, " ")),
			"created", humanTime(s.Created), "modified", humanTime(s.Modified))
		if v.Secret != nil {
			rows = append(rows, kv("secret", *v.Secret)...)
		}
		return p.result("", v, nil, rows)
	}
}

func secretPut(pipeline bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, sc, a, err := secretSetup(c, pipeline, 2)
		if err != nil {
			return err
		}
		value, err := readValue(a[1])
		if err != nil {
			return err
		}
		s, err := cl.PutSecret(c.Context, sc, a[0], strings.TrimRight(string(value), "\r\n"), c.StringSlice("namespaces"), c.Bool("force"))
		if err != nil {
			return err
		}
		if p.format == "plain" {
			if pipeline {
				p.message("✓ Stored secret %q for pipeline %s; tasks read it with pipeline_secret{{%s}}", s.Key, sc.Pipeline, s.Key)
			} else {
				p.message("✓ Stored global secret %q for namespaces %s; tasks read it with global_secret{{%s}}", s.Key, strings.Join(s.Namespaces, " "), s.Key)
			}
			return nil
		}
		return p.result("secret", s, secretHeader, secretRows(s))
	}
}

func secretDelete(pipeline bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, sc, a, err := secretSetup(c, pipeline, 1)
		if err != nil {
			return err
		}
		what := fmt.Sprintf("global secret %q", a[0])
		if pipeline {
			what = fmt.Sprintf("secret %q of pipeline %q", a[0], c.Args().First())
		}
		if err := confirm(c, func() string { return fmt.Sprintf("Delete %s? Its value cannot be read back.", what) }); err != nil {
			return err
		}
		if err := cl.DeleteSecret(c.Context, sc, a[0]); err != nil {
			return err
		}
		p.message("✓ Deleted secret %q", a[0])
		return nil
	}
}

// readValue turns a VALUE argument into bytes: @- or @ reads standard
// input, @FILE a file, anything else is the value itself.
func readValue(arg string) ([]byte, error) {
	switch {
	case arg == "@" || arg == "@-":
		return io.ReadAll(os.Stdin)
	case strings.HasPrefix(arg, "@"):
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", arg[1:], err)
		}
		return b, nil
	}
	return []byte(arg), nil
}
