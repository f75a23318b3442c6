package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/store/model"
)

func roleCommand() *cli.Command {
	permFlag := &cli.StringSliceFlag{Name: "permission", Aliases: []string{"p"},
		Usage: "RESOURCES=ACTIONS, e.g. 'namespaces:team-a,pipelines:.*,runs=read,write' (repeatable)"}
	return &cli.Command{
		Name:    "role",
		Aliases: []string{"roles"},
		Usage:   "manage roles: named sets of permissions tokens carry",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list roles", Flags: pageFlags(), Action: roleList},
			{Name: "get", Usage: "show a role", ArgsUsage: "ID", Action: roleGet},
			{Name: "create", Usage: "create a role", ArgsUsage: "ID",
				Flags: []cli.Flag{&cli.StringFlag{Name: "description", Aliases: []string{"d"}, Usage: "what the role is for"}, permFlag}, Action: roleCreate},
			{Name: "update", Usage: "change a role's description or replace its permissions", ArgsUsage: "ID",
				Flags: []cli.Flag{&cli.StringFlag{Name: "description", Aliases: []string{"d"}, Usage: "new description"}, permFlag}, Action: roleUpdate},
			{Name: "delete", Usage: "delete a role no token uses", ArgsUsage: "ID", Action: roleDelete},
		},
	}
}

// parsePermission reads "res1,res2=read,write".
func parsePermission(s string) (model.Permission, error) {
	res, acts, ok := strings.Cut(s, "=")
	if !ok || res == "" || acts == "" {
		return model.Permission{}, fmt.Errorf("--permission %q must be RESOURCES=ACTIONS, e.g. 'pipelines:.*,runs=read,write'", s)
	}
	var p model.Permission
	for _, r := range strings.Split(res, ",") {
		if r = strings.TrimSpace(r); r != "" {
			p.Resources = append(p.Resources, r)
		}
	}
	for _, a := range strings.Split(acts, ",") {
		if a = strings.TrimSpace(a); a != "" {
			p.Actions = append(p.Actions, model.Action(a))
		}
	}
	return p, nil
}

func permissionsOf(c *cli.Context) ([]model.Permission, error) {
	var perms []model.Permission
	for _, raw := range c.StringSlice("permission") {
		p, err := parsePermission(raw)
		if err != nil {
			return nil, usageError(c, "%s", err)
		}
		perms = append(perms, p)
	}
	return perms, nil
}

func describePermissions(perms []model.Permission) string {
	parts := make([]string, len(perms))
	for i, p := range perms {
		acts := make([]string, len(p.Actions))
		for j, a := range p.Actions {
			acts[j] = string(a)
		}
		parts[i] = strings.Join(p.Resources, ",") + "=" + strings.Join(acts, ",")
	}
	return strings.Join(parts, "; ")
}

var roleHeader = []string{"id", "description", "permissions", "built in"}

func roleRows(list ...*model.Role) [][]string {
	rows := make([][]string, len(list))
	for i, r := range list {
		rows[i] = []string{r.ID, orDash(r.Description), describePermissions(r.Permissions), fmt.Sprint(r.SystemRole)}
	}
	return rows
}

func roleList(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	list, err := cl.ListRoles(c.Context, pageOf(c))
	if err != nil {
		return err
	}
	return p.result("roles", list, roleHeader, roleRows(list...))
}

func roleGet(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	r, err := cl.GetRole(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	return p.result("role", r, roleHeader, roleRows(r))
}

func roleCreate(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	perms, err := permissionsOf(c)
	if err != nil {
		return err
	}
	if len(perms) == 0 {
		return usageError(c, "a role needs at least one --permission")
	}
	r, err := cl.CreateRole(c.Context, c.Args().First(), c.String("description"), perms)
	if err != nil {
		return err
	}
	if p.format == "plain" {
		p.message("✓ Created role %q: %s", r.ID, describePermissions(r.Permissions))
		return nil
	}
	return p.result("role", r, nil, nil)
}

func roleUpdate(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	var desc *string
	if c.IsSet("description") {
		d := c.String("description")
		desc = &d
	}
	var perms *[]model.Permission
	if c.IsSet("permission") {
		list, err := permissionsOf(c)
		if err != nil {
			return err
		}
		perms = &list
	}
	if desc == nil && perms == nil {
		return usageError(c, "nothing to update: pass --description and/or --permission")
	}
	r, err := cl.UpdateRole(c.Context, c.Args().First(), desc, perms)
	if err != nil {
		return err
	}
	if p.format == "plain" {
		p.message("✓ Updated role %q: %s", r.ID, describePermissions(r.Permissions))
		return nil
	}
	return p.result("role", r, nil, nil)
}

func roleDelete(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	if err := cl.DeleteRole(c.Context, c.Args().First()); err != nil {
		return err
	}
	p.message("✓ Deleted role %q", c.Args().First())
	return nil
}
