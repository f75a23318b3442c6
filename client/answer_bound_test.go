package client

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/goferhq/gofer/store/backup"
)

// A snapshot save gets no headers until the leader has made the snapshot,
// which may take minutes: the answer timeout must not cut it off.
func TestSnapshotSaveIsNotCutByAnswerTimeout(t *testing.T) {
	state := "the state"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(400 * time.Millisecond) // making the snapshot
		w.Header().Set("Content-Type", "application/octet-stream")
		_ = backup.Write(w, backup.Header{Size: int64(len(state))}, strings.NewReader(state))
	}))
	defer srv.Close()
	cl, _ := New([]string{srv.URL}, WithAnswerTimeout(100*time.Millisecond), WithRetryFor(0))
	var out bytes.Buffer
	if _, err := cl.SnapshotSave(context.Background(), &out); err != nil {
		t.Fatalf("snapshot save slower than the answer timeout: %v", err)
	}
	if !strings.Contains(out.String(), state) {
		t.Errorf("saved %q; want the backup", out.String())
	}
}
