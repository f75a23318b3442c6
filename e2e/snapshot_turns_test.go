package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// snapshotSpan is one automatic snapshot a node logged.
type snapshotSpan struct {
	node       string
	reason     string
	start, end int64 // unix ms
}

// finishedSnapshots reads the "snapshot finished" lines of n's JSON log.
func finishedSnapshots(t *testing.T, n *Node) []snapshotSpan {
	t.Helper()
	f, err := os.Open(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var spans []snapshotSpan
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `"snapshot finished"`) {
			continue
		}
		var rec struct {
			Message string `json:"@message"`
			Reason  string `json:"reason"`
			Start   int64  `json:"start_unix_ms"`
			End     int64  `json:"end_unix_ms"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Message != "snapshot finished" {
			continue
		}
		spans = append(spans, snapshotSpan{node: n.Name, reason: rec.Reason, start: rec.Start, end: rec.End})
	}
	return spans
}

// TestSnapshotsTakeTurns: with a low snapshot threshold and a steady write
// load, every node of a 3-node cluster snapshots (the followers in every
// turn, the leader once its log passes twice the threshold), no two
// snapshots ever overlap in time, none needed the safety valve, and the
// cluster keeps serving writes that every node reads back.
func TestSnapshotsTakeTurns(t *testing.T) {
	c := NewCluster(t, 3,
		"GOFER_WEB_SERVER__LOG_FORMAT=json",
		"GOFER_WEB_RAFT__SNAPSHOT_THRESHOLD=40",
		"GOFER_WEB_RAFT__SNAPSHOT_SLOT=1s",
		"GOFER_WEB_RAFT__SNAPSHOT_INTERVAL=100ms",
	)
	ctx := context.Background()
	cl := c.Client()
	leader := c.Leader()

	// About 20 writes a second: 60 entries per 3 s cycle of turns, well
	// past the threshold (40) and below the valve (160).
	i := 0
	write := func() {
		i++
		if _, err := cl.CreateNamespace(ctx, fmt.Sprintf("turns-%d", i), "", ""); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		time.Sleep(50 * time.Millisecond) // load pacing only; nothing is timed
	}
	WaitFor(t, 3*time.Minute, func() error {
		for range 20 {
			write()
		}
		for _, n := range c.Nodes {
			want := 2
			if n == leader {
				want = 1
			}
			if got := len(finishedSnapshots(t, n)); got < want {
				return fmt.Errorf("%s took %d snapshots, want at least %d", n.Name, got, want)
			}
		}
		return nil
	})

	// Slots: 1 s each in the order of the sorted node ids (node1, node2,
	// node3), a 3 s cycle from the Unix epoch; a node starts only in the
	// first half of its own.
	var all []snapshotSpan
	for pos, n := range c.Nodes {
		spans := finishedSnapshots(t, n)
		for _, s := range spans {
			if s.reason != "slot" {
				t.Errorf("%s took a snapshot for reason %q, want slot (turns), span %+v", n.Name, s.reason, s)
			}
			if into := s.start % 3000; into < int64(pos)*1000 || into >= int64(pos)*1000+500 {
				t.Errorf("%s started a snapshot %d ms into the 3 s cycle, outside the first half of its slot [%d, %d)",
					n.Name, into, pos*1000, pos*1000+500)
			}
		}
		all = append(all, spans...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a].start < all[b].start })
	for k := 1; k < len(all); k++ {
		if prev, cur := all[k-1], all[k]; cur.start <= prev.end {
			t.Errorf("snapshots overlap: %s %d..%d and %s %d..%d", prev.node, prev.start, prev.end, cur.node, cur.start, cur.end)
		}
	}
	t.Logf("%d snapshots across the cluster, leader %s", len(all), leader.Name)

	// The cluster still works and every node has every write.
	if _, err := cl.CreateNamespace(ctx, "turns-final", "", ""); err != nil {
		t.Fatalf("write after the snapshots: %v", err)
	}
	last := cl.LastIndex()
	for _, n := range c.Nodes {
		WaitFor(t, 30*time.Second, func() error {
			ns, err := n.Client(c.Token).AtLeast(last).GetNamespace(ctx, "turns-final")
			if err != nil {
				return err
			}
			if ns.ID != "turns-final" {
				return fmt.Errorf("%s answered %q", n.Name, ns.ID)
			}
			return nil
		})
	}
}
