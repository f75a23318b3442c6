package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/agent/local"
	"github.com/goferhq/gofer/store/model"
)

func runLocalCommand() *cli.Command {
	kv := func(name, usage string) cli.Flag {
		return &cli.StringSliceFlag{Name: name, Usage: usage + " (KEY=VALUE, repeatable; VALUE @file reads a file)"}
	}
	return &cli.Command{
		Name:      "local",
		Usage:     "run a pipeline on the local Docker engine, without a server",
		ArgsUsage: "PATH",
		Description: `PATH is what gofer up takes: a Go program folder, a .json config or a .py program.
The run uses the same executor as a cluster (dependencies, skips, timeouts, retries,
the same task environment); each task's output is printed with its name, and a summary
follows. The exit code is 0 only if the run succeeded.

Values for interpolation markers (pipeline_secret{{KEY}} and friends) come from the
flags below or a TOML values file:

  [pipeline_secrets]
  API_KEY = "..."
  [global_secrets]
  [pipeline_objects]
  [run_objects]`,
		Flags: []cli.Flag{
			varFlag(),
			kv("secret", "a pipeline secret"),
			kv("global-secret", "a global secret"),
			kv("object", "a pipeline object"),
			kv("run-object", "a run object"),
			&cli.StringFlag{Name: "values", Usage: "TOML file with [pipeline_secrets], [global_secrets], [pipeline_objects], [run_objects]"},
			&cli.StringFlag{Name: "network", Usage: "network mode of the task containers", Value: "bridge"},
		},
		Action: runLocal,
	}
}

// localValues is the --values file.
type localValues struct {
	PipelineSecrets map[string]string `toml:"pipeline_secrets"`
	GlobalSecrets   map[string]string `toml:"global_secrets"`
	PipelineObjects map[string]string `toml:"pipeline_objects"`
	RunObjects      map[string]string `toml:"run_objects"`
}

func runLocal(c *cli.Context) error {
	if err := args(c, 1); err != nil {
		return err
	}
	p, err := out(c)
	if err != nil {
		return err
	}
	vars, err := parseVariables(c)
	if err != nil {
		return err
	}
	vals := localValues{}
	if path := c.String("values"); path != "" {
		md, err := toml.DecodeFile(path, &vals)
		if err != nil {
			return fmt.Errorf("--values %s: %w", path, err)
		}
		if u := md.Undecoded(); len(u) > 0 {
			return fmt.Errorf("--values %s: unknown key %s (known tables: pipeline_secrets, global_secrets, pipeline_objects, run_objects)", path, u[0])
		}
	}
	for flag, dst := range map[string]*map[string]string{
		"secret": &vals.PipelineSecrets, "global-secret": &vals.GlobalSecrets, "object": &vals.PipelineObjects, "run-object": &vals.RunObjects,
	} {
		if *dst == nil {
			*dst = map[string]string{}
		}
		for _, kv := range c.StringSlice(flag) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usageError(c, "--%s %q must be KEY=VALUE", flag, kv)
			}
			if file, isFile := strings.CutPrefix(v, "@"); isFile {
				raw, err := os.ReadFile(file)
				if err != nil {
					return fmt.Errorf("--%s %s: %w", flag, k, err)
				}
				v = string(raw)
			}
			(*dst)[k] = v
		}
	}
	cfg, err := loadPipeline(c.Context, c.Args().First(), c.App.ErrWriter)
	if err != nil {
		return err
	}
	if p.format == "plain" {
		p.message("▶ Running pipeline [%s] %q locally (%s)", cfg.ID, cfg.Name, plural(len(cfg.Tasks), "task"))
	}
	logs := c.App.Writer
	if p.format != "plain" {
		logs = c.App.ErrWriter
	}
	res, err := local.Run(c.Context, local.Options{
		Config: cfg, Variables: vars, Network: c.String("network"), Out: logs,
		PipelineSecrets: vals.PipelineSecrets, GlobalSecrets: vals.GlobalSecrets,
		PipelineObjects: vals.PipelineObjects, RunObjects: vals.RunObjects,
	})
	if err != nil {
		if errors.Is(err, local.ErrMissingValues) {
			return cli.Exit(err.Error(), 2)
		}
		return err
	}
	switch p.format {
	case "json":
		if err := p.result("", map[string]any{"run": res.Run, "task_executions": res.Tasks}, nil, nil); err != nil {
			return err
		}
	case "plain":
		fmt.Fprintln(p.w)
		printRun(p, res.Run, res.Tasks)
	}
	if res.Run.Status != model.RunStatusSuccessful {
		return cli.Exit(fmt.Sprintf("the local run of %q ended %s", cfg.ID, res.Run.Status), 1)
	}
	return nil
}
