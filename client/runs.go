package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/goferhq/gofer/store/model"
)

func (c *Client) runPath(pipeline string, run int64) string {
	return c.pipelinePath(pipeline) + "/runs/" + strconv.FormatInt(run, 10)
}

func (c *Client) taskPath(pipeline string, run int64, task string) string {
	return c.runPath(pipeline, run) + "/tasks/" + seg(task)
}

// StartRun starts a run of the pipeline's live version. The client sends
// an idempotency key, so a retried request never starts a second run.
func (c *Client) StartRun(ctx context.Context, pipeline string, variables map[string]string) (*model.Run, error) {
	var out struct {
		Run *model.Run `json:"run"`
	}
	if variables == nil {
		variables = map[string]string{}
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: c.pipelinePath(pipeline) + "/runs", body: map[string]any{"variables": variables}}, &out)
	return out.Run, err
}

// StartRunWithKey starts a run with the caller's own idempotency key (for
// triggers: the same key never starts a second run).
func (c *Client) StartRunWithKey(ctx context.Context, pipeline, key string, variables map[string]string) (*model.Run, error) {
	var out struct {
		Run *model.Run `json:"run"`
	}
	if variables == nil {
		variables = map[string]string{}
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: c.pipelinePath(pipeline) + "/runs", body: map[string]any{"variables": variables},
		headers: map[string]string{headerIdempotency: key}}, &out)
	return out.Run, err
}

// ListRuns lists a pipeline's runs.
func (c *Client) ListRuns(ctx context.Context, pipeline string, p Page) ([]*model.Run, error) {
	var out struct {
		Runs []*model.Run `json:"runs"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.pipelinePath(pipeline) + "/runs", query: p.query()}, &out)
	return out.Runs, err
}

// GetRun reads a run.
func (c *Client) GetRun(ctx context.Context, pipeline string, run int64) (*model.Run, error) {
	var out struct {
		Run *model.Run `json:"run"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.runPath(pipeline, run)}, &out)
	return out.Run, err
}

// CancelRun asks for a run to be cancelled. The server answers 204 (as
// upstream does); the run returned is read back at least as new as the
// request, so it shows the cancellation.
func (c *Client) CancelRun(ctx context.Context, pipeline string, run int64) (*model.Run, error) {
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: c.runPath(pipeline, run)}, nil); err != nil {
		return nil, err
	}
	return c.AtLeast(c.LastIndex()).GetRun(ctx, pipeline, run)
}

// RetryRun starts a new run with an earlier run's variables.
func (c *Client) RetryRun(ctx context.Context, pipeline string, run int64) (*model.Run, error) {
	var out struct {
		Run *model.Run `json:"run"`
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: c.runPath(pipeline, run) + "/retry"}, &out)
	return out.Run, err
}

// ListTasks lists a run's task executions.
func (c *Client) ListTasks(ctx context.Context, pipeline string, run int64) ([]*model.TaskExecution, error) {
	var out struct {
		Tasks []*model.TaskExecution `json:"task_executions"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.runPath(pipeline, run) + "/tasks"}, &out)
	return out.Tasks, err
}

// GetTask reads one task execution.
func (c *Client) GetTask(ctx context.Context, pipeline string, run int64, task string) (*model.TaskExecution, error) {
	var out struct {
		Task *model.TaskExecution `json:"task_execution"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.taskPath(pipeline, run, task)}, &out)
	return out.Task, err
}

// CancelTask stops one task; grace is how long its container gets between
// SIGTERM and SIGKILL (0: the server's default).
// The server answers 204 (as upstream does); the task returned is read
// back at least as new as the request.
func (c *Client) CancelTask(ctx context.Context, pipeline string, run int64, task string, grace time.Duration) (*model.TaskExecution, error) {
	q := url.Values{}
	if grace > 0 {
		q.Set("wait_for", strconv.FormatFloat(grace.Seconds(), 'f', -1, 64))
	}
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: c.taskPath(pipeline, run, task), query: q}, nil); err != nil {
		return nil, err
	}
	return c.AtLeast(c.LastIndex()).GetTask(ctx, pipeline, run, task)
}

// TaskLogs opens a task's output. With follow the stream stays open until
// the task completes. A stream cut by a node's death or a proxy resumes on
// another node from the byte it had reached (stream.go), so the reader
// yields every byte once and ends with io.EOF only when the server says it
// is done. The caller closes the reader.
func (c *Client) TaskLogs(ctx context.Context, pipeline string, run int64, task string, follow bool) (io.ReadCloser, error) {
	q := url.Values{}
	if follow {
		q.Set("follow", "true")
	}
	name := fmt.Sprintf("the logs of task %q of run %d of pipeline %q", task, run, pipeline)
	return c.followLogs(ctx, name, request{method: http.MethodGet, path: c.taskPath(pipeline, run, task) + "/logs", query: q})
}

// DeleteTaskLogs removes a finished task's stored output.
func (c *Client) DeleteTaskLogs(ctx context.Context, pipeline string, run int64, task string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: c.taskPath(pipeline, run, task) + "/logs"}, nil)
	return err
}

// WaitRun polls until the run is complete or ctx ends, calling onChange
// (if set) with the run and its tasks whenever something changed.
func (c *Client) WaitRun(ctx context.Context, pipeline string, run int64, every time.Duration, onChange func(*model.Run, []*model.TaskExecution)) (*model.Run, error) {
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	var last string
	for {
		r, err := c.GetRun(ctx, pipeline, run)
		if err != nil {
			return nil, err
		}
		if onChange != nil {
			tasks, err := c.ListTasks(ctx, pipeline, run)
			if err != nil {
				return nil, err
			}
			sig := fmt.Sprint(r.State, r.Status)
			for _, t := range tasks {
				sig += fmt.Sprint(t.TaskID, t.State, t.Status, t.Attempt)
			}
			if sig != last {
				last = sig
				onChange(r, tasks)
			}
		}
		if r.State == model.RunStateComplete {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(every):
		}
	}
}
