package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// Extensions and pipeline subscriptions (docs/extensions.md). The
// leader's supervisor runs each installed extension's container.

func extensionCommand() *cli.Command {
	return &cli.Command{
		Name:    "extension",
		Aliases: []string{"extensions"},
		Usage:   "install and manage extensions",
		Subcommands: []*cli.Command{
			{Name: "install", Usage: "install (or reinstall, rotating its token) an extension; its token's secret is printed once",
				ArgsUsage: "ID IMAGE",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "config", Aliases: []string{"c"}, Usage: "KEY=VALUE install setting (repeatable)"},
					&cli.StringSliceFlag{Name: "additional-role", Usage: "role the extension's token also holds (repeatable)"},
					&cli.BoolFlag{Name: "pull", Usage: "let the supervisor pull the image (at every start); without it the image must be on the engine"},
				}, Action: extensionInstall},
			{Name: "logs", Usage: "print the extension container's output", ArgsUsage: "ID",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing until the container exits"}},
				Action: extensionLogs},
			{Name: "uninstall", Usage: "remove an extension and every subscription to it (asks first)", ArgsUsage: "ID", Flags: []cli.Flag{yesFlag()}, Action: extensionUninstall},
			{Name: "list", Usage: "list installed extensions", Flags: pageFlags(), Action: extensionList},
			{Name: "get", Usage: "show an extension", ArgsUsage: "ID", Action: extensionGet},
			{Name: "enable", Usage: "let the extension's token start runs again", ArgsUsage: "ID", Action: extensionSetEnabled(true)},
			{Name: "disable", Usage: "stop the extension's token from starting runs", ArgsUsage: "ID", Action: extensionSetEnabled(false)},
			{Name: "debug", Usage: "show the running extension's debug dump (admins)", ArgsUsage: "ID", Action: extensionDebug},
		},
	}
}

// pipelineSubscriptionCommands are `gofer pipeline subscribe|unsubscribe`
// and `gofer pipeline subscription …`.
func pipelineSubscriptionCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "subscribe", Usage: "subscribe a pipeline to an extension's trigger", ArgsUsage: "PIPELINE EXTENSION LABEL",
			Flags:  []cli.Flag{&cli.StringSliceFlag{Name: "setting", Aliases: []string{"s"}, Usage: "KEY=VALUE subscription setting (repeatable)"}},
			Action: subscriptionCreate},
		{Name: "unsubscribe", Usage: "remove a pipeline's subscription", ArgsUsage: "PIPELINE EXTENSION LABEL", Action: subscriptionDelete},
		{
			Name:    "subscription",
			Aliases: []string{"subscriptions"},
			Usage:   "show and manage a pipeline's subscriptions",
			Subcommands: []*cli.Command{
				{Name: "list", Usage: "list a pipeline's subscriptions", ArgsUsage: "PIPELINE", Flags: pageFlags(), Action: subscriptionList},
				{Name: "get", Usage: "show a subscription", ArgsUsage: "PIPELINE EXTENSION LABEL", Action: subscriptionGet},
				{Name: "enable", Usage: "make a subscription active", ArgsUsage: "PIPELINE EXTENSION LABEL", Action: subscriptionSetStatus(model.SubscriptionActive)},
				{Name: "disable", Usage: "disable a subscription", ArgsUsage: "PIPELINE EXTENSION LABEL", Action: subscriptionSetStatus(model.SubscriptionDisabled)},
			},
		},
	}
}

// keyValues parses repeated KEY=VALUE flags.
func keyValues(c *cli.Context, flag string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range c.StringSlice(flag) {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, usageError(c, "--%s %q must be KEY=VALUE", flag, s)
		}
		out[k] = v
	}
	return out, nil
}

var extensionHeader = []string{"id", "image", "status", "state", "token", "created"}

func extensionRows(list ...*model.ExtensionView) [][]string {
	rows := make([][]string, len(list))
	for i, e := range list {
		rows[i] = []string{e.ID, e.Image, e.Status, e.State, e.TokenID, humanTime(e.Created)}
	}
	return rows
}

func extensionInstall(c *cli.Context) error {
	p, cl, err := setup(c, 2)
	if err != nil {
		return err
	}
	settings, err := keyValues(c, "config")
	if err != nil {
		return err
	}
	out, err := cl.InstallExtension(c.Context, client.InstallRequest{ID: c.Args().Get(0), Image: c.Args().Get(1),
		Settings: settings, AdditionalRoles: c.StringSlice("additional-role"), Pull: c.Bool("pull")})
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("", out, nil, nil)
	}
	p.message("✓ Installed extension %s (%s); the leader starts its container (gofer extension get %s shows its state)", out.Extension.ID, out.Extension.Image, out.Extension.ID)
	p.message("")
	p.message("  Token %s; secret (shown only now): %s", out.Token.ID, out.Token.Secret)
	return nil
}

func extensionUninstall(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	if err := confirm(c, func() string {
		return fmt.Sprintf("Uninstall extension %q and delete every subscription to it?", c.Args().First())
	}); err != nil {
		return err
	}
	if err := cl.UninstallExtension(c.Context, c.Args().First()); err != nil {
		return err
	}
	p.message("✓ Uninstalled extension %s", c.Args().First())
	return nil
}

func extensionList(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	list, err := cl.ListExtensions(c.Context, pageOf(c))
	if err != nil {
		return err
	}
	return p.result("extensions", list, extensionHeader, extensionRows(list...))
}

func extensionGet(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	e, err := cl.GetExtension(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("extension", e, nil, nil)
	}
	state := e.State
	if e.StateReason != "" {
		state += " (" + e.StateReason + ")"
	}
	started := "-"
	if e.Started != 0 {
		started = humanTime(e.Started)
	}
	table(p.w, nil, kv("id", e.ID, "image", e.Image, "status", e.Status, "state", state, "started", started, "pull", strconv.FormatBool(e.Pull), "settings", orDash(joinKV(e.Settings)),
		"additional roles", orDash(strings.Join(e.AdditionalRoles, ",")), "token", e.TokenID, "created", humanTime(e.Created), "modified", humanTime(e.Modified)))
	return nil
}

// extensionLogs copies the extension container's output to stdout.
func extensionLogs(c *cli.Context) error {
	_, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	rc, err := cl.ExtensionLogs(c.Context, c.Args().First(), c.Bool("follow"))
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(c.App.Writer, rc)
	if c.Context.Err() != nil {
		return nil
	}
	return err
}

func joinKV(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func extensionSetEnabled(enable bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, err := setup(c, 1)
		if err != nil {
			return err
		}
		e, err := cl.SetExtensionEnabled(c.Context, c.Args().First(), enable)
		if err != nil {
			return err
		}
		if p.format != "plain" {
			return p.result("extension", e, nil, nil)
		}
		p.message("✓ Extension %s is %s", e.ID, e.Status)
		return nil
	}
}

var subscriptionHeader = []string{"extension", "label", "status", "watermark", "created"}

func subscriptionRows(list ...*model.Subscription) [][]string {
	rows := make([][]string, len(list))
	for i, s := range list {
		rows[i] = []string{s.ExtensionID, s.SubscriptionID, s.Status, watermark(s.Watermark), humanTime(s.Created)}
	}
	return rows
}

// lastTick shows a tick (the last fired one, or the watermark: the last
// fired or skipped) as a time.
func lastTick(ms int64) string {
	if ms == 0 {
		return "- (none yet)"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339) + " (" + humanTime(ms) + ")"
}

func watermark(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return humanTime(ms)
}

func subscriptionCreate(c *cli.Context) error {
	p, cl, err := setup(c, 3)
	if err != nil {
		return err
	}
	settings, err := keyValues(c, "setting")
	if err != nil {
		return err
	}
	s, err := cl.Subscribe(c.Context, c.Args().Get(0), c.Args().Get(1), c.Args().Get(2), settings)
	if err != nil {
		return explainMissing(err)
	}
	if p.format != "plain" {
		return p.result("subscription", s, nil, nil)
	}
	p.message("✓ Subscribed pipeline %s to extension %s as %s", s.PipelineID, s.ExtensionID, s.SubscriptionID)
	return nil
}

func subscriptionDelete(c *cli.Context) error {
	p, cl, err := setup(c, 3)
	if err != nil {
		return err
	}
	if err := cl.Unsubscribe(c.Context, c.Args().Get(0), c.Args().Get(1), c.Args().Get(2)); err != nil {
		return err
	}
	p.message("✓ Unsubscribed pipeline %s from extension %s (%s)", c.Args().Get(0), c.Args().Get(1), c.Args().Get(2))
	return nil
}

func subscriptionList(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	list, err := cl.ListSubscriptions(c.Context, c.Args().First(), pageOf(c))
	if err != nil {
		return err
	}
	return p.result("subscriptions", list, subscriptionHeader, subscriptionRows(list...))
}

func subscriptionGet(c *cli.Context) error {
	p, cl, err := setup(c, 3)
	if err != nil {
		return err
	}
	s, err := cl.GetSubscription(c.Context, c.Args().Get(0), c.Args().Get(1), c.Args().Get(2))
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("subscription", s, nil, nil)
	}
	rows := kv("pipeline", s.PipelineID, "extension", s.ExtensionID, "label", s.SubscriptionID, "status", s.Status,
		"status reason", orDash(s.StatusReason), "settings", orDash(joinKV(s.Settings)), "last fired tick", lastTick(s.LastFired), "last tick (fired or skipped)", lastTick(s.Watermark), "created", humanTime(s.Created))
	// The next tick, for the built-in interval and cron extensions (an
	// extension the caller may not read just shows no next tick).
	if ext, err := cl.GetExtension(c.Context, s.ExtensionID); err == nil {
		if next := nextTick(ext, s, time.Now()); next != "" {
			rows = append(rows, kv("next tick", next)...)
		}
	}
	table(p.w, nil, rows)
	return nil
}

func subscriptionSetStatus(status string) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, err := setup(c, 3)
		if err != nil {
			return err
		}
		s, err := cl.SetSubscriptionStatus(c.Context, c.Args().Get(0), c.Args().Get(1), c.Args().Get(2), status)
		if err != nil {
			return err
		}
		if p.format != "plain" {
			return p.result("subscription", s, nil, nil)
		}
		p.message("✓ Subscription %s of extension %s is %s", s.SubscriptionID, s.ExtensionID, s.Status)
		return nil
	}
}
