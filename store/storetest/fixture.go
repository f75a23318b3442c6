// Package storetest builds state files from text fixtures, so that tests
// of migrations can load records exactly as an older binary wrote them
// without committing a binary database file.
package storetest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"go.etcd.io/bbolt"
)

// StateFile writes a state file into the test's temp dir from fixture, a
// JSON object naming each top-level bucket with its [key, value] pairs
// (base64, byte for byte as the older binary stored them), and returns
// its path. The records are exact; the file's page layout is bbolt's own.
func StateFile(t testing.TB, fixture string) string {
	t.Helper()
	raw, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var buckets map[string][][2][]byte
	if err := json.Unmarshal(raw, &buckets); err != nil {
		t.Fatalf("fixture %s: %v", fixture, err)
	}
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	names := make([]string, 0, len(buckets))
	for name := range buckets {
		names = append(names, name)
	}
	sort.Strings(names)
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range names {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for _, kv := range buckets[name] {
				if err := b.Put(kv[0], kv[1]); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("fixture %s: %v", fixture, err)
	}
	return path
}

// WriteFixture writes every top-level bucket of tx's state to path in the
// format StateFile reads: one line per record, buckets sorted by name.
func WriteFixture(tx *bbolt.Tx, path string) error {
	var out []byte
	out = append(out, "{\n"...)
	first := true
	err := tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		if !first {
			out = append(out, ",\n"...)
		}
		first = false
		n, _ := json.Marshal(string(name))
		out = append(append(append(out, ' '), n...), ": ["...)
		sep := "\n  "
		err := b.ForEach(func(k, v []byte) error {
			if v == nil {
				return fmt.Errorf("bucket %s: nested bucket %q: fixtures hold top-level buckets only", name, k)
			}
			kv, _ := json.Marshal([2][]byte{k, v})
			out = append(append(out, sep...), kv...)
			sep = ",\n  "
			return nil
		})
		if sep != "\n  " {
			out = append(out, "\n "...)
		}
		out = append(out, ']')
		return err
	})
	if err != nil {
		return err
	}
	out = append(out, "\n}\n"...)
	return os.WriteFile(path, out, 0o644)
}
