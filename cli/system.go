package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func systemCommand() *cli.Command {
	return &cli.Command{
		Name:  "system",
		Usage: "cluster-wide settings",
		Subcommands: []*cli.Command{
			{Name: "get", Usage: "show cluster-wide settings", Action: systemGet},
			{Name: "version", Usage: "show the server's version", Action: systemVersion},
			{Name: "pause-runs", Usage: "stop accepting new runs (event ingress off)", Action: systemIngress(false)},
			{Name: "resume-runs", Usage: "accept new runs again (event ingress on)", Action: systemIngress(true)},
		},
	}
}

func systemGet(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	s, err := cl.GetSystem(c.Context)
	if err != nil {
		return err
	}
	return p.result("system", s, nil, kv("bootstrap token created", fmt.Sprint(s.BootstrapTokenCreated),
		"accepting new runs", fmt.Sprint(!s.IgnorePipelineRunEvents)))
}

func systemVersion(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	m, err := cl.Metadata(c.Context)
	if err != nil {
		return err
	}
	return p.result("metadata", m, nil, kv("version", m.Semver, "commit", m.Commit))
}

func systemIngress(accept bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, err := setup(c, 0)
		if err != nil {
			return err
		}
		s, err := cl.SetEventIngress(c.Context, accept)
		if err != nil {
			return err
		}
		if p.format == "plain" {
			if accept {
				p.message("✓ New runs are accepted")
			} else {
				p.message("✓ New runs are paused; resume with: gofer system resume-runs")
			}
			return nil
		}
		return p.result("system", s, nil, nil)
	}
}
