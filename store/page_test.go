package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/model"
)

// TestListTasksPage pages a run's tasks forwards and backwards, including
// run 255, whose key prefix ends in the byte 0xff (a reverse scan must
// still start at that run's last task, not at the next run's).
func TestListTasksPage(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, run := range []int64{254, 255, 256} {
			for _, task := range []string{"aaa", "bbb", "ccc", "ddd"} {
				if err := PutTask(tx, &model.TaskExecution{NamespaceID: "default", PipelineID: "pipe", RunID: run, TaskID: task}); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run  int64
		page Page
		want string
	}{
		{255, Page{}, "aaa,bbb,ccc,ddd"},
		{255, Page{Limit: 2}, "aaa,bbb"},
		{255, Page{Limit: 2, Offset: 1}, "bbb,ccc"},
		{255, Page{Limit: 3, Reverse: true}, "ddd,ccc,bbb"},
		{255, Page{Limit: 2, Offset: 3, Reverse: true}, "aaa"},
		{254, Page{Reverse: true}, "ddd,ccc,bbb,aaa"},
		{256, Page{Limit: 1, Reverse: true}, "ddd"},
		{255, Page{Offset: 9}, ""},
	} {
		var got []string
		if err := db.View(func(tx *bbolt.Tx) error {
			list, err := ListTasksPage(tx, "default", "pipe", tc.run, tc.page)
			for _, te := range list {
				if te.RunID != tc.run {
					return fmt.Errorf("run %d page %+v returned a task of run %d", tc.run, tc.page, te.RunID)
				}
				got = append(got, te.TaskID)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if s := strings.Join(got, ","); s != tc.want {
			t.Errorf("run %d page %+v: got %q, want %q", tc.run, tc.page, s, tc.want)
		}
	}
}
