package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func TestLogStoreRecordedAndOtherStoreRefusedUntouched(t *testing.T) {
	for _, tc := range []struct{ first, other, marker string }{
		{LogStoreWAL, LogStoreBoltDB, raftDBFile},
		{LogStoreBoltDB, LogStoreWAL, walDir},
	} {
		t.Run(tc.first, func(t *testing.T) {
			dir := t.TempDir()
			s, err := openConfiguredLogStore(dir, tc.first, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.StoreLog(&raft.Log{Index: 1, Term: 1, Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(filepath.Join(dir, logStoreFile))
			if got := strings.TrimSpace(string(raw)); got != tc.first {
				t.Fatalf("record = %q, want %q", got, tc.first)
			}

			_, err = openConfiguredLogStore(dir, tc.other, hclog.NewNullLogger())
			var mm *logStoreMismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("open with %s: %v, want a mismatch", tc.other, err)
			}
			for _, want := range []string{`"` + tc.first + `"`, `"` + tc.other + `"`, "gofer server remove", "--join", stateDBFile} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, tc.marker)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the refused start created %s (%v)", tc.marker, err)
			}

			s, err = openConfiguredLogStore(dir, tc.first, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var l raft.Log
			if err := s.GetLog(1, &l); err != nil || string(l.Data) != "x" {
				t.Fatalf("log after the refusal: %v %q", err, l.Data)
			}
			if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term != 7 {
				t.Fatalf("term after the refusal: %d %v", term, err)
			}
		})
	}
}

// A data dir from before the record existed holds raft.db: it is boltdb.
func TestLogStoreLegacyDataDirIsBoltDB(t *testing.T) {
	dir := t.TempDir()
	s, err := openLogStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := openConfiguredLogStore(dir, LogStoreWAL, hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), `"boltdb"`) {
		t.Fatalf("wal on a legacy boltdb data dir: %v, want a refusal naming boltdb", err)
	}
	s2, err := openConfiguredLogStore(dir, LogStoreBoltDB, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if got, _ := recordedLogStore(dir); got != LogStoreBoltDB {
		t.Fatalf("recorded %q", got)
	}
}

// A second process on a WAL data dir stops at once instead of blocking on
// raft-wal's unlocked-timeout meta file.
func TestWALDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	s, err := openConfiguredLogStore(dir, LogStoreWAL, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := openConfiguredLogStore(dir, LogStoreWAL, hclog.NewNullLogger()); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second open: %v, want ErrDataDirInUse", err)
	}
}
