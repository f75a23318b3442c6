package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:    "token",
		Aliases: []string{"tokens"},
		Usage:   "manage API tokens",
		Subcommands: []*cli.Command{
			{Name: "bootstrap", Usage: "create the cluster's first admin token (works once)", Action: tokenBootstrap},
			{Name: "whoami", Usage: "show the token you are using", Action: tokenWhoami},
			{Name: "list", Usage: "list tokens (admin)", Flags: pageFlags(), Action: tokenList},
			{Name: "get", Usage: "show a token", ArgsUsage: "ID", Action: tokenGet},
			{Name: "create", Usage: "create a token; its secret is printed once", ArgsUsage: "USER",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "role", Aliases: []string{"r"}, Usage: "role to grant (repeatable)", Value: cli.NewStringSlice(model.RoleUser)},
					&cli.DurationFlag{Name: "expires", Aliases: []string{"e"}, Usage: "lifetime, e.g. 24h or 720h; 0 never expires", Value: 0},
					&cli.StringSliceFlag{Name: "metadata", Aliases: []string{"m"}, Usage: "KEY=VALUE to attach (repeatable)"},
				}, Action: tokenCreate},
			{Name: "enable", Usage: "enable a token", ArgsUsage: "ID", Action: tokenSetDisabled(false)},
			{Name: "disable", Usage: "disable a token", ArgsUsage: "ID", Action: tokenSetDisabled(true)},
			{Name: "delete", Usage: "delete a token", ArgsUsage: "ID", Action: tokenDelete},
		},
	}
}

var tokenHeader = []string{"id", "user", "roles", "created", "expires", "disabled"}

func tokenRows(list ...*model.Token) [][]string {
	rows := make([][]string, len(list))
	for i, t := range list {
		rows[i] = []string{t.ID, t.User, strings.Join(t.Roles, ","), humanTime(t.Created), expiry(t.Expires), fmt.Sprint(t.Disabled)}
	}
	return rows
}

func expiry(ms int64) string {
	if ms == 0 {
		return "never"
	}
	return humanTime(ms)
}

func printNewToken(p *printer, t *client.TokenWithSecret, what string) error {
	if p.format != "plain" {
		return p.result("", t, nil, nil)
	}
	p.message("✓ Created %s %s for %q (roles: %s)", what, t.Token.ID, t.Token.User, strings.Join(t.Token.Roles, ","))
	p.message("")
	p.message("  Secret (shown only now; store it safely): %s", t.Secret)
	p.message("")
	p.message("  Use it with: export GOFER_TOKEN=%s", t.Secret)
	return nil
}

func tokenBootstrap(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	t, err := cl.BootstrapToken(c.Context)
	if err != nil {
		return err
	}
	return printNewToken(p, t, "bootstrap admin token")
}

func tokenWhoami(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	t, err := cl.WhoAmI(c.Context)
	if err != nil {
		return err
	}
	return p.result("token", t, tokenHeader, tokenRows(t))
}

func tokenList(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	list, err := cl.ListTokens(c.Context, pageOf(c))
	if err != nil {
		return err
	}
	return p.result("tokens", list, tokenHeader, tokenRows(list...))
}

func tokenGet(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	t, err := cl.GetToken(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("token", t, nil, nil)
	}
	var meta []string
	for k, v := range t.Metadata {
		meta = append(meta, k+"="+v)
	}
	sort.Strings(meta)
	table(p.w, nil, kv("id", t.ID, "user", t.User, "roles", strings.Join(t.Roles, ","), "metadata", orDash(strings.Join(meta, ", ")),
		"created", humanTime(t.Created), "expires", expiry(t.Expires), "disabled", fmt.Sprint(t.Disabled)))
	return nil
}

func tokenCreate(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	meta := map[string]string{}
	for _, m := range c.StringSlice("metadata") {
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" {
			return usageError(c, "--metadata %q must be KEY=VALUE", m)
		}
		meta[k] = v
	}
	expires := c.Duration("expires")
	if expires < 0 || (expires > 0 && expires < time.Second) {
		return usageError(c, "--expires must be 0 (never) or at least 1s")
	}
	t, err := cl.CreateToken(c.Context, c.Args().First(), c.StringSlice("role"), int64(expires/time.Second), meta)
	if err != nil {
		return err
	}
	return printNewToken(p, t, "token")
}

func tokenSetDisabled(disabled bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, err := setup(c, 1)
		if err != nil {
			return err
		}
		t, err := cl.SetTokenDisabled(c.Context, c.Args().First(), disabled)
		if err != nil {
			return err
		}
		state := "enabled"
		if t.Disabled {
			state = "disabled"
		}
		if p.format == "plain" {
			p.message("✓ Token %s is %s", t.ID, state)
			return nil
		}
		return p.result("token", t, nil, nil)
	}
}

func tokenDelete(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	if err := cl.DeleteToken(c.Context, c.Args().First()); err != nil {
		return err
	}
	p.message("✓ Deleted token %s", c.Args().First())
	return nil
}
