package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
)

// TestTokenWorksOnFollowersAtOnce: a token created through the leader is
// accepted by every follower the moment its creator has it, although the
// followers apply the entry a little later (they catch up with the leader
// before they answer "unknown token").
func TestTokenWorksOnFollowersAtOnce(t *testing.T) {
	c := NewCluster(t, 3)
	leader := c.Leader()
	followers := c.Followers()
	admin, err := client.New([]string{leader.URL}, client.WithToken(c.Token), client.WithRetryFor(0))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	whoami := func(n *Node, secret string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, n.URL+"/api/tokens/whoami", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("gofer-api-version", "v0")
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("whoami on %s: %v", n.Name, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A write no node could authenticate is refused by the follower
	// itself, from its headers (and, for a well-formed secret, after
	// catching up with the leader), not forwarded.
	for _, auth := range []string{"", "Basic eDp5", "Bearer not-a-gofer-token", "Bearer gofer_" + strings.Repeat("A", 43)} {
		for _, n := range followers {
			req, err := http.NewRequest(http.MethodPost, n.URL+"/api/namespaces", strings.NewReader(`{"id":"nope","name":"nope"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("gofer-api-version", "v0")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Gofer-Node") != n.Name {
				t.Errorf("write with Authorization %q to follower %s: %d from %q; want 401 from the follower itself",
					auth, n.Name, resp.StatusCode, resp.Header.Get("X-Gofer-Node"))
			}
		}
	}

	const tokens, uses = 25, 4
	for i := 0; i < tokens; i++ {
		tok, err := admin.CreateToken(context.Background(), fmt.Sprintf("user-%d", i), []string{"user"}, 0, nil)
		if err != nil {
			t.Fatalf("create token %d: %v", i, err)
		}
		for _, n := range followers {
			for j := 0; j < uses; j++ {
				if code, body := whoami(n, tok.Secret); code != http.StatusOK {
					t.Fatalf("token %d (created through the leader %s) used on %s, attempt %d: %d %s",
						i, leader.Name, n.Name, j+1, code, body)
				}
			}
		}
	}
}
