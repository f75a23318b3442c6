package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// teamRole is docs/auth.md's example team role: everything in one
// namespace, no cluster-wide events.
func teamRole(ns string) []model.Permission {
	return []model.Permission{{
		Resources: []string{"namespaces:" + ns, "pipelines:.*", "configs", "deployments", "events", "objects", "runs",
			"secrets", "subscriptions", "task_executions"},
		Actions: []model.Action{model.ActionRead, model.ActionWrite, model.ActionDelete},
	}}
}

// nsClient is a client of one node, for one namespace.
func nsClient(t *testing.T, n *Node, token, ns string) *client.Client {
	t.Helper()
	cl, err := client.New([]string{n.URL}, client.WithToken(token), client.WithNamespace(ns), client.WithRetryFor(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestEventsFollowNamespaces: on a 3-node cluster, read through a
// follower, a token whose role covers only namespace team-a sees team-a's
// events and nothing of team-b or of the cluster (tokens, roles,
// membership) — in the list (every page full), by id (404, as for a
// missing event) and in the stream, history and live.
func TestEventsFollowNamespaces(t *testing.T) {
	c := NewCluster(t, 3)
	ctx := context.Background()
	leader := c.Leader()
	follower := c.Followers()[0]
	admin := leader.Client(c.Token)

	for _, ns := range []string{"team-a", "team-b"} {
		if _, err := admin.CreateNamespace(ctx, ns, ns, ""); err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
		cl := nsClient(t, leader, c.Token, ns)
		if _, err := cl.RegisterConfig(ctx, &sdk.PipelineConfig{ID: "pipe", Name: "pipe",
			Tasks: []*sdk.TaskConfig{{ID: "one", Image: "busybox"}}}); err != nil {
			t.Fatalf("register a pipeline in %s: %v", ns, err)
		}
	}
	if _, err := admin.CreateRole(ctx, "team-a", "own namespace team-a", teamRole("team-a")); err != nil {
		t.Fatalf("create role: %v", err)
	}
	tok, err := admin.CreateToken(ctx, "alice", []string{"team-a"}, 0, nil)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	// Interleave the namespaces' events so that a filter that stops early
	// would come back with short pages.
	for i := 0; i < 4; i++ {
		for j, ns := range []string{"team-b", "team-b", "team-a"} {
			key := fmt.Sprintf("obj_%d_%d", i, j)
			if _, err := nsClient(t, leader, c.Token, ns).PutObject(ctx, client.ObjectScope{Pipeline: "pipe"}, key, []byte("x"), false); err != nil {
				t.Fatalf("put object in %s: %v", ns, err)
			}
		}
	}
	all, err := admin.ListEvents(ctx, client.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var wantA []uint64
	var lastA, firstB uint64
	for _, e := range all {
		switch e.NamespaceID {
		case "team-a":
			wantA, lastA = append(wantA, e.ID), e.ID
		case "team-b":
			if firstB == 0 {
				firstB = e.ID
			}
		}
	}
	if len(wantA) < 6 || firstB == 0 {
		t.Fatalf("admin sees %d team-a events and first team-b event %d; want both namespaces' events", len(wantA), firstB)
	}

	alice := follower.Client(tok.Secret).AtLeast(admin.LastIndex())
	t.Run("list", func(t *testing.T) {
		for _, reverse := range []bool{false, true} {
			var got []uint64
			for offset := 0; ; offset += 2 {
				page, err := alice.ListEvents(ctx, client.Page{Limit: 2, Offset: offset, Reverse: reverse})
				if err != nil {
					t.Fatalf("list events (offset %d): %v", offset, err)
				}
				for _, e := range page {
					if e.NamespaceID != "team-a" {
						t.Errorf("team-a token listed event %d %s of namespace %q: %v", e.ID, e.Kind, e.NamespaceID, e.Details)
					}
					got = append(got, e.ID)
				}
				if len(page) < 2 {
					if len(got) != len(wantA) {
						t.Errorf("reverse=%v: a page of %d came back at offset %d after %d events; want every page full until all %d team-a events",
							reverse, len(page), offset, len(got)-len(page), len(wantA))
					}
					break
				}
			}
			if reverse {
				for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
					got[i], got[j] = got[j], got[i]
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(wantA) {
				t.Errorf("reverse=%v: team-a token listed %v, want %v", reverse, got, wantA)
			}
		}
	})

	t.Run("get", func(t *testing.T) {
		if e, err := alice.GetEvent(ctx, lastA); err != nil || e.ID != lastA {
			t.Errorf("team-a token reading its event %d: %v %v", lastA, e, err)
		}
		for _, id := range []uint64{firstB, all[0].ID, 1 << 40} {
			_, err := alice.GetEvent(ctx, id)
			var apiErr *client.Error
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
				t.Errorf("team-a token reading event %d: %v, want 404", id, err)
				continue
			}
			if want := fmt.Sprintf("event %d does not exist (it may have been pruned)", id); apiErr.Message != want {
				t.Errorf("event %d: message %q, want %q (an unreadable event answers as a missing one)", id, apiErr.Message, want)
			}
		}
	})

	t.Run("stream", func(t *testing.T) {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		events := make(chan *model.Event, 256)
		done := make(chan error, 1)
		go func() {
			done <- alice.StreamEvents(sctx, true, func(e *model.Event) error {
				events <- e
				return nil
			})
		}()
		next := func(why string) *model.Event {
			t.Helper()
			select {
			case e := <-events:
				if e.NamespaceID != "team-a" {
					t.Errorf("team-a token's stream carried event %d %s of namespace %q", e.ID, e.Kind, e.NamespaceID)
				}
				return e
			case <-sctx.Done():
				t.Fatalf("stream ended waiting for %s: %v", why, <-done)
			}
			return nil
		}
		var history []uint64
		for len(history) == 0 || history[len(history)-1] < lastA {
			history = append(history, next("the history").ID)
		}
		if fmt.Sprint(history) != fmt.Sprint(wantA) {
			t.Errorf("stream history %v, want %v", history, wantA)
		}
		// Live: a team-b object, then a team-a one; only the second arrives.
		if _, err := nsClient(t, leader, c.Token, "team-b").PutObject(ctx, client.ObjectScope{Pipeline: "pipe"}, "live_b", []byte("x"), false); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CreateNamespace(ctx, "team-c", "team-c", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := nsClient(t, leader, c.Token, "team-a").PutObject(ctx, client.ObjectScope{Pipeline: "pipe"}, "live_a", []byte("x"), false); err != nil {
			t.Fatal(err)
		}
		if e := next("the live team-a event"); e.Kind != model.EventPutObject || e.Details.String("key") != "live_a" {
			t.Errorf("first live event %d %s %v, want team-a's put_object of live_a", e.ID, e.Kind, e.Details)
		}
		cancel()
		<-done
	})
}
