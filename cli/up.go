package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
)

func upCommand() *cli.Command {
	return &cli.Command{
		Name:      "up",
		Usage:     "register a pipeline from a Go program folder, a .json config or a .py program, and deploy it",
		ArgsUsage: "PATH",
		Description: `PATH is a folder holding a Go program (built and run with your Go toolchain), a .json
pipeline config, or a Python program using the Python SDK (python3, or $GOFER_PYTHON).
A folder without a go.mod stands for its pipeline.py, else its pipeline.json. The
program prints the pipeline's config; gofer up registers it as a new version and
makes it live, unless --deploy=false. A config identical to the live version is not
registered again. gofer pipeline init DIR writes a new project, SDK included.`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "deploy", Aliases: []string{"d"}, Value: true, Usage: "make the new version live (--deploy=false only registers it)"},
		}, deployFlags()...),
		Action: up,
	}
}

// configHash is the server's hash of a config (see api.registerConfig):
// SHA-256 of its normalized, canonical JSON.
func configHash(cfg *sdk.PipelineConfig) (string, error) {
	cfg.Normalize()
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

func up(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	opts, err := deployOptions(c)
	if err != nil {
		return err
	}
	cfg, err := loadPipeline(c.Context, c.Args().First(), c.App.ErrWriter)
	if err != nil {
		return err
	}
	hash, err := configHash(cfg)
	if err != nil {
		return err
	}
	pl, err := cl.GetPipeline(c.Context, cfg.ID)
	if err != nil && !client.IsStatus(err, 404) {
		return err
	}
	if pl != nil && pl.LiveVersion > 0 {
		live, err := cl.GetConfig(c.Context, cfg.ID, pl.LiveVersion)
		if err != nil {
			return err
		}
		if live.Hash == hash {
			if p.format == "plain" {
				p.message("✓ Pipeline [%s] %q is already live at version %d with this exact config; nothing to register", cfg.ID, cfg.Name, live.Version)
				upHints(p, cfg.ID)
				return nil
			}
			return p.result("config", live.View(), nil, nil)
		}
	}
	registered, err := cl.RegisterConfig(c.Context, cfg)
	if err != nil {
		return err
	}
	verb := "Registered"
	if pl == nil {
		verb = "Created pipeline and registered"
	}
	if !c.Bool("deploy") {
		if p.format != "plain" {
			return p.result("config", registered.View(), nil, nil)
		}
		p.message("✓ %s [%s] %q version %d (not deployed)", verb, cfg.ID, cfg.Name, registered.Version)
		p.message("")
		p.message("  Make it live: gofer pipeline config deploy %s %d", cfg.ID, registered.Version)
		return nil
	}
	d, err := deployVersion(c, cl, cfg.ID, registered.Version, opts)
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("", map[string]any{"config": registered.View(), "deployment": d}, nil, nil)
	}
	p.message("✓ %s [%s] %q version %d", verb, cfg.ID, cfg.Name, registered.Version)
	if d.Canary != nil {
		canaryStartedMessage(p, d)
	} else if d.StartVersion > 0 {
		p.message("✓ Deployed version %d (it replaces version %d; roll back with: gofer pipeline rollback %s)",
			d.EndVersion, d.StartVersion, cfg.ID)
	} else {
		p.message("✓ Deployed version %d", d.EndVersion)
	}
	upHints(p, cfg.ID)
	return nil
}

func upHints(p *printer, id string) {
	p.message("")
	p.message("  View details of your pipeline: gofer pipeline get %s", id)
	p.message("  Start a new run:               gofer pipeline run %s --watch", id)
	p.message("  See what changed:              gofer pipeline config list %s", id)
}
