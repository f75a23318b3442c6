package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

func pipelineCommand() *cli.Command {
	return &cli.Command{
		Name:    "pipeline",
		Aliases: []string{"pipelines", "p"},
		Usage:   "manage pipelines, their config versions, deployments and subscriptions",
		Subcommands: append([]*cli.Command{
			objectCommand(false),
			pipelineInitCommand(),
			{Name: "list", Usage: "list pipelines in the namespace", Flags: pageFlags(), Action: pipelineList},
			{Name: "get", Usage: "show a pipeline and its live tasks", ArgsUsage: "PIPELINE", Action: pipelineGet},
			{Name: "run", Usage: "start a run of the pipeline's live version", ArgsUsage: "PIPELINE",
				Flags: append([]cli.Flag{varFlag()}, watchFlag()...), Action: runStart},
			{Name: "enable", Usage: "accept new runs", ArgsUsage: "PIPELINE", Action: pipelineSetState(model.PipelineStateActive)},
			{Name: "disable", Usage: "refuse new runs", ArgsUsage: "PIPELINE", Action: pipelineSetState(model.PipelineStateDisabled)},
			{Name: "delete", Usage: "delete a pipeline with all its versions and runs (asks first)", ArgsUsage: "PIPELINE",
				Flags: []cli.Flag{yesFlag()}, Action: pipelineDelete},
			pipelineDeployCommand(),
			pipelineRollbackCommand(),
			{
				Name:  "config",
				Usage: "manage a pipeline's registered config versions",
				Subcommands: []*cli.Command{
					{Name: "list", Usage: "list versions, newest first", ArgsUsage: "PIPELINE", Flags: timePageFlags(), Action: configList},
					{Name: "get", Usage: "show one version (0 = newest)", ArgsUsage: "PIPELINE VERSION", Action: configGet},
					{Name: "delete", Usage: "delete a version that is not live", ArgsUsage: "PIPELINE VERSION", Action: configDelete},
					{Name: "deploy", Usage: "make a version live (rolls back when it is older)", ArgsUsage: "PIPELINE VERSION", Action: pipelineDeploy, Flags: deployFlags()},
					{Name: "diff", Usage: "show what changed between two versions (0 = newest)", ArgsUsage: "PIPELINE VERSION VERSION", Action: configDiff},
				},
			},
			{
				Name:  "deployment",
				Usage: "show a pipeline's deployments; follow and decide canaries",
				Subcommands: []*cli.Command{
					{Name: "list", Usage: "list deployments, newest first", ArgsUsage: "PIPELINE", Flags: timePageFlags(), Action: deploymentList},
					{Name: "get", Usage: "show one deployment (a canary's split, runs per version and decision)", ArgsUsage: "PIPELINE DEPLOYMENT", Action: deploymentGet},
					deploymentWatchCommand(),
					deploymentDecideCommand(model.CanaryPromote, "make a canary's version live now and end the canary"),
					deploymentDecideCommand(model.CanaryRollback, "end a canary, keeping the stable version live"),
					deploymentDecideCommand(model.CanaryAbort, "stop a canary without a verdict, keeping the stable version live"),
				},
			},
		}, pipelineSubscriptionCommands()...),
	}
}

var pipelineHeader = []string{"id", "state", "live version", "latest version", "created", "modified"}

func pipelineRows(list ...*model.Pipeline) [][]string {
	rows := make([][]string, len(list))
	for i, p := range list {
		live := "-"
		if p.LiveVersion > 0 {
			live = strconv.FormatInt(p.LiveVersion, 10)
		}
		rows[i] = []string{p.PipelineID, string(p.State), live, strconv.FormatInt(p.LatestVersion, 10), humanTime(p.Created), humanTime(p.Modified)}
	}
	return rows
}

func pipelineList(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	list, err := cl.ListPipelines(c.Context, pageOf(c))
	if err != nil {
		return err
	}
	return p.result("pipelines", list, pipelineHeader, pipelineRows(list...))
}

func pipelineGet(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	pl, err := cl.GetPipeline(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("pipeline", pl, nil, nil)
	}
	rows := pipelineDetailRows(pl)
	if pl.ActiveCanary != 0 {
		rows = append(rows, kv("canary", canarySummary(c, cl, pl))...)
	}
	table(p.w, nil, rows)
	if pl.LiveVersion > 0 {
		cfg, err := cl.GetConfig(c.Context, pl.PipelineID, pl.LiveVersion)
		if err != nil {
			return err
		}
		fmt.Fprintf(p.w, "\nLive config (version %d): %s\n", cfg.Version, cfg.Name)
		if r := cfg.RunRetention; r != nil {
			fmt.Fprintf(p.w, "Run retention: %s\n", retentionSummary(r))
		}
		table(p.w, taskHeader, taskRows(cfg))
	} else {
		fmt.Fprintf(p.w, "\nNo version is live yet; deploy one with: gofer pipeline deploy %s %d\n", pl.PipelineID, pl.LatestVersion)
	}
	return nil
}

func pipelineDetailRows(pl *model.Pipeline) [][]string {
	rows := kv("id", pl.PipelineID, "namespace", pl.NamespaceID, "state", string(pl.State),
		"live version", strconv.FormatInt(pl.LiveVersion, 10), "latest version", strconv.FormatInt(pl.LatestVersion, 10),
		"created", humanTime(pl.Created), "modified", humanTime(pl.Modified))
	return rows
}

var taskHeader = []string{"task", "image", "depends on"}

func taskRows(cfg *model.PipelineConfig) [][]string {
	rows := make([][]string, len(cfg.Tasks))
	for i, t := range cfg.Tasks {
		var deps []string
		for id, cond := range t.DependsOn {
			deps = append(deps, fmt.Sprintf("%s (%s)", id, cond))
		}
		sort.Strings(deps)
		rows[i] = []string{t.ID, t.Image, orDash(strings.Join(deps, ", "))}
	}
	return rows
}

func pipelineSetState(state model.PipelineState) cli.ActionFunc {
	return func(c *cli.Context) error {
		p, cl, err := setup(c, 1)
		if err != nil {
			return err
		}
		pl, err := cl.SetPipelineState(c.Context, c.Args().First(), state)
		if err != nil {
			return err
		}
		if p.format == "plain" {
			p.message("✓ Pipeline %q is now %s", pl.PipelineID, pl.State)
			return nil
		}
		return p.result("pipeline", pl, nil, nil)
	}
}

func pipelineDelete(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	id := c.Args().First()
	question := func() string {
		// Run ids count up from 1, but run retention may have deleted
		// the oldest: the newest run's id says how many were started,
		// not how many are left, so the question names the newest.
		runs, err := cl.ListRuns(c.Context, id, client.Page{Limit: 1, Reverse: true})
		if err != nil {
			return fmt.Sprintf("Delete pipeline %q with all its versions and runs?", id)
		}
		if len(runs) == 0 {
			return fmt.Sprintf("Delete pipeline %q (no runs)?", id)
		}
		return fmt.Sprintf("Delete pipeline %q and all its runs (the newest is #%d)?", id, runs[0].RunID)
	}
	if err := confirm(c, question); err != nil {
		return err
	}
	if err := cl.DeletePipeline(c.Context, id); err != nil {
		return err
	}
	p.message("✓ Deleted pipeline %q", c.Args().First())
	return nil
}

var configHeader = []string{"version", "state", "tasks", "registered", "deprecated"}

func configRows(list ...*model.PipelineConfig) [][]string {
	rows := make([][]string, len(list))
	for i, cfg := range list {
		dep := "-"
		if cfg.Deprecated != 0 {
			dep = humanTime(cfg.Deprecated)
		}
		rows[i] = []string{strconv.FormatInt(cfg.Version, 10), string(cfg.State), strconv.Itoa(len(cfg.Tasks)), humanTime(cfg.Registered), dep}
	}
	return rows
}

func configList(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	list, err := cl.ListConfigs(c.Context, c.Args().First(), timePageOf(c))
	if err != nil {
		return err
	}
	return p.result("configs", model.ConfigViews(list), configHeader, configRows(list...))
}

func configGet(c *cli.Context) error {
	p, cl, v, err := setupNumbered(c, "VERSION")
	if err != nil {
		return err
	}
	cfg, err := cl.GetConfig(c.Context, c.Args().First(), v)
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("config", cfg.View(), nil, nil)
	}
	table(p.w, nil, kv("pipeline", cfg.PipelineID, "version", strconv.FormatInt(cfg.Version, 10), "name", cfg.Name,
		"description", orDash(cfg.Description), "state", string(cfg.State), "parallelism", strconv.FormatInt(cfg.Parallelism, 10),
		"registered", humanTime(cfg.Registered)))
	fmt.Fprintln(p.w)
	table(p.w, taskHeader, taskRows(cfg))
	return nil
}

func configDelete(c *cli.Context) error {
	p, cl, v, err := setupNumbered(c, "VERSION")
	if err != nil {
		return err
	}
	if err := cl.DeleteConfig(c.Context, c.Args().First(), v); err != nil {
		return err
	}
	p.message("✓ Deleted version %d of pipeline %q", v, c.Args().First())
	return nil
}

func configDeploy(c *cli.Context, opts client.DeployOptions) error {
	p, cl, v, err := setupNumbered(c, "VERSION")
	if err != nil {
		return err
	}
	d, err := deployVersion(c, cl, c.Args().First(), v, opts)
	if err != nil {
		return err
	}
	if p.format == "plain" && d.Canary != nil {
		canaryStartedMessage(p, d)
		return nil
	}
	if p.format == "plain" {
		p.message("✓ Deployed version %d of pipeline %q (deployment %d, previous live version %d)", d.EndVersion, d.PipelineID, d.DeploymentID, d.StartVersion)
		return nil
	}
	return p.result("deployment", d, nil, nil)
}

// deploymentHeader: one row per deployment says what it tried and what
// came of it — a rolled-back canary of version 2 reads "canary, 1, 2,
// rolled back, 1", never as if version 2 went live.
var deploymentHeader = []string{"id", "strategy", "live before", "new version", "outcome", "live after", "started", "by"}

func deploymentRows(list ...*model.Deployment) [][]string {
	rows := make([][]string, len(list))
	for i, d := range list {
		before := "-"
		if d.StartVersion != 0 {
			before = strconv.FormatInt(d.StartVersion, 10)
		}
		after := strconv.FormatInt(liveAfter(d), 10)
		if deploymentUndecided(d) {
			after += " (so far)"
		}
		rows[i] = []string{strconv.FormatInt(d.DeploymentID, 10), deploymentStrategy(d), before, strconv.FormatInt(d.EndVersion, 10),
			deploymentOutcome(d), after, humanTime(d.Started), orDash(d.Actor)}
	}
	return rows
}

func deploymentList(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	list, err := cl.ListDeployments(c.Context, c.Args().First(), timePageOf(c))
	if err != nil {
		return err
	}
	return p.result("deployments", list, deploymentHeader, deploymentRows(list...))
}

func deploymentGet(c *cli.Context) error {
	p, cl, id, err := setupNumbered(c, "DEPLOYMENT")
	if err != nil {
		return err
	}
	d, err := cl.GetDeployment(c.Context, c.Args().First(), id)
	if err != nil {
		return err
	}
	if p.format == "plain" {
		printDeployment(p, d)
		return nil
	}
	return p.result("deployment", d, nil, nil)
}

// retentionSummary says in words which runs a pipeline's own run
// retention deletes (docs/runs.md, "Run retention"): a finished run goes
// when either limit passes it.
func retentionSummary(r *sdk.RunRetention) string {
	var parts []string
	if r.Count > 0 {
		parts = append(parts, "beyond the newest "+strconv.FormatInt(r.Count, 10))
	}
	if r.Age != "" {
		parts = append(parts, "that ended more than "+r.Age+" ago")
	}
	if len(parts) == 0 {
		return "keeps every run (overrides the server's setting)"
	}
	return "deletes finished runs " + strings.Join(parts, " or ") + " (never the newest run)"
}
