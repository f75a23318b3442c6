package cli

import (
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

func taskCommand() *cli.Command {
	return &cli.Command{
		Name:    "task",
		Aliases: []string{"tasks"},
		Usage:   "inspect a run's task executions and their logs",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list a run's tasks", ArgsUsage: "PIPELINE RUN", Action: taskList},
			{Name: "get", Usage: "show one task execution", ArgsUsage: "PIPELINE RUN TASK", Action: taskGet},
			{Name: "cancel", Usage: "stop one task", ArgsUsage: "PIPELINE RUN TASK",
				Flags:  []cli.Flag{&cli.DurationFlag{Name: "wait-for", Aliases: []string{"w"}, Usage: "grace between SIGTERM and SIGKILL (default: the server's)"}},
				Action: taskCancel},
			{Name: "logs", Usage: "print a task's output", ArgsUsage: "PIPELINE RUN TASK",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing until the task ends"}},
				Action: taskLogs},
		},
	}
}

var taskExecHeader = []string{"task", "state", "status", "attempt", "started", "duration", "exit", "reason"}

func taskExecRows(list ...*model.TaskExecution) [][]string {
	sort.Slice(list, func(i, j int) bool { return list[i].TaskID < list[j].TaskID })
	rows := make([][]string, len(list))
	for i, t := range list {
		status, exit, reason := "-", "-", "-"
		if t.State == model.TaskStateComplete {
			status = string(t.Status)
		}
		if t.ExitCode != nil {
			exit = strconv.Itoa(*t.ExitCode)
		}
		if t.StatusReason != nil && t.StatusReason.Reason != "" {
			reason = t.StatusReason.Reason
		}
		rows[i] = []string{t.TaskID, string(t.State), status, strconv.Itoa(t.Attempt), humanTime(t.Started), duration(t.Started, t.Ended), exit, reason}
	}
	return rows
}

// taskArgs are the PIPELINE RUN TASK arguments.
type taskArgs struct {
	pipeline string
	run      int64
	task     string
}

// setupTask is setup for PIPELINE RUN TASK commands.
func setupTask(c *cli.Context) (*printer, *client.Client, taskArgs, error) {
	if err := args(c, 3); err != nil {
		return nil, nil, taskArgs{}, err
	}
	p, cl, run, err := setupNumberedArgs(c, "RUN")
	return p, cl, taskArgs{pipeline: c.Args().First(), run: run, task: c.Args().Get(2)}, err
}

func taskList(c *cli.Context) error {
	p, cl, run, err := setupNumbered(c, "RUN")
	if err != nil {
		return err
	}
	list, err := cl.ListTasks(c.Context, c.Args().First(), run)
	if err != nil {
		return err
	}
	return p.result("task_executions", taskViews(list), taskExecHeader, taskExecRows(list...))
}

func taskGet(c *cli.Context) error {
	p, cl, a, err := setupTask(c)
	if err != nil {
		return err
	}
	t, err := cl.GetTask(c.Context, a.pipeline, a.run, a.task)
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("task_execution", t.View(nil), nil, nil)
	}
	env := variableWords(t.View(nil).Variables)
	reason := "-"
	if t.StatusReason != nil {
		reason = strings.TrimSpace(t.StatusReason.Reason + " " + t.StatusReason.Description)
	}
	table(p.w, nil, kv("task", t.TaskID, "run", strconv.FormatInt(t.RunID, 10), "image", t.Task.Image, "state", string(t.State),
		"status", string(t.Status), "reason", reason, "attempt", strconv.Itoa(t.Attempt), "container", orDash(t.Container),
		"started", humanTime(t.Started), "duration", duration(t.Started, t.Ended), "log", strconv.FormatInt(t.LogBytes, 10)+" bytes",
		"environment", orDash(strings.Join(env, " "))))
	return nil
}

func taskCancel(c *cli.Context) error {
	p, cl, a, err := setupTask(c)
	if err != nil {
		return err
	}
	t, err := cl.CancelTask(c.Context, a.pipeline, a.run, a.task, c.Duration("wait-for"))
	if err != nil {
		return err
	}
	if p.format == "plain" {
		p.message("✓ Cancelling task %q of run %d", t.TaskID, t.RunID)
		return nil
	}
	return p.result("task_execution", t.View(nil), nil, nil)
}

// taskLogs copies the task's output to stdout as it arrives.
func taskLogs(c *cli.Context) error {
	_, cl, a, err := setupTask(c)
	if err != nil {
		return err
	}
	rc, err := cl.TaskLogs(c.Context, a.pipeline, a.run, a.task, c.Bool("follow"))
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

// taskViews are the task executions as the API serves them (variables as
// a list of {key, value, source}), for JSON output.
func taskViews(list []*model.TaskExecution) []model.TaskExecutionView {
	out := make([]model.TaskExecutionView, len(list))
	for i, t := range list {
		out[i] = t.View(nil)
	}
	return out
}

// variableWords prints variables (already sorted by key) as KEY=value
// (source).
func variableWords(vars []model.Variable) []string {
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = v.Key + "=" + v.Value + " (" + string(v.Source) + ")"
	}
	return out
}
