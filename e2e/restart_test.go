package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// restartTrustedLine is what a node logs when it reuses the state file a
// graceful stop flushed instead of rebuilding it from raft.
const restartTrustedLine = "state file was closed cleanly; trusting it"

// TestRestartFullClusterKeepsAcknowledgedWrites (G1): writers create
// namespaces while every node is stopped at once; after all nodes restart,
// every acknowledged write is on every node and the nodes agree. A SIGKILL
// makes each node rebuild its state from raft; a SIGTERM lets it reuse the
// state file it flushed. Each case then restarts the cluster the other way
// and checks that both paths give byte-for-byte the same data.
func TestRestartFullClusterKeepsAcknowledgedWrites(t *testing.T) {
	cases := []struct {
		name string
		// stop ends a node while writes are in flight.
		stop func(*Node)
		// trusted: the restart after stop reuses the state file.
		trusted bool
		// then is the second full restart, done without writes, whose
		// data must equal the first one's.
		then        func(*Node)
		thenTrusted bool
	}{
		{name: "sigkill then sigterm", stop: (*Node).Kill, trusted: false, then: (*Node).Stop, thenTrusted: true},
		{name: "sigterm then sigkill", stop: (*Node).Stop, trusted: true, then: (*Node).Kill, thenTrusted: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster(t, 3)
			w := restartStartWriters(t, c.Client(), "rw", 4)
			w.WaitForAcks(t, 40)

			restartStopAll(c.Nodes, tc.stop)
			acked, attempted := w.Stop(t)
			t.Logf("%d of %d writes acknowledged before every node stopped", len(acked), len(attempted))

			restartStartAll(c)
			for _, n := range c.Nodes {
				restartCheckTrusted(t, n, tc.trusted)
			}
			first := restartAgreedNamespaces(t, c, "rw-mark-1")
			if err := restartHasAll(first, acked); err != nil {
				t.Fatalf("after the first restart: %v", err)
			}
			for _, ns := range first {
				if strings.HasPrefix(ns.ID, "rw") && ns.ID != "rw-mark-1" && !attempted[ns.ID] {
					t.Fatalf("namespace %q exists but no writer ever sent it", ns.ID)
				}
			}

			restartStopAll(c.Nodes, tc.then)
			restartStartAll(c)
			for _, n := range c.Nodes {
				restartCheckTrusted(t, n, tc.thenTrusted)
			}
			second := restartAgreedNamespaces(t, c, "rw-mark-2")
			second = restartWithout(second, "rw-mark-2")
			if !reflect.DeepEqual(first, second) {
				t.Fatalf("the two restart paths disagree:\n%s", restartDiff(first, second))
			}
		})
	}
}

// restartWriters creates namespaces with unique ids from several
// goroutines and records which creates were acknowledged.
type restartWriters struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	attempted map[string]bool
	acked     map[string]bool
	failures  []string
}

// restartStartWriters starts workers goroutines writing through cl; ids
// are prefix<worker>-<n>.
func restartStartWriters(t *testing.T, cl *client.Client, prefix string, workers int) *restartWriters {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &restartWriters{cancel: cancel, attempted: map[string]bool{}, acked: map[string]bool{}}
	t.Cleanup(func() { cancel(); w.wg.Wait() })
	for g := range workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("%s%d-%d", prefix, g, i)
				w.mu.Lock()
				w.attempted[id] = true
				w.mu.Unlock()
				_, err := cl.CreateNamespace(ctx, id, "Namespace "+id, "written during fault injection")
				w.mu.Lock()
				if err == nil {
					w.acked[id] = true
				} else if ctx.Err() == nil {
					w.failures = append(w.failures, fmt.Sprintf("%s: %v", id, err))
				}
				w.mu.Unlock()
				if err != nil {
					// A call fails only after the client's own retries;
					// pause briefly so a persistent error cannot spin.
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		}()
	}
	return w
}

// Acked is how many writes were acknowledged so far.
func (w *restartWriters) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// WaitForAcks waits until at least n writes were acknowledged.
func (w *restartWriters) WaitForAcks(t *testing.T, n int) {
	t.Helper()
	WaitFor(t, 60*time.Second, func() error {
		if got := w.Acked(); got < n {
			return fmt.Errorf("%d writes acknowledged, waiting for %d", got, n)
		}
		return nil
	})
}

// Stop ends the writers and returns the acknowledged and attempted ids.
func (w *restartWriters) Stop(t *testing.T) (acked, attempted map[string]bool) {
	t.Helper()
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.failures {
		t.Logf("write not acknowledged: %s", f)
	}
	acked, attempted = map[string]bool{}, map[string]bool{}
	for id := range w.acked {
		acked[id] = true
	}
	for id := range w.attempted {
		attempted[id] = true
	}
	return acked, attempted
}

// restartStopAll stops every node at the same time with stop (Kill or
// Stop) and waits until all are gone.
func restartStopAll(nodes []*Node, stop func(*Node)) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop(n)
		}()
	}
	wg.Wait()
}

// restartStartAll starts every node again and waits until they form the
// cluster again with every member reachable.
func restartStartAll(c *Cluster) {
	c.t.Helper()
	for _, n := range c.Nodes {
		n.Start()
	}
	c.WaitForMembers(len(c.Nodes))
}

// restartLatestLog is the node's log since its most recent start.
func restartLatestLog(t *testing.T, n *Node) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(n.Dir), n.Name+".log"))
	if err != nil {
		t.Fatalf("read log of %s: %v", n.Name, err)
	}
	s := string(raw)
	if i := strings.LastIndex(s, "===== start #"); i >= 0 {
		return s[i:]
	}
	return s
}

// restartCheckTrusted checks whether the node's latest start reused its
// state file.
func restartCheckTrusted(t *testing.T, n *Node, want bool) {
	t.Helper()
	got := strings.Contains(restartLatestLog(t, n), restartTrustedLine)
	switch {
	case want && !got:
		t.Errorf("%s did not reuse its state file after a graceful stop (no %q in its log)", n.Name, restartTrustedLine)
	case !want && got:
		t.Errorf("%s trusted its state file after a crash (%q in its log); it must rebuild from raft", n.Name, restartTrustedLine)
	}
}

// restartListNamespaces reads every namespace, page by page.
func restartListNamespaces(ctx context.Context, cl *client.Client) ([]model.Namespace, error) {
	const limit = 1000
	var out []model.Namespace
	for offset := 0; ; offset += limit {
		page, err := cl.ListNamespaces(ctx, client.Page{Limit: limit, Offset: offset})
		if err != nil {
			return nil, err
		}
		for _, ns := range page {
			out = append(out, *ns)
		}
		if len(page) < limit {
			return out, nil
		}
	}
}

// restartNodeNamespaces reads every namespace from node n alone once it
// has applied index.
func restartNodeNamespaces(t *testing.T, n *Node, token string, index uint64) []model.Namespace {
	t.Helper()
	cl := n.Client(token).AtLeast(index)
	var out []model.Namespace
	WaitFor(t, 60*time.Second, func() (err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err = restartListNamespaces(ctx, cl)
		if err != nil {
			return fmt.Errorf("%s: list namespaces at min_index %d: %w", n.Name, index, err)
		}
		return nil
	})
	return out
}

// restartAgreedNamespaces writes a marker namespace (committing it proves
// every earlier entry is committed), then reads every running node at the
// marker's index and checks they all hold the same namespaces.
func restartAgreedNamespaces(t *testing.T, c *Cluster, marker string) []model.Namespace {
	t.Helper()
	cl := c.Client()
	if _, err := cl.CreateNamespace(context.Background(), marker, "Marker "+marker, ""); err != nil {
		t.Fatalf("write marker %s: %v", marker, err)
	}
	index := cl.LastIndex()
	var first []model.Namespace
	var firstNode string
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		got := restartNodeNamespaces(t, n, c.Token, index)
		if err := restartHasAll(got, map[string]bool{marker: true}); err != nil {
			t.Fatalf("%s at index %d: %v", n.Name, index, err)
		}
		if first == nil {
			first, firstNode = got, n.Name
			continue
		}
		if !reflect.DeepEqual(first, got) {
			t.Fatalf("%s and %s disagree at index %d:\n%s", firstNode, n.Name, index, restartDiff(first, got))
		}
	}
	return first
}

// restartHasAll reports the ids in want that list lacks.
func restartHasAll(list []model.Namespace, want map[string]bool) error {
	have := map[string]bool{}
	for _, ns := range list {
		have[ns.ID] = true
	}
	var missing []string
	for id := range want {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%d acknowledged namespace(s) missing: %s", len(missing), strings.Join(missing, ", "))
	}
	return nil
}

// restartWithout drops the namespace with the given id.
func restartWithout(list []model.Namespace, id string) []model.Namespace {
	var out []model.Namespace
	for _, ns := range list {
		if ns.ID != id {
			out = append(out, ns)
		}
	}
	return out
}

// restartDiff describes how two namespace lists differ.
func restartDiff(a, b []model.Namespace) string {
	byID := func(list []model.Namespace) map[string]model.Namespace {
		m := map[string]model.Namespace{}
		for _, ns := range list {
			m[ns.ID] = ns
		}
		return m
	}
	am, bm := byID(a), byID(b)
	var lines []string
	for id, x := range am {
		if y, ok := bm[id]; !ok {
			lines = append(lines, fmt.Sprintf("only in the first: %+v", x))
		} else if x != y {
			lines = append(lines, fmt.Sprintf("differs: %+v vs %+v", x, y))
		}
	}
	for id, y := range bm {
		if _, ok := am[id]; !ok {
			lines = append(lines, fmt.Sprintf("only in the second: %+v", y))
		}
	}
	if len(lines) == 0 {
		lines = append(lines, fmt.Sprintf("same namespaces in a different order (%d vs %d)", len(a), len(b)))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
