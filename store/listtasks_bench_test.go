package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// BenchmarkListTasks lists a run of 1000 waiting task executions, each
// task ~5 KB of config (a 1.5 KB script, 25 variables), fat and slim: the
// API's task list of a large run. A slim list resolves the run's config
// version once (taskResolver), not once per record.
func BenchmarkListTasks(b *testing.B) {
	const tasks = 1000
	vars := map[string]string{}
	for i := range 25 {
		vars[fmt.Sprintf("SETTING_%02d", i)] = strings.Repeat("v", 100)
	}
	cfg := &model.PipelineConfig{NamespaceID: "ns", PipelineID: "p", Version: 1}
	for i := range tasks {
		cfg.Tasks = append(cfg.Tasks, &sdk.TaskConfig{ID: fmt.Sprintf("t%04d", i), Image: "registry.example.com/team/builder:2026.12",
			Command: []string{strings.Repeat("echo step && make -C ./services/api build test\n", 30)}, Variables: vars})
	}
	for _, form := range []struct {
		name    string
		version int64
	}{{"fat", 0}, {"slim", 1}} {
		b.Run(form.name, func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bbolt.Tx) error {
				if err := PutConfig(tx, cfg); err != nil {
					return err
				}
				for _, task := range cfg.Tasks {
					if err := PutTask(tx, &model.TaskExecution{NamespaceID: "ns", PipelineID: "p", RunID: 1, TaskID: task.ID, Task: task,
						ConfigVersion: form.version, Variables: task.Variables}); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := db.View(func(tx *bbolt.Tx) error {
					ts, err := ListTasks(tx, "ns", "p", 1)
					if err == nil && len(ts) != tasks {
						err = fmt.Errorf("%d tasks", len(ts))
					}
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
