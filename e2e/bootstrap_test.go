package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// A node bootstrapping a cluster without cluster.secret says at once that
// no other node can join it, and how to fix it (joiners would otherwise
// loop on a 401 that blames themselves). With the secret it says nothing.
func TestBootstrapWithoutClusterSecretWarns(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    []string
		warned bool
	}{{"no-secret", []string{"GOFER_WEB_CLUSTER__SECRET="}, true}, {"with-secret", nil, false}} {
		n := NewNode(t, tc.name, "--bootstrap")
		n.Env = append(n.Env, tc.env...)
		n.Start()
		var data []byte
		WaitFor(t, 30*time.Second, func() error { // the line logged once the node has started
			var err error
			if data, err = os.ReadFile(n.logPath); err != nil || !strings.Contains(string(data), "gofer node started") {
				return fmt.Errorf("%s has not started: %v", tc.name, err)
			}
			return nil
		})
		warned := strings.Contains(string(data), "this cluster has no cluster.secret: no other node can join it") &&
			strings.Contains(string(data), "GOFER_WEB_CLUSTER__SECRET")
		if warned != tc.warned {
			t.Errorf("%s: warned %v, want %v; log:\n%s", tc.name, warned, tc.warned, data)
		}
		n.Stop()
	}
}
