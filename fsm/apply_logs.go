package fsm

import (
	"fmt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// appendLogChunk stores data as the task's next chunk.
func appendLogChunk(a *applyCtx, t *model.TaskExecution, data []byte) error {
	if err := store.AppendLogChunk(a.tx, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID, t.LogChunks, data); err != nil {
		return err
	}
	t.LogChunks++
	t.LogBytes += int64(len(data))
	return nil
}

// applyLogAppend stores output of the current attempt. Offsets make it
// idempotent: bytes before the task's LogOffset were stored already (a
// second reader after a failover) and are dropped. A chunk that starts
// past LogOffset is refused: storing it would leave a hole that no later
// append could fill. Past the cap a single marker says the log was cut;
// later output only advances the offset. Last (the output ended) closes
// a log the task completed with open.
//
// Once a complete task's log is closed it takes nothing more: a collector
// the leader gave up on may still be appending (or an append of it whose
// outcome was unknown may commit late), and a log that said it ended must
// not grow. The answer says Full, so a collector stops. Only version 3
// entries are refused so: older binaries stored such output, and their
// entries must leave the bytes they left (DESIGN.md, "Envelope and
// evolution").
func applyLogAppend(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[LogAppend](body)
	t, err := mustAttempt(a, cmd.TaskRef, cmd.Attempt, model.TaskStateScheduled, model.TaskStateRunning, model.TaskStateComplete, model.TaskStateWaiting)
	if err != nil {
		return nil, err
	}
	if t.Terminal() && !t.LogsOpen && !a.legacyFormat {
		return &LogAppended{Offset: t.LogOffset, Full: true}, nil
	}
	closing := cmd.Last && t.LogsOpen
	if closing {
		t.LogsOpen = false
	}
	// save stores the task and, on a close, takes it out of the open-log
	// index.
	save := func() error {
		if err := store.PutTask(a.tx, t); err != nil {
			return err
		}
		if closing {
			return store.DeleteOpenLog(a.tx, t)
		}
		return nil
	}
	// unchanged answers a command that stores no output; a close is still
	// a change to store.
	unchanged := func(res *LogAppended) (any, error) {
		if closing {
			return res, save()
		}
		return res, nil
	}
	if t.LogsRemoved || t.LogsExpired {
		return unchanged(&LogAppended{Offset: t.LogOffset, Full: true})
	}
	if cmd.Offset > t.LogOffset {
		return nil, fmt.Errorf("%w: task %q has %d bytes of output stored; a chunk starting at byte %d would leave a gap", ErrConflict, t.TaskID, t.LogOffset, cmd.Offset)
	}
	data := cmd.Data
	end := cmd.Offset + int64(len(data))
	if end <= t.LogOffset {
		return unchanged(&LogAppended{Offset: t.LogOffset, Full: t.LogsTruncated}) // already stored
	}
	if cmd.Offset < t.LogOffset {
		data = data[t.LogOffset-cmd.Offset:]
	}
	t.LogOffset = end
	if cmd.Streams != nil && a.streamOffsets {
		so := *cmd.Streams
		t.StreamOffsets = &so
	}
	if !t.LogsTruncated && len(data) > 0 {
		room := cmd.MaxBytes - t.LogBytes
		if cmd.MaxBytes <= 0 || int64(len(data)) <= room {
			if err := appendLogChunk(a, t, data); err != nil {
				return nil, err
			}
		} else {
			if room > 0 {
				if err := appendLogChunk(a, t, data[:room]); err != nil {
					return nil, err
				}
			}
			marker := fmt.Sprintf("\n[gofer] log truncated: this task printed more than the %d byte limit; later output was dropped\n", cmd.MaxBytes)
			if err := appendLogChunk(a, t, []byte(marker)); err != nil {
				return nil, err
			}
			t.LogsTruncated = true
		}
	}
	return &LogAppended{Offset: t.LogOffset, Full: t.LogsTruncated}, save()
}

func applyLogsDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[LogsDelete](body)
	t, err := mustTask(a, cmd.TaskRef)
	if err != nil {
		return nil, err
	}
	if !t.Terminal() {
		return nil, fmt.Errorf("%w: task %q is %s; its log can be deleted once it is complete", ErrConflict, t.TaskID, t.State)
	}
	if err := store.DeleteTaskLogs(a.tx, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID); err != nil {
		return nil, err
	}
	t.LogsRemoved = true
	if err := store.PutTask(a.tx, t); err != nil {
		return nil, err
	}
	return t, a.emitIn(t.NamespaceID, t.PipelineID, model.EventDeletedTaskLogs, taskDetails(t))
}

// applyLogsExpire deletes the logs of complete runs after the pipeline's
// previous expiry point, up to Through; it stops at the first run that is
// still going.
func applyLogsExpire(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[LogsExpire](body)
	return expireRuns(a, cmd.NamespaceID, cmd.PipelineID, cmd.Through, model.EventExpiredRunLogs,
		func(p *model.Pipeline) *int64 { return &p.LogsExpiredThrough },
		func(r *model.Run) (bool, error) {
			if r.LogsExpired {
				return false, nil
			}
			tasks, err := store.ListTaskRecords(a.tx, r.NamespaceID, r.PipelineID, r.RunID)
			if err != nil {
				return false, err
			}
			for _, t := range tasks {
				if err := store.DeleteTaskLogs(a.tx, t.NamespaceID, t.PipelineID, t.RunID, t.TaskID); err != nil {
					return false, err
				}
				t.LogsExpired = true
				if err := store.PutTask(a.tx, t); err != nil {
					return false, err
				}
			}
			r.LogsExpired = true
			return true, nil
		})
}

// expireRuns is retention by number of runs: it walks the pipeline's runs
// after its expiry point (*mark) up to through, stopping at the first run
// that is still going, applies expire to each (which says whether it
// changed the run, then stored), advances the mark and emits one event.
func expireRuns(a *applyCtx, ns, pipeline string, through int64, event string,
	mark func(*model.Pipeline) *int64, expire func(*model.Run) (bool, error)) (any, error) {
	p, err := mustPipeline(a, ns, pipeline)
	if err != nil {
		return nil, err
	}
	expired := 0
	for id := *mark(p) + 1; id <= through && id <= p.LastRunID; id++ {
		r, err := store.GetRun(a.tx, p.NamespaceID, p.PipelineID, id)
		if err != nil {
			return nil, err
		}
		if r != nil && r.State != model.RunStateComplete {
			break
		}
		*mark(p) = id
		if r == nil {
			continue
		}
		changed, err := expire(r)
		if err != nil {
			return nil, err
		}
		if !changed {
			continue
		}
		if err := store.PutRun(a.tx, r); err != nil {
			return nil, err
		}
		expired++
	}
	if err := store.PutPipeline(a.tx, p); err != nil {
		return nil, err
	}
	if expired > 0 {
		if err := a.emitIn(p.NamespaceID, p.PipelineID, event, pipelineDetails(p.NamespaceID, p.PipelineID,
			"through_run", *mark(p), "runs", expired)); err != nil {
			return nil, err
		}
	}
	return expired, nil
}
