package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestRunRetention: a pipeline with run_retention count 2 keeps, after 5
// runs on real containers, only its newest 2 runs with their logs, on
// every node; the older ones answer 404 saying retention deleted them,
// the run list pages over the gap, the deleted_runs events account for
// every deleted run, and the next run gets a new id.
func TestRunRetention(t *testing.T) {
	// The pruner passes every second (its interval is the event prune
	// interval).
	rc := runsNewCluster(t, 3, "GOFER_WEB_API__EVENT_PRUNE_INTERVAL=1s")
	ctx := context.Background()
	const pipeline = "retained"
	rc.deploy(t, &sdk.PipelineConfig{ID: pipeline, Name: "run retention", RunRetention: &sdk.RunRetention{Count: 2},
		Tasks: []*sdk.TaskConfig{runsSh("say", `echo "output of run $GOFER_RUN_ID"`)}})
	for i := int64(1); i <= 5; i++ {
		r := rc.start(t, pipeline, nil)
		if r.RunID != i {
			t.Fatalf("run %d got id %d", i, r.RunID)
		}
		if r = rc.wait(t, pipeline, r.RunID, 2*time.Minute); r.Status != model.RunStatusSuccessful {
			t.Fatalf("run %d ended %s\n%s", i, r.Status, rc.describe(pipeline, i))
		}
	}

	// Every node (followers read their own state) converges on runs 4
	// and 5; the list is paged one run at a time over the gap.
	for _, n := range rc.Nodes {
		cl := n.Client(rc.Token)
		WaitFor(t, time.Minute, func() error {
			var ids []int64
			for off := 0; off < 10; off++ {
				page, err := cl.ListRuns(ctx, pipeline, client.Page{Limit: 1, Offset: off})
				if err != nil {
					return err
				}
				if len(page) == 0 {
					break
				}
				ids = append(ids, page[0].RunID)
			}
			if fmt.Sprint(ids) != "[4 5]" {
				return fmt.Errorf("%s lists runs %v, want [4 5]", n.Name, ids)
			}
			return nil
		})
		for run := int64(1); run <= 3; run++ {
			_, err := cl.GetRun(ctx, pipeline, run)
			var apiErr *client.Error
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || !strings.Contains(apiErr.Message, "deleted by run retention") {
				t.Fatalf("%s: GET run %d: %v, want 404 saying run retention deleted it", n.Name, run, err)
			}
		}
		if _, err := cl.GetRun(ctx, pipeline, 9); err == nil || strings.Contains(err.Error(), "retention") {
			t.Fatalf("%s: GET of a run that never existed: %v, want a plain 404", n.Name, err)
		}
	}
	for run := int64(4); run <= 5; run++ {
		if got, want := runsLogs(t, rc.cl, pipeline, run, "say"), fmt.Sprintf("output of run %d", run); !strings.Contains(got, want) {
			t.Fatalf("log of kept run %d: %q, want %q", run, got, want)
		}
	}
	if _, err := rc.cl.TaskLogs(ctx, pipeline, 1, "say", false); err == nil {
		t.Fatal("the log of deleted run 1 is still served")
	}

	// One event per batch; together they name runs 1 to 3.
	events, err := rc.cl.ListEventsOfKind(ctx, client.Page{Limit: 100}, model.EventDeletedRuns)
	if err != nil {
		t.Fatal(err)
	}
	deleted, lowest, highest := int64(0), int64(1<<62), int64(0)
	for _, e := range events {
		if e.PipelineID != pipeline || e.NamespaceID != model.DefaultNamespace {
			t.Fatalf("event %+v is scoped to another pipeline", e)
		}
		n, _ := e.Details.Int("runs")
		from, _ := e.Details.Int("from_run")
		through, _ := e.Details.Int("through_run")
		deleted += n
		lowest, highest = min(lowest, from), max(highest, through)
	}
	if deleted != 3 || lowest != 1 || highest != 3 {
		t.Fatalf("deleted_runs events %v: %d runs from %d through %d, want 3 from 1 through 3", events, deleted, lowest, highest)
	}
	// The runs' own events stay.
	if completed, err := rc.cl.ListEventsOfKind(ctx, client.Page{Limit: 100}, model.EventCompletedRun); err != nil || len(completed) != 5 {
		t.Fatalf("completed_run events: %d (%v), want 5", len(completed), err)
	}

	// Ids are never reused.
	if r := rc.start(t, pipeline, nil); r.RunID != 6 {
		t.Fatalf("the next run got id %d, want 6", r.RunID)
	}
	rc.wait(t, pipeline, 6, 2*time.Minute)
	rc.noContainersLeft(t, 40*time.Second)
}
