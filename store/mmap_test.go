package store

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// A snapshot keeps a read transaction open while it streams the state. A
// write that grows the state file past its mapping must not wait for that
// transaction to end: bbolt remaps the file to grow it, a remap waits for
// every reader, and the FSM's apply (with every raft write behind it)
// stopped until the snapshot finished.
func TestGrowingWriteDoesNotWaitForAnOpenSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 320 MiB")
	}
	db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	snapshot, err := db.BeginRead()
	if err != nil {
		t.Fatal(err)
	}
	// Past 256 MiB, the mapping this file was opened with before the
	// reservation; the open read transaction also keeps bbolt from reusing
	// any page freed meanwhile, so the file grows by at least this much.
	const total, chunk = 320 << 20, 8 << 20
	value := bytes.Repeat([]byte{'x'}, chunk)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < total/chunk; i++ {
			err := db.Update(func(tx *bbolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("mmap-test"))
				if err != nil {
					return err
				}
				return b.Put([]byte(fmt.Sprintf("k%03d", i)), value)
			})
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		_ = snapshot.Rollback() // lets the blocked writer finish
		<-done
		t.Fatal("writes that grew the state file waited for an open read transaction (bbolt remapped the file)")
	}
	if err := snapshot.Rollback(); err != nil {
		t.Fatal(err)
	}
}

func TestMmapSizeReservesAtLeastTwiceTheFile(t *testing.T) {
	if got := mmapSize(filepath.Join(t.TempDir(), "missing.db")); got < 256<<20 {
		t.Fatalf("mmapSize of a new file = %d, want at least the former 256 MiB", got)
	}
}

// Under an address-space limit (ulimit -v) smaller than the reservation,
// the state file still opens, with a tight map. The limit applies to the
// whole process, so the test runs itself again in a child that sets it.
func TestOpenUnderAnAddressSpaceLimit(t *testing.T) {
	if os.Getenv("GOFER_TEST_ADDRESS_LIMIT") == "1" {
		limit := uint64(8 << 30) // far below the 64 GiB reservation
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
			t.Skipf("setrlimit: %v", err)
		}
		db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
		if err != nil {
			t.Fatalf("open under an 8 GiB address-space limit: %v", err)
		}
		db.Close()
		return
	}
	if runtime.GOOS != "linux" || strconv.IntSize != 64 {
		t.Skip("the reservation applies to 64-bit platforms; the limit test to Linux")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenUnderAnAddressSpaceLimit$", "-test.v")
	cmd.Env = append(os.Environ(), "GOFER_TEST_ADDRESS_LIMIT=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child under the address-space limit: %v\n%s", err, out)
	}
}
