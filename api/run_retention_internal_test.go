package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// The object list of a run that run retention deleted answers 404 as GET
// of the run does, not 200 with an empty list; a kept run's list is 200.
func TestRunObjectsOfADeletedRunAnswer404(t *testing.T) {
	_, c, url, _ := leaderAPIWith(t, Options{Dev: true})
	apply, ref, _ := openLogTask(t, c, url)
	apply(fsm.CmdTaskFinish, fsm.TaskFinish{TaskRef: ref, Attempt: 1, Status: model.TaskStatusSuccessful})
	apply(fsm.CmdRunFinish, fsm.RunFinish{RunRef: ref.RunRef, Status: model.RunStatusSuccessful})
	apply(fsm.CmdRunCreate, fsm.RunCreate{NamespaceID: model.DefaultNamespace, PipelineID: "subs"})
	apply(fsm.CmdRunsDelete, fsm.RunsDelete{NamespaceID: model.DefaultNamespace, PipelineID: "subs", RunIDs: []int64{1}, Keep: 1})
	get := func(run int) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/namespaces/default/pipelines/subs/runs/%d/objects", url, run), nil)
		req.Header.Set("gofer-api-version", "v0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(1); code != http.StatusNotFound || !strings.Contains(body, "was deleted by run retention") {
		t.Fatalf("objects of deleted run 1: %d %s; want 404 saying run retention deleted it", code, body)
	}
	if code, body := get(9); code != http.StatusNotFound || !strings.Contains(body, "has no run 9") {
		t.Fatalf("objects of run 9, never started: %d %s; want a plain 404", code, body)
	}
	if code, body := get(2); code != http.StatusOK {
		t.Fatalf("objects of kept run 2: %d %s; want 200", code, body)
	}
}

// A run start retried with the Idempotency-Key of a run that run
// retention deleted: within the replay hour the API answers the first
// response again; after it, 409 naming the deleted run, and no run starts.
func TestRunStartRetriedAfterRetentionDeletedItsRun(t *testing.T) {
	_, c, url, _ := leaderAPIWith(t, Options{Dev: true})
	apply, _, _ := openLogTask(t, c, url)
	start := func() (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url+"/api/namespaces/default/pipelines/subs/runs", strings.NewReader(`{}`))
		req.Header.Set("gofer-api-version", "v0")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "nightly-2026-12-07")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := start(); code != http.StatusCreated || !strings.Contains(body, `"run_id":2`) {
		t.Fatalf("first start: %d %s; want 201 with run 2", code, body)
	}
	run2 := fsm.RunRef{NamespaceID: model.DefaultNamespace, PipelineID: "subs", RunID: 2}
	apply(fsm.CmdRunCancel, fsm.RunCancel{RunRef: run2, Cancel: model.Cancellation{Reason: model.ReasonUserCancelled}})
	apply(fsm.CmdTaskResolve, fsm.TaskResolve{TaskRef: fsm.TaskRef{RunRef: run2, TaskID: "tsk"}, Status: model.TaskStatusCancelled, Reason: model.StatusReason{Reason: model.ReasonUserCancelled}})
	apply(fsm.CmdRunFinish, fsm.RunFinish{RunRef: run2, Status: model.RunStatusCancelled, Reason: model.StatusReason{Reason: model.ReasonUserCancelled}})
	apply(fsm.CmdRunCreate, fsm.RunCreate{NamespaceID: model.DefaultNamespace, PipelineID: "subs"})
	apply(fsm.CmdRunsDelete, fsm.RunsDelete{NamespaceID: model.DefaultNamespace, PipelineID: "subs", RunIDs: []int64{2}, Keep: 1})

	if code, body := start(); code != http.StatusCreated || !strings.Contains(body, `"run_id":2`) {
		t.Fatalf("retry within the replay hour: %d %s; want the first answer (201, run 2) again", code, body)
	}
	// The replay hour passes: the pruner drops the request's record.
	apply(fsm.CmdPrune, fsm.Prune{IdempotencyBefore: time.Now().Add(time.Hour).UnixMilli(), Max: 100})
	if code, body := start(); code != http.StatusConflict || !strings.Contains(body, "run 2 started with this idempotency key was deleted by run retention") {
		t.Fatalf("retry after the replay hour: %d %s; want 409 naming deleted run 2", code, body)
	}
	var last int64
	_ = c.FSM().View(func(tx *bbolt.Tx) error {
		p, err := store.GetPipeline(tx, model.DefaultNamespace, "subs")
		if p != nil {
			last = p.LastRunID
		}
		return err
	})
	if last != 3 {
		t.Fatalf("LastRunID %d after the refused retry, want 3 (no run started)", last)
	}
}
