package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/store/model"
)

func varFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "variable", Aliases: []string{"v"}, Usage: "KEY=VALUE passed to every task of the run (repeatable)"}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:    "run",
		Aliases: []string{"runs"},
		Usage:   "start and follow runs of pipelines",
		Subcommands: []*cli.Command{
			objectCommand(true),
			{Name: "start", Usage: "start a run of the pipeline's live version", ArgsUsage: "PIPELINE",
				Flags: append([]cli.Flag{varFlag()}, watchFlag()...), Action: runStart},
			{Name: "list", Usage: "list a pipeline's runs, newest first", ArgsUsage: "PIPELINE",
				Flags: timePageFlags(), Action: runList},
			{Name: "get", Usage: "show a run and its tasks", ArgsUsage: "PIPELINE RUN", Action: runGet},
			{Name: "cancel", Usage: "stop a run (running tasks get SIGTERM, then SIGKILL)", ArgsUsage: "PIPELINE RUN", Action: runCancel},
			{Name: "retry", Usage: "start a new run with the variables of an earlier one", ArgsUsage: "PIPELINE RUN",
				Flags: watchFlag(), Action: runRetry},
			{Name: "watch", Usage: "follow a run's tasks until it ends; exits non-zero unless it succeeded", ArgsUsage: "PIPELINE RUN",
				Flags: []cli.Flag{pollFlag()}, Action: runWatch},
			runLocalCommand(),
		},
	}
}

func watchFlag() []cli.Flag {
	return []cli.Flag{&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "follow the run until it ends (like 'run watch')"}, pollFlag()}
}

// pollFlag sets how often a watch reads the run. Every state shows
// whatever the interval (the watch derives transitions from the records'
// timestamps), so it only trades latency for requests.
func pollFlag() cli.Flag {
	return &cli.DurationFlag{Name: "poll-interval", Value: 300 * time.Millisecond, Usage: "how often --watch reads the run"}
}

func parseVariables(c *cli.Context) (map[string]string, error) {
	vars := map[string]string{}
	for _, kv := range c.StringSlice("variable") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError(c, "--variable %q must be KEY=VALUE", kv)
		}
		vars[k] = v
	}
	return vars, nil
}

var runHeader = []string{"run", "state", "status", "started", "duration", "by", "version"}

func runRows(list ...*model.Run) [][]string {
	rows := make([][]string, len(list))
	for i, r := range list {
		status := string(r.Status)
		if r.State != model.RunStateComplete {
			status = "-"
		}
		rows[i] = []string{strconv.FormatInt(r.RunID, 10), string(r.State), status, humanTime(r.Started),
			duration(r.Started, r.Ended), orDash(r.Initiator.User), strconv.FormatInt(r.ConfigVersion, 10)}
	}
	return rows
}

// duration renders how long something ran (or has been running).
func duration(started, ended int64) string {
	if started == 0 {
		return "-"
	}
	end := time.Now()
	if ended != 0 {
		end = time.UnixMilli(ended)
	}
	return end.Sub(time.UnixMilli(started)).Round(10 * time.Millisecond).String()
}

func runStart(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	vars, err := parseVariables(c)
	if err != nil {
		return err
	}
	r, err := cl.StartRun(c.Context, c.Args().First(), vars)
	if err != nil {
		return explainMissing(err)
	}
	return afterStart(c, p, r)
}

// afterStart reports a new run and, with --watch, follows it.
func afterStart(c *cli.Context, p *printer, r *model.Run) error {
	if c.Bool("watch") {
		p.message("✓ Started run %d of pipeline %q (version %d)", r.RunID, r.PipelineID, r.ConfigVersion)
		return watchRun(c, p, r.PipelineID, r.RunID)
	}
	if p.format != "plain" {
		return p.result("run", r.View(), nil, nil)
	}
	p.message("✓ Started run %d of pipeline %q (version %d)", r.RunID, r.PipelineID, r.ConfigVersion)
	p.message("")
	p.message("  Follow it:      gofer run watch %s %d", r.PipelineID, r.RunID)
	p.message("  List its tasks: gofer task list %s %d", r.PipelineID, r.RunID)
	return nil
}

func runList(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	list, err := cl.ListRuns(c.Context, c.Args().First(), timePageOf(c))
	if err != nil {
		return err
	}
	return p.result("runs", model.RunViews(list), runHeader, runRows(list...))
}

func runGet(c *cli.Context) error {
	p, cl, run, err := setupNumbered(c, "RUN")
	if err != nil {
		return err
	}
	r, err := cl.GetRun(c.Context, c.Args().First(), run)
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("run", r.View(), nil, nil)
	}
	tasks, err := cl.ListTasks(c.Context, r.PipelineID, r.RunID)
	if err != nil {
		return err
	}
	printRun(p, r, tasks)
	return nil
}

func printRun(p *printer, r *model.Run, tasks []*model.TaskExecution) {
	reason := "-"
	if r.StatusReason != nil && r.State == model.RunStateComplete {
		reason = strings.TrimSpace(r.StatusReason.Reason + " " + r.StatusReason.Description)
	}
	vars := variableWords(r.View().Variables)
	table(p.w, nil, kv("run", strconv.FormatInt(r.RunID, 10), "pipeline", r.PipelineID, "version", strconv.FormatInt(r.ConfigVersion, 10),
		"state", string(r.State), "status", string(r.Status), "reason", reason, "started by", orDash(r.Initiator.User),
		"queued", humanTime(r.Created), "started", humanTime(r.Started), "duration", duration(r.Started, r.Ended),
		"variables", orDash(strings.Join(vars, " "))))
	fmt.Fprintln(p.w)
	table(p.w, taskExecHeader, taskExecRows(tasks...))
}

func runCancel(c *cli.Context) error {
	p, cl, run, err := setupNumbered(c, "RUN")
	if err != nil {
		return err
	}
	r, err := cl.CancelRun(c.Context, c.Args().First(), run)
	if err != nil {
		return err
	}
	if p.format == "plain" {
		p.message("✓ Cancelling run %d of pipeline %q; follow it with: gofer run watch %s %d", r.RunID, r.PipelineID, r.PipelineID, r.RunID)
		return nil
	}
	return p.result("run", r.View(), nil, nil)
}

func runRetry(c *cli.Context) error {
	p, cl, run, err := setupNumbered(c, "RUN")
	if err != nil {
		return err
	}
	r, err := cl.RetryRun(c.Context, c.Args().First(), run)
	if err != nil {
		return explainMissing(err)
	}
	return afterStart(c, p, r)
}

func runWatch(c *cli.Context) error {
	p, _, run, err := setupNumbered(c, "RUN")
	if err != nil {
		return err
	}
	return watchRun(c, p, c.Args().First(), run)
}

// watchRun prints each task's changes as they happen, then the final
// table; the exit code is non-zero unless the run succeeded.
func watchRun(c *cli.Context, p *printer, pipeline string, run int64) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	wt := newWatcher(p.w)
	r, err := cl.WaitRun(c.Context, pipeline, run, c.Duration("poll-interval"), func(r *model.Run, tasks []*model.TaskExecution) {
		if p.format == "plain" {
			wt.report(r, tasks)
		}
	})
	if err != nil {
		return err
	}
	tasks, err := cl.ListTasks(c.Context, pipeline, run)
	if err != nil {
		return err
	}
	switch p.format {
	case "json":
		if err := p.result("", map[string]any{"run": r.View(), "task_executions": taskViews(tasks)}, nil, nil); err != nil {
			return err
		}
	case "plain":
		fmt.Fprintln(p.w)
		printRun(p, r, tasks)
	}
	if r.Status != model.RunStatusSuccessful {
		return cli.Exit(fmt.Sprintf("run %d of pipeline %q ended %s", r.RunID, r.PipelineID, r.Status), 1)
	}
	return nil
}

// taskLine is a task's state in words.
func taskLine(t *model.TaskExecution) string {
	switch t.State {
	case model.TaskStateComplete:
		s := string(t.Status)
		if t.ExitCode != nil {
			s += fmt.Sprintf(" (exit %d)", *t.ExitCode)
		}
		if t.StatusReason != nil && t.StatusReason.Description != "" && t.Status != model.TaskStatusSuccessful {
			s += ": " + t.StatusReason.Description
		}
		return s
	case model.TaskStateWaiting:
		if t.Attempt > 0 {
			return fmt.Sprintf("waiting to retry (attempt %d failed)", t.Attempt)
		}
		return "waiting"
	}
	if t.Attempt > 1 {
		return fmt.Sprintf("%s (attempt %d)", t.State, t.Attempt)
	}
	return string(t.State)
}
