// Package fsmtest gives tests outside package fsm a real state machine on
// a fresh bbolt file in the test's temp dir, closed when the test ends.
package fsmtest

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
)

// New opens the state machine; the test fails if it cannot.
func New(t testing.TB) *fsm.FSM {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsm.New(db, store.Options{NoSync: true}, hclog.NewNullLogger())
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Flush(); db.Close() })
	return f
}
