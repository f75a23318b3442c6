package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
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
