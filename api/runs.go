package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

const (
	maxRunVariables     = 512
	maxVariableKeyLen   = 256
	maxVariableValueLen = 64 << 10
	// maxRunVariablesBytes bounds a run's variables in all: each task's
	// environment (these plus its config's and the system's) is
	// replicated when it is scheduled, and the executor refuses one over
	// 256 KiB.
	maxRunVariablesBytes = 128 << 10
	// maxCancelGrace bounds ?wait_for on a task cancel.
	maxCancelGrace = time.Hour
)

type startRunRequest struct {
	Variables map[string]string `json:"variables"`
}

func checkVariables(vars map[string]string) error {
	if len(vars) > maxRunVariables {
		return badRequest("variables: at most %d, got %d", maxRunVariables, len(vars))
	}
	total := 0
	for k, v := range vars {
		total += len(k) + len(v)
		if k == "" || len(k) > maxVariableKeyLen || strings.ContainsAny(k, "=\x00") {
			return badRequest("variables: name %q must be 1 to %d characters without '=' or NUL", k, maxVariableKeyLen)
		}
		if len(v) > maxVariableValueLen || strings.ContainsRune(v, 0) {
			return badRequest("variables: %q may hold at most %d bytes and no NUL", k, maxVariableValueLen)
		}
	}
	if total > maxRunVariablesBytes {
		return badRequest("variables: %d bytes of names and values in all; the limit is %d", total, maxRunVariablesBytes)
	}
	return nil
}

// startRun starts a run of the pipeline's live version. An Idempotency-Key
// makes the request repeatable: the same key returns the same run.
func (s *Server) startRun(c echo.Context) error {
	ns, id, _, err := s.pipelinePath(c)
	if err != nil {
		return err
	}
	var req startRunRequest
	if _, err := decodeOptionalJSON(c, &req); err != nil {
		return err
	}
	if err := checkVariables(req.Variables); err != nil {
		return err
	}
	cmd := fsm.RunCreate{NamespaceID: ns, PipelineID: id, Variables: req.Variables}
	if ext := callerOf(c).Extension; ext != "" {
		if err := s.checkExtensionEnabled(ext); err != nil {
			return err
		}
		// The FSM checks again, in order with a concurrent disable.
		cmd.Extension = ext
		if key := c.Request().Header.Get(HeaderIdempotency); fsm.IsTriggerKey(key) {
			// A trigger: at most one run per (extension, key) on this
			// pipeline, whichever token asks (docs/triggers.md). The key
			// is not also an idempotency key of this token, so a retry
			// after the token rotated finds the first run the same way.
			cmd.TriggerKey = key
			c.Set(ctxTriggerStart, true)
		}
	}
	return s.createRun(c, cmd)
}

// ctxTriggerStart marks a run start whose Idempotency-Key is a trigger key
// (meta leaves it out: the trigger key table deduplicates instead).
const ctxTriggerStart = "gofer.trigger_start"

// checkExtensionEnabled refuses run starts by a disabled extension's token.
func (s *Server) checkExtensionEnabled(id string) error {
	e, err := s.extension(id)
	if err != nil {
		return err
	}
	if e == nil {
		return forbidden("extension %q is not installed; its token may not start runs", id)
	}
	if e.Status != model.ExtensionEnabled {
		return forbidden("extension %q is disabled; its token may not start runs until it is enabled", id)
	}
	return nil
}

func (s *Server) createRun(c echo.Context, cmd fsm.RunCreate) error {
	caller := callerOf(c)
	if err := s.checkSecretMarkers(caller, cmd.NamespaceID, cmd.PipelineID, cmd.Variables); err != nil {
		return err
	}
	cmd.Initiator = model.Initiator{ID: caller.TokenID, User: caller.actor()}
	if cmd.TriggerKey == "" {
		cmd.IdempotencyKey = c.Request().Header.Get(HeaderIdempotency)
	}
	if cmd.IdempotencyKey != "" {
		cmd.RequestHash = requestHashOf(c)
	}
	if err := s.checkRunValues(cmd); err != nil {
		return err
	}
	tok, err := s.runToken()
	if err != nil {
		return err
	}
	cmd.Token = tok
	created, err := applyAs[fsm.RunCreated](s, c, fsm.CmdRunCreate, cmd)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if created.Existing {
		status = http.StatusOK
	} else if cmd.TriggerKey != "" {
		s.triggerLateness(cmd.TriggerKey, s.opts.Now())
	}
	return c.JSON(status, wrap("run", created.Run.View()))
}

// checkSecretMarkers refuses run variables that name secrets the caller
// may not read: a run variable replaces a task's, so otherwise anyone who
// may start a run (a run's own token, say) could have a task print any
// secret of the pipeline, or a global one.
func (s *Server) checkSecretMarkers(caller *identity, ns, pipeline string, vars map[string]string) error {
	return s.checkMarkersReadable(caller, ns, pipeline, vars, func(name string) string { return "run variable " + name }, "pass")
}

// markerNames lists, sorted, the names of values holding a secret or
// object marker (usually none): the same one is named first every time.
func markerNames(values map[string]string) []string {
	var names []string
	for name, value := range values {
		if _, _, ok := sdk.ParseMarker(value); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// checkMarkersReadable refuses (403) values naming a secret the caller
// may not read: a pipeline secret needs read on the pipeline's secrets, a
// global one an admin. label names a value in the message ("run variable
// X", "settings.X"); verb is what the caller does with it ("pass", "name").
func (s *Server) checkMarkersReadable(caller *identity, ns, pipeline string, values map[string]string, label func(string) string, verb string) error {
	for _, name := range markerNames(values) {
		kind, key, _ := sdk.ParseMarker(values[name])
		switch {
		case kind == "pipeline_secret" && !s.authz.allowed(caller, []resourceRef{{kind: "namespaces", target: ns},
			{kind: "pipelines", target: pipeline}, {kind: "secrets"}}, model.ActionRead):
			return forbidden("%s names pipeline secret %q; only a caller that may read the pipeline's secrets may %s it", label(name), key, verb)
		case kind == "global_secret" && !s.authz.isAdmin(caller, model.ActionRead):
			return forbidden("%s names global secret %q; only an admin may %s it", label(name), key, verb)
		}
	}
	return nil
}

// runTokenLifetime bounds a run token when its run never ends (the
// token is revoked when the run completes).
const runTokenLifetime = 7 * 24 * time.Hour

// runToken makes token material for the run: id, hash and the secret
// sealed here, on the leader, so only the executor can hand it to tasks.
// The FSM keeps it only when a task of the version the run uses sets
// inject_api_token, and it decides that from the config it loads anyway,
// so starting a run reads nothing more. Without an encryption key there
// is no token (such a task then fails with a reason that says why).
func (s *Server) runToken() (*model.StoredToken, error) {
	if s.opts.Secrets == nil {
		return nil, nil
	}
	box, err := s.sealingBox()
	if err != nil {
		// This leader lacks the cluster's key. The FSM decides whether
		// the run needs its token (a task with inject_api_token): if so
		// it refuses the run with a 409 saying the key is missing, as it
		// does for secrets; if not, the token is dropped and the run
		// starts. Sealing under this node's own key is only for that.
		box = s.opts.Secrets.Primary()
	}
	id := newID()
	secret, hash := newTokenSecret()
	sealed, err := box.Seal([]byte(secret), seal.RunTokenLocation(id))
	if err != nil {
		return nil, err
	}
	return &model.StoredToken{Token: model.Token{ID: id, Expires: s.opts.Now().Add(runTokenLifetime).UnixMilli()},
		Hash: hash, Sealed: sealed, KeyCheck: box.KeyCheck()}, nil
}

// runPath validates the run path and loads the run.
func (s *Server) runPath(c echo.Context) (*model.Run, error) {
	ns, id, p, run, err := s.pipelineItemPath(c, "run")
	if err != nil {
		return nil, err
	}
	var r *model.Run
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		r, err = store.GetRun(tx, ns, id, run)
		return err
	}); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, runNotFound(p, id, run)
	}
	return r, nil
}

// runNotFound is the 404 for a run that is not stored. Run ids are never
// reused and only run retention deletes a single run, so a missing id up
// to the pipeline's newest was deleted by it: the answer says so rather
// than suggest the run never existed.
func runNotFound(p *model.Pipeline, id string, run int64) *apiError {
	if p != nil && run >= 1 && run <= p.LastRunID {
		return notFound("run %d of pipeline %q was deleted by run retention (docs/runs.md, \"Run retention\"); its events remain", run, id)
	}
	return notFound("pipeline %q has no run %d", id, run)
}

func (s *Server) listRuns(c echo.Context) error {
	ns, id, _, err := s.pipelinePath(c)
	if err != nil {
		return err
	}
	return respondList(s, c, "runs", func(tx *bbolt.Tx, page store.Page) ([]model.RunView, error) {
		runs, err := store.ListRuns(tx, ns, id, page)
		return model.RunViews(runs), err
	})
}

func (s *Server) getRun(c echo.Context) error {
	r, err := s.runPath(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("run", r.View()))
}

// cancelRun asks the executor to stop the run; it answers 204 at once
// (upstream's answer), and the run's state follows as the tasks stop.
func (s *Server) cancelRun(c echo.Context) error {
	r, err := s.runPath(c)
	if err != nil {
		return err
	}
	ref := fsm.RunRef{NamespaceID: r.NamespaceID, PipelineID: r.PipelineID, RunID: r.RunID}
	if _, err := applyAs[model.Run](s, c, fsm.CmdRunCancel, fsm.RunCancel{RunRef: ref,
		Cancel: model.Cancellation{Reason: model.ReasonUserCancelled, By: callerOf(c).actor()}}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// retryRun starts a new run with the variables of an earlier one. It
// takes no body; a body that is not empty or {} is refused.
func (s *Server) retryRun(c echo.Context) error {
	r, err := s.runPath(c)
	if err != nil {
		return err
	}
	if err := noBody(c); err != nil {
		return err
	}
	cmd := fsm.RunCreate{NamespaceID: r.NamespaceID, PipelineID: r.PipelineID, Variables: r.Variables, RetryOf: r.RunID}
	if ext := callerOf(c).Extension; ext != "" {
		// A disabled extension's token starts no runs, retries included.
		if err := s.checkExtensionEnabled(ext); err != nil {
			return err
		}
		cmd.Extension = ext
	}
	return s.createRun(c, cmd)
}

func (s *Server) listTasks(c echo.Context) error {
	r, err := s.runPath(c)
	if err != nil {
		return err
	}
	// Without a limit every task comes back (a run has at most
	// sdk.MaxTasks, which is also the largest page).
	page, err := pageParamsDefault(c, store.MaxLimit)
	if err != nil {
		return err
	}
	var out []*model.TaskExecution
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		out, err = store.ListTasksPage(tx, r.NamespaceID, r.PipelineID, r.RunID, page)
		return err
	}); err != nil {
		return err
	}
	views := make([]model.TaskExecutionView, len(out))
	for i, t := range out {
		views[i] = t.View(r)
	}
	return c.JSON(http.StatusOK, wrap("task_executions", views))
}

// taskPath validates the task path and loads the task execution.
func (s *Server) taskPath(c echo.Context) (*model.TaskExecution, error) {
	t, _, err := s.taskAndRun(c)
	return t, err
}

// taskAndRun validates the task path and loads the task execution and its
// run (which tells the sources of the task's variables apart).
func (s *Server) taskAndRun(c echo.Context) (*model.TaskExecution, *model.Run, error) {
	r, err := s.runPath(c)
	if err != nil {
		return nil, nil, err
	}
	task := c.Param("task")
	if err := validID("task id", task); err != nil {
		return nil, nil, err
	}
	var t *model.TaskExecution
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		t, err = store.GetTask(tx, r.NamespaceID, r.PipelineID, r.RunID, task)
		return err
	}); err != nil {
		return nil, nil, err
	}
	if t == nil {
		return nil, nil, notFound("run %d of pipeline %q has no task %q", r.RunID, r.PipelineID, task)
	}
	return t, r, nil
}

func (s *Server) getTask(c echo.Context) error {
	t, r, err := s.taskAndRun(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("task_execution", t.View(r)))
}

// cancelTask stops one task; ?wait_for=SECONDS sets how long its
// container gets between SIGTERM and SIGKILL. Like upstream it answers
// 204; the task's state follows as its container stops.
func (s *Server) cancelTask(c echo.Context) error {
	t, err := s.taskPath(c)
	if err != nil {
		return err
	}
	var grace time.Duration
	if v := c.QueryParam("wait_for"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		// Compared as seconds: NaN fails every comparison, and a huge
		// value would overflow a Duration into a negative one.
		if err != nil || !(secs >= 0 && secs <= maxCancelGrace.Seconds()) {
			return badRequest("wait_for must be a number of seconds between 0 and %d, got %q", int(maxCancelGrace/time.Second), v)
		}
		grace = time.Duration(secs * float64(time.Second))
	}
	if _, err := applyAs[model.TaskExecution](s, c, fsm.CmdTaskCancel, fsm.TaskCancel{TaskRef: taskRefOf(t),
		Cancel: model.Cancellation{Reason: model.ReasonUserCancelled, By: callerOf(c).actor(), GraceMillis: grace.Milliseconds()}}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func taskRefOf(t *model.TaskExecution) fsm.TaskRef {
	return fsm.TaskRef{RunRef: fsm.RunRef{NamespaceID: t.NamespaceID, PipelineID: t.PipelineID, RunID: t.RunID}, TaskID: t.TaskID}
}

// deleteTaskLogs removes a finished task's stored output.
func (s *Server) deleteTaskLogs(c echo.Context) error {
	t, err := s.taskPath(c)
	if err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdLogsDelete, fsm.LogsDelete{TaskRef: taskRefOf(t)}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// taskLogs serves a task's output, as plain text or framed (logstream.go).
// With ?follow=true it keeps the response open and streams new output
// until the task is complete. Any node serves it from its own replicated
// state, so a client whose node died resumes on another with ?offset.
func (s *Server) taskLogs(c echo.Context) error {
	req, err := parseLogRequest(c)
	if err != nil {
		return err
	}
	follow, framed, offset := req.follow, req.framed, req.offset
	t, err := s.taskPath(c)
	if err != nil {
		return err
	}
	if t.LogsExpired || t.LogsRemoved {
		why := "were deleted"
		if t.LogsExpired {
			why = "expired under the log retention setting"
		}
		return newError(http.StatusGone, CodeNotFound, "the logs of task %q in run %d %s", t.TaskID, t.RunID, why)
	}
	// Only a closed log has a known end. A node behind the one that served
	// the bytes before sees the task as not complete yet, or complete with
	// its log still open (late output comes only then): it waits below.
	if (offset > 0 || framed) && logClosed(t, time.Now()) {
		// LogBytes counts every stored chunk (the truncation marker
		// included), so it is the log's size without reading the log.
		size := t.LogBytes
		if offset > size {
			return badRequest("offset %d is past the end of the log of task %q in run %d (%d bytes)", offset, t.TaskID, t.RunID, size)
		}
		// Nothing left to send: 204, on which a browser's EventSource
		// stops, where a 200 with only `end` would have it reconnect
		// (with Last-Event-ID at the end) for ever.
		if framed && offset == size {
			return c.NoContent(http.StatusNoContent)
		}
	}
	out := newLogWriter(c, framed, offset, s.opts.StreamKeepAlive)
	defer out.close()
	// The headers go out now, not with the first output: a follower that
	// forwarded this follow waits only so long for them (forward.go).
	if err := out.start(s.cluster.NodeID(), s.opts.StreamKeepAlive); err != nil {
		return nil
	}
	ctx := c.Request().Context()
	// A ticker, not a timer per wait: other tasks' changes wake the loop
	// often without output for this one, and the stream must still speak.
	keepAlive := time.NewTicker(s.opts.StreamKeepAlive)
	defer keepAlive.Stop()
	var next int64
	last := t
	for {
		changed := s.cluster.FSM().Changes().Changed()
		var chunks [][]byte
		var cur *model.TaskExecution
		if err := s.view(func(tx *bbolt.Tx) (err error) {
			if cur, err = store.GetTask(tx, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID); err != nil || cur == nil {
				return err
			}
			chunks, next = store.LogChunks(tx, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID, next, 256)
			return nil
		}); err != nil {
			return nil
		}
		if cur == nil {
			// The run was deleted (run retention, or its pipeline) while
			// the stream ran: nothing more will come. End as an expired
			// log does, so the client stops rather than taking the
			// closed body for a cut and resuming against a 404.
			out.end(logClosed(last, time.Now()))
			return nil
		}
		last = cur
		for _, chunk := range chunks {
			if err := out.write(chunk); err != nil {
				return nil
			}
		}
		if len(chunks) > 0 {
			c.Response().Flush()
		}
		if len(chunks) == 256 {
			continue
		}
		// A framed client that asks for bytes this node has not applied
		// yet (it lags the node that served them) waits for them, follow
		// or not: they exist.
		closed := logClosed(cur, time.Now())
		waiting := framed && out.behind() && !closed
		if !waiting && (!follow || closed || cur.LogsExpired || cur.LogsRemoved) {
			out.end(closed)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.shutdown:
			return nil
		case <-changed:
		case <-keepAlive.C:
			if err := out.keepAlive(); err != nil {
				return nil
			}
		}
	}
}

// logsOpenGrace is how long after a task completed with its log open a
// follow waits for the log to close before it ends anyway. It is a safety
// net only: the worker that finished the task closes its log within
// LogCloseWait (a minute), and the leader's log closer closes any log left
// open (a failover, a close not replicated) within about 75 s of the
// task's end (agent/executor/logclose.go). The check compares this node's
// clock with the leader-stamped Ended, so clock skew moves it by as much;
// with a minute's margin over the closer that is acceptable.
const logsOpenGrace = 2 * time.Minute

// logClosed reports whether the task's log is whole: the task is
// complete and its output all stored (LogsOpen unset, which includes
// every task completed before the flag existed).
func logClosed(t *model.TaskExecution, now time.Time) bool {
	if !t.Terminal() {
		return false
	}
	return !t.LogsOpen || now.Sub(time.UnixMilli(t.Ended)) >= logsOpenGrace
}
