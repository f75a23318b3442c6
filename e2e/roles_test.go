package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// TestRoleDeleteWhileTokensHoldIt: deleting a role that tokens still hold
// answers 204, as upstream's API tests expect; the tokens lose what it
// granted on every node at the index of the delete (fail closed, no cache
// keeps it), keep their other roles, gain nothing from a new role of the
// same id, and the event names them.
func TestRoleDeleteWhileTokensHoldIt(t *testing.T) {
	c := NewCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := c.Client()

	if _, err := admin.CreateNamespace(ctx, "roles-a", "roles-a", ""); err != nil {
		t.Fatal(err)
	}
	perms := []model.Permission{{Resources: []string{"namespaces:roles-a"}, Actions: []model.Action{model.ActionRead}}}
	if _, err := admin.CreateRole(ctx, "reader-a", "", perms); err != nil {
		t.Fatal(err)
	}
	holder, err := admin.CreateToken(ctx, "holder", []string{"reader-a", "user"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Before: every node lets the holder read roles-a (and cache it).
	for _, n := range c.Nodes {
		cl := n.Client(holder.Secret).AtLeast(admin.LastIndex())
		if _, err := cl.GetNamespace(ctx, "roles-a"); err != nil {
			t.Fatalf("%s: before the delete: %v", n.Name, err)
		}
	}

	status, index := roleDeleteRaw(t, c.Followers()[0].URL, c.Token, "reader-a")
	if status != http.StatusNoContent {
		t.Fatalf("DELETE a held role through a follower answered %d, want 204", status)
	}
	for _, n := range c.Nodes {
		cl := n.Client(holder.Secret).AtLeast(index)
		_, err := cl.GetNamespace(ctx, "roles-a")
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden {
			t.Fatalf("%s at index %d: the holder read roles-a (err %v); want 403", n.Name, index, err)
		}
		if _, err := cl.GetNamespace(ctx, model.DefaultNamespace); err != nil {
			t.Fatalf("%s: the holder lost its other role too: %v", n.Name, err)
		}
	}

	// A new role under the old id grants the old holder nothing.
	if _, err := admin.CreateRole(ctx, "reader-a", "", perms); err != nil {
		t.Fatal(err)
	}
	cl := c.Leader().Client(holder.Secret).AtLeast(admin.LastIndex())
	if _, err := cl.GetNamespace(ctx, "roles-a"); err == nil {
		t.Fatal("a recreated role of the same id granted the old holder access")
	}

	events, err := admin.AtLeast(index).ListEvents(ctx, client.Page{Limit: 50, Reverse: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events {
		if e.Kind == model.EventDeletedRole && e.Details.String("role_id") == "reader-a" {
			found = e.Details.String("tokens_affected") == holder.Token.ID
			if !found {
				t.Fatalf("deleted_role event %+v does not name the holder %s", e, holder.Token.ID)
			}
		}
	}
	if !found {
		t.Fatal("no deleted_role event for reader-a")
	}
}

// roleDeleteRaw deletes a role over plain HTTP and returns the status and
// the index the write committed at.
func roleDeleteRaw(t *testing.T, url, token, id string) (int, uint64) {
	t.Helper()
	resp, err := rawRequest(http.MethodDelete, url+"/api/roles/"+id, token, "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var index uint64
	if v := resp.Header.Get("X-Gofer-Index"); v != "" {
		if _, err := fmt.Sscan(v, &index); err != nil {
			t.Fatalf("X-Gofer-Index %q: %v", v, err)
		}
	}
	return resp.StatusCode, index
}
