package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/agent/supervisor"
	"github.com/goferhq/gofer/scheduler/docker"
)

// serviceExtensionImageCommand makes the built-in extensions' images in
// the local Docker engine, from this binary, as the Docker backend does
// on its own: for engines that cannot (Nomad), it is run on every client.
func serviceExtensionImageCommand(build Build) *cli.Command {
	return &cli.Command{
		Name:      "extension-image",
		Usage:     "make the built-in extensions' images (interval, cron, github) in this host's Docker engine",
		ArgsUsage: "[KIND...]",
		Description: `Imports this gofer binary as gofer/extension-<kind>:<tag> into the Docker engine
of DOCKER_HOST (or --docker-host), with no registry. With scheduler.engine docker
the server does this itself; Nomad cannot, so run it on every Nomad client that
may run an extension, with the binary of the servers' version (docs/nomad.md,
"Extensions on Nomad"). Without KIND, every built-in extension. The tag defaults
to this binary's version, which is the tag the servers install the standard
extensions with; give the tag of an older registration's image with --tag.
An image that already holds this binary is left alone.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tag", Usage: "image tag (default: this binary's version)"},
			&cli.StringFlag{Name: "docker-host", Usage: "Docker engine (default: DOCKER_HOST)"},
		},
		Action: func(c *cli.Context) error { return serviceExtensionImage(c, build) },
	}
}

func serviceExtensionImage(c *cli.Context, build Build) error {
	kinds := c.Args().Slice()
	if len(kinds) == 0 {
		kinds = supervisor.BuiltinKinds()
	}
	for _, k := range kinds {
		if !slices.Contains(supervisor.BuiltinKinds(), k) {
			return usageError(c, "%q is not a built-in extension (%s)", k, strings.Join(supervisor.BuiltinKinds(), ", "))
		}
	}
	tag := c.String("tag")
	if tag == "" {
		tag = build.Version
	}
	if tag == "latest" {
		// Nomad's docker driver always pulls a :latest tag.
		return usageError(c, "--tag latest cannot be used: Nomad's docker driver would pull it from a registry")
	}
	path, err := supervisor.ExecutablePath()
	if err != nil {
		return fmt.Errorf("locate the gofer binary: %w", err)
	}
	eng, err := docker.New(docker.Options{Host: c.String("docker-host")})
	if err != nil {
		return err
	}
	defer eng.Close()
	b := &supervisor.Builtin{Version: build.Version, Path: path}
	for _, k := range kinds {
		ctx, cancel := context.WithTimeout(c.Context, 5*time.Minute)
		image, imported, err := b.Import(ctx, eng, k, tag)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		state := "already current"
		if imported {
			state = "imported"
		}
		if _, err := fmt.Fprintf(c.App.Writer, "%s\t%s\n", image, state); err != nil {
			return err
		}
	}
	return nil
}
