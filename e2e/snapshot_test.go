package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// TestSnapshotSaveRestoreRoundTripThroughCLI: a backup saved with the CLI
// and restored later brings the whole cluster back to the saved state on
// every node, while membership and write forwarding keep working. Both
// commands go through a follower, which forwards them to the leader.
func TestSnapshotSaveRestoreRoundTripThroughCLI(t *testing.T) {
	c := NewCluster(t, 3)
	ctx := context.Background()
	cl := c.Client()
	cli := snapshotCLI(t, c.Token, c.Followers()[0].URL)

	if _, err := cl.CreateNamespace(ctx, "snap-a", "Saved", "exists in the backup"); err != nil {
		t.Fatalf("create snap-a: %v", err)
	}
	file := filepath.Join(t.TempDir(), "cluster.snap")
	if out, err := cli("server", "snapshot", "save", file); err != nil {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		t.Fatalf("snapshot save wrote no file: %v", err)
	}

	if _, err := cl.CreateNamespace(ctx, "snap-b", "Unsaved", "created after the backup"); err != nil {
		t.Fatalf("create snap-b: %v", err)
	}
	if err := cl.DeleteNamespace(ctx, "snap-a"); err != nil {
		t.Fatalf("delete snap-a: %v", err)
	}
	for _, n := range c.Nodes {
		snapshotCheck(t, n, c.Token, cl.LastIndex(), map[string]bool{"snap-a": false, "snap-b": true})
	}

	if out, err := cli("server", "snapshot", "restore", "--yes", file); err != nil {
		t.Fatalf("snapshot restore: %v\n%s", err, out)
	}
	// Every node installs the restored state: snap-a is back, snap-b gone.
	for _, n := range c.Nodes {
		ncl := n.Client(c.Token)
		WaitFor(t, 60*time.Second, func() error {
			for id, want := range map[string]bool{"snap-a": true, "snap-b": false} {
				if err := snapshotExists(ctx, ncl, id, want); err != nil {
					return fmt.Errorf("%s after restore: %w", n.Name, err)
				}
			}
			return nil
		})
		ns, err := ncl.GetNamespace(ctx, "snap-a")
		if err != nil {
			t.Fatalf("%s: read restored snap-a: %v", n.Name, err)
		}
		if ns.Name != "Saved" || ns.Description != "exists in the backup" {
			t.Fatalf("%s: restored snap-a is %+v, want the saved name and description", n.Name, ns)
		}
	}

	// Membership survives the restore: every node lists all three, all
	// reachable.
	membershipCheckMembers(t, c, c.Nodes)

	// Writes work afterwards through every node, followers forwarding.
	want := map[string]bool{"snap-a": true, "snap-b": false}
	var index uint64
	for _, n := range c.Nodes {
		id := "snap-after-" + n.Name
		ncl := n.Client(c.Token)
		if _, err := ncl.CreateNamespace(ctx, id, "After restore", "written through "+n.Name); err != nil {
			t.Fatalf("write through %s after the restore: %v", n.Name, err)
		}
		index = max(index, ncl.LastIndex())
		want[id] = true
	}
	for _, n := range c.Nodes {
		snapshotCheck(t, n, c.Token, index, want)
	}
}

// TestSnapshotRestoreRefusesDamagedFile: restoring a file that is not a
// complete backup (empty, foreign, truncated, unknown version, garbage
// instead of state) fails with a one-line error and a non-zero exit, the
// API answers 400, no node crashes, and the cluster's data is unchanged.
func TestSnapshotRestoreRefusesDamagedFile(t *testing.T) {
	d := snapshotDamageSetup(t)
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	badVersion := bytes.Replace(d.header, []byte(`"version":2,`), []byte(`"version":99,`), 1)
	full := d.full()

	d.run(t, []snapshotDamageCase{
		{"empty file", nil, []string{"truncated"}},
		{"text", []byte("this is not a gofer snapshot\n"), []string{"bad magic"}},
		{"random bytes", random(64 << 10), []string{"bad magic"}},
		{"header only", d.header, []string{"truncated"}},
		{"truncated in the middle", full[:len(d.header)+len(d.body)/2], []string{"truncated"}},
		{"missing the trailer", full[:len(d.header)+len(d.body)], []string{"truncated"}},
		{"missing the last byte", full[:len(full)-1], []string{"truncated"}},
		{"data after the end", append(append([]byte{}, full...), 'x'), []string{"data after its end"}},
		{"header with random state", append(append(append([]byte{}, d.header...), random(len(d.body))...), d.trailer...), []string{"checksum mismatch"}},
		{"unknown format version", append(append(append([]byte{}, badVersion...), d.body...), d.trailer...), []string{"unsupported backup format version 99"}},
	})
}

// TestSnapshotRestoreRefusesFlippedBytes: one byte flipped anywhere in a
// backup (header, state, trailer) or the file cut at any length is
// refused with 400 and a message saying what is wrong — by the format's
// checks (magic, version, size, checksum), before the state is even
// looked at — and nothing changes on any node. A backup from before the
// checksum (format version 1) is refused unless force_legacy is given.
// The intact backup still restores.
func TestSnapshotRestoreRefusesFlippedBytes(t *testing.T) {
	d := snapshotDamageSetup(t)
	full := d.full()
	formatErrors := []string{"checksum mismatch", "truncated", "bad magic", "header is damaged", "unsupported backup format version",
		"no checksum", "data after its end"}
	var cases []snapshotDamageCase
	// 40 positions: every part of the file, its edges included.
	positions := []int{0, 1, 2, 10, len(d.header) / 2, len(d.header) - 3, len(d.header) - 2, len(d.header) - 1}
	for i := 0; i < 24; i++ {
		positions = append(positions, len(d.header)+i*len(d.body)/24)
	}
	positions = append(positions, len(d.header)+len(d.body)-1)
	for _, off := range []int{0, 5, 21, 22, 50, len(d.trailer) - 2, len(d.trailer) - 1} {
		positions = append(positions, len(d.header)+len(d.body)+off)
	}
	for _, pos := range positions {
		data := append([]byte{}, full...)
		data[pos] ^= 1 << (pos % 8)
		cases = append(cases, snapshotDamageCase{fmt.Sprintf("flip at %d of %d", pos, len(full)), data, formatErrors})
	}
	for _, n := range []int{1, len(d.header) - 1, len(d.header) + 1, len(d.header) + 4096, len(full) - len(d.trailer) + 1} {
		cases = append(cases, snapshotDamageCase{fmt.Sprintf("cut at %d of %d", n, len(full)), full[:n], []string{"truncated"}})
	}
	// Version 1: the header line and the state, no trailer.
	legacy := append(bytes.Replace(d.header, []byte(`"version":2,`), []byte(`"version":1,`), 1), d.body...)
	cases = append(cases, snapshotDamageCase{"format version 1 without force_legacy", legacy, []string{"--force-legacy"}})
	if len(positions) != 40 {
		t.Fatalf("%d flip positions, want 40", len(positions))
	}
	d.run(t, cases)

	// The intact backup restores: snap-later, written after it, is gone.
	// A version 1 file is accepted when asked for.
	api, err := client.New([]string{d.apiURL}, client.WithToken(d.c.Token), client.WithRetryFor(0))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		opts client.RestoreOptions
	}{{"intact", full, client.RestoreOptions{}}, {"version 1 with force_legacy", legacy, client.RestoreOptions{ForceLegacy: true}}} {
		if _, err := api.SnapshotRestore(context.Background(), bytes.NewReader(tc.data), tc.opts); err != nil {
			t.Fatalf("restore %s backup: %v", tc.name, err)
		}
		for _, n := range d.c.Nodes {
			ncl := n.Client(d.c.Token)
			WaitFor(t, 60*time.Second, func() error {
				for id, want := range map[string]bool{"snap-kept": true, "snap-later": false} {
					if err := snapshotExists(context.Background(), ncl, id, want); err != nil {
						return fmt.Errorf("%s after restoring the %s backup: %w", n.Name, tc.name, err)
					}
				}
				return nil
			})
		}
		if _, err := d.c.Client().CreateNamespace(context.Background(), "snap-later", "After the backup", ""); err != nil {
			t.Fatalf("create snap-later again: %v", err)
		}
	}
}

// TestSnapshotRestoreRefusesCorruptState: a backup whose header and size
// are right but whose state file is damaged inside (it still opens as a
// bbolt file) is refused like any other damaged file: 400, no crash, no
// change.
func TestSnapshotRestoreRefusesCorruptState(t *testing.T) {
	d := snapshotDamageSetup(t)
	// The files carry a correct checksum of their damaged state (as a
	// backup of an already damaged state would): the state check refuses
	// them.
	sealed := d.seal
	d.run(t, []snapshotDamageCase{
		// Every page after bbolt's two meta pages is random.
		{"garbage pages", sealed(snapshotGarbagePages(t, d.body, false)), []string{"state is damaged"}},
		// Meta pages and the root bucket's page intact, the rest random.
		{"garbage bucket pages", sealed(snapshotGarbagePages(t, d.body, true)), []string{"state is damaged"}},
		// Every page well formed; one 8-byte page reference is wrong.
		{"looped page reference", sealed(snapshotLoopedBucket(t, d.body)), []string{"state is damaged"}},
	})
}

// snapshotDamage is a cluster with a saved backup, the state written
// after it, and what every node held before any damaged restore.
type snapshotDamage struct {
	c       *Cluster
	dir     string
	apiURL  string
	header  []byte // the backup's header line, newline included
	body    []byte // the backup's state file
	trailer []byte // the backup's checksum line
	before  []model.Namespace
}

type snapshotDamageCase struct {
	name string
	data []byte
	// want: the error message names one of these.
	want []string
}

func (d *snapshotDamage) full() []byte {
	return append(append(append([]byte{}, d.header...), d.body...), d.trailer...)
}

// seal makes a backup of state with the saved header and a correct
// checksum trailer (SHA-256 of header and state).
func (d *snapshotDamage) seal(state []byte) []byte {
	out := append(append([]byte{}, d.header...), state...)
	sum := sha256.Sum256(out)
	return append(out, "gofer-snapshot-sha256:"+hex.EncodeToString(sum[:])+"\n"...)
}

func snapshotDamageSetup(t *testing.T) *snapshotDamage {
	t.Helper()
	c := NewCluster(t, 3)
	ctx := context.Background()
	cl := c.Client()
	d := &snapshotDamage{c: c, dir: t.TempDir(), apiURL: c.Followers()[0].URL}
	if _, err := cl.CreateNamespace(ctx, "snap-kept", "In the backup", ""); err != nil {
		t.Fatalf("create snap-kept: %v", err)
	}
	good := filepath.Join(d.dir, "good.snap")
	if out, err := snapshotCLI(t, c.Token, d.apiURL)("server", "snapshot", "save", good); err != nil {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}
	// Written after the backup: a restore that wrongly went through would
	// remove it.
	if _, err := cl.CreateNamespace(ctx, "snap-later", "After the backup", ""); err != nil {
		t.Fatalf("create snap-later: %v", err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		t.Fatalf("saved snapshot has no header line")
	}
	const trailerLen = len("gofer-snapshot-sha256:") + 64 + 1
	if len(data) < nl+1+trailerLen || !bytes.HasPrefix(data[len(data)-trailerLen:], []byte("gofer-snapshot-sha256:")) {
		t.Fatalf("saved snapshot has no checksum trailer")
	}
	d.header, d.body, d.trailer = data[:nl+1], data[nl+1:len(data)-trailerLen], data[len(data)-trailerLen:]
	d.before = restartAgreedNamespaces(t, c, "snap-mark-1")
	return d
}

// run restores each damaged file through the CLI and through the API,
// then checks that nothing changed.
func (d *snapshotDamage) run(t *testing.T, cases []snapshotDamageCase) {
	t.Helper()
	c := d.c
	cli := snapshotCLI(t, c.Token, d.apiURL)
	api, err := client.New([]string{d.apiURL}, client.WithToken(c.Token), client.WithRetryFor(0))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(d.dir, strings.ReplaceAll(tc.name, " ", "-")+".snap")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := cli("server", "snapshot", "restore", "--yes", path)
			msg := strings.TrimSpace(out)
			t.Logf("gofer server snapshot restore printed: %s", msg)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Errorf("restore of a damaged file: want a non-zero exit, got %v", err)
			}
			if !strings.HasPrefix(msg, "error: ") || len(msg) <= len("error: ") || strings.Contains(msg, "\n") {
				t.Errorf("restore of a damaged file should print a one-line error message, printed:\n%s", out)
			}
			if !snapshotNames(msg, tc.want) {
				t.Errorf("restore of a damaged file printed %q; want it to say one of %q", msg, tc.want)
			}
			for _, trace := range []string{"panic:", "goroutine ", ".go:"} {
				if strings.Contains(out, trace) {
					t.Errorf("restore of a damaged file printed a stack trace (%q):\n%s", trace, out)
				}
			}
			snapshotReviveCrashed(t, c)

			// The API refuses it as the caller's mistake (400), not as a
			// server fault.
			_, err = api.SnapshotRestore(context.Background(), bytes.NewReader(tc.data))
			if !client.IsStatus(err, http.StatusBadRequest) {
				t.Errorf("POST /api/cluster/snapshot with a damaged file answered %v; want 400 Bad Request", err)
			} else if !snapshotNames(err.Error(), tc.want) {
				t.Errorf("POST /api/cluster/snapshot answered %q; want it to say one of %q", err, tc.want)
			}
			snapshotReviveCrashed(t, c)
		})
	}

	after := restartAgreedNamespaces(t, c, "snap-mark-2")
	after = restartWithout(after, "snap-mark-2")
	if !reflect.DeepEqual(d.before, after) {
		t.Fatalf("a refused restore changed the data:\n%s", restartDiff(d.before, after))
	}
	c.WaitForMembers(3)
}

func snapshotNames(msg string, want []string) bool {
	for _, w := range want {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return len(want) == 0
}

// snapshotGarbagePages returns a copy of a bbolt file (as a backup holds
// it) whose pages are overwritten with random bytes, except the two meta
// pages and, with keepRoot, the root bucket's page: such a file still
// opens, and with keepRoot even its top-level buckets can be listed.
func snapshotGarbagePages(t *testing.T, state []byte, keepRoot bool) []byte {
	t.Helper()
	pageSize, root := boltGeometry(t, state)
	keep := func(page int) bool { return page < 2 || (keepRoot && page == int(root)) }
	out := append([]byte{}, state...)
	for page := 0; page*pageSize < len(out); page++ {
		if !keep(page) {
			_, _ = rand.Read(out[page*pageSize : min((page+1)*pageSize, len(out))])
		}
	}
	return out
}

// boltGeometry reads a bbolt file's page size and root bucket page from
// its current meta page: of the two, the one with the higher transaction
// id (the other may point at pages freed since).
func boltGeometry(t *testing.T, state []byte) (pageSize int, root uint64) {
	t.Helper()
	const pageHeader = 16
	if len(state) < 2*pageHeader+64 {
		t.Fatalf("state of %d bytes is too small to be a bbolt file", len(state))
	}
	meta0 := state[pageHeader:]
	if magic := binary.LittleEndian.Uint32(meta0[0:4]); magic != 0xED0CDAED {
		t.Fatalf("state does not start with a bbolt meta page (magic %#x)", magic)
	}
	pageSize = int(binary.LittleEndian.Uint32(meta0[8:12]))
	meta := meta0
	if meta1 := state[pageSize+pageHeader:]; binary.LittleEndian.Uint32(meta1[0:4]) == 0xED0CDAED &&
		binary.LittleEndian.Uint64(meta1[48:56]) > binary.LittleEndian.Uint64(meta0[48:56]) {
		meta = meta1
	}
	return pageSize, binary.LittleEndian.Uint64(meta[16:24])
}

// snapshotLoopedBucket returns a copy of a bbolt file in which one
// 8-byte page reference is wrong: the first bucket listed in the root
// bucket (on its first leaf page, if the root bucket spans several)
// claims the root page as its own. Every page is well formed; only a
// consistency check of the page tree finds the damage.
func snapshotLoopedBucket(t *testing.T, state []byte) []byte {
	t.Helper()
	const pageHeader, leafElement, branchPageFlag, leafPageFlag, bucketFlag = 16, 16, 0x01, 0x02, 0x01
	pageSize, root := boltGeometry(t, state)
	out := append([]byte{}, state...)
	id := root
	page := out[int(id)*pageSize:]
	for binary.LittleEndian.Uint16(page[8:10]) == branchPageFlag {
		// Down the first child: a branch element is pos, ksize, pgid.
		id = binary.LittleEndian.Uint64(page[pageHeader+8 : pageHeader+16])
		page = out[int(id)*pageSize:]
	}
	if flags := binary.LittleEndian.Uint16(page[8:10]); flags != leafPageFlag {
		t.Fatalf("page %d under the root is not a leaf page (flags %#x)", id, flags)
	}
	count := int(binary.LittleEndian.Uint16(page[10:12]))
	for i := range count {
		elem := page[pageHeader+i*leafElement:]
		if binary.LittleEndian.Uint32(elem[0:4])&bucketFlag == 0 {
			continue
		}
		pos, ksize := binary.LittleEndian.Uint32(elem[4:8]), binary.LittleEndian.Uint32(elem[8:12])
		value := elem[pos+ksize:]
		binary.LittleEndian.PutUint64(value[0:8], root)
		return out
	}
	t.Fatalf("leaf page %d of the root bucket lists no bucket", id)
	return nil
}

// snapshotReviveCrashed waits until every node is up and a member
// everyone can reach; a node whose process exited (perhaps only now, as
// the request that killed it returns) is reported and started again, so
// one crash does not spoil the cases after it.
func snapshotReviveCrashed(t *testing.T, c *Cluster) {
	t.Helper()
	WaitFor(t, 60*time.Second, func() error {
		for _, n := range c.Nodes {
			if !n.Running() {
				t.Errorf("%s exited after a damaged restore (see its log)", n.Name)
				n.Restart()
			}
		}
		for _, n := range c.Nodes {
			cl, err := client.New([]string{n.URL}, client.WithToken(c.Token), client.WithRetryFor(0))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			members, err := cl.Members(ctx)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: members: %w", n.Name, err)
			}
			leaders := 0
			for _, m := range members {
				if !m.Reachable {
					return fmt.Errorf("%s sees %s unreachable", n.Name, m.ID)
				}
				if m.Leader {
					leaders++
				}
			}
			if len(members) != len(c.Nodes) || leaders != 1 {
				return fmt.Errorf("%s sees %d members and %d leaders", n.Name, len(members), leaders)
			}
		}
		return nil
	})
}

// snapshotCLI returns a runner for the gofer CLI aimed at url with token.
func snapshotCLI(t *testing.T, token, url string) func(args ...string) (string, error) {
	t.Helper()
	return func(args ...string) (string, error) {
		t.Helper()
		return runCLI(t, nil, append([]string{"--api-base-url", url, "--token", token}, args...)...)
	}
}

// snapshotExists checks that namespace id exists (want) or not.
func snapshotExists(ctx context.Context, cl *client.Client, id string, want bool) error {
	_, err := cl.GetNamespace(ctx, id)
	switch {
	case want && err != nil:
		return fmt.Errorf("namespace %s: %w", id, err)
	case !want && err == nil:
		return fmt.Errorf("namespace %s exists but should not", id)
	case !want && !client.IsStatus(err, 404):
		return fmt.Errorf("namespace %s: want 404, got %w", id, err)
	}
	return nil
}

// snapshotCheck reads node n alone once it applied index and checks which
// namespaces exist.
func snapshotCheck(t *testing.T, n *Node, token string, index uint64, want map[string]bool) {
	t.Helper()
	cl := n.Client(token).AtLeast(index)
	ctx := context.Background()
	for id, exists := range want {
		if err := snapshotExists(ctx, cl, id, exists); err != nil {
			t.Fatalf("%s at index %d: %v", n.Name, index, err)
		}
	}
}
