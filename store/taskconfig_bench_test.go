package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// BenchmarkTaskRecordCodec is the record work alone, without bbolt: decode
// a stored task execution and encode it again, fat (embedding its task)
// and slim (naming its config version), for a running task with a 1.5 KB
// script, 25 config variables and its 34-variable environment.
// fsm's BenchmarkTaskRecord and BenchmarkLogAppendApply measure the same
// inside the apply path.
func BenchmarkTaskRecordCodec(b *testing.B) {
	vars := map[string]string{}
	for i := range 25 {
		vars[fmt.Sprintf("SETTING_%02d", i)] = strings.Repeat("v", 40)
	}
	env := map[string]string{"GOFER_NAMESPACE_ID": "default", "GOFER_PIPELINE_ID": "dag", "GOFER_RUN_ID": "1", "GOFER_TASK_ID": "build",
		"GOFER_TASK_IMAGE": "registry.example.com/team/builder:2026.12", "GOFER_TASK_ATTEMPT": "1",
		"GOFER_API_BASE_URL": "http://10.0.0.1:8080,http://10.0.0.2:8080", "BRANCH": "main", "COMMIT": strings.Repeat("a", 40)}
	for k, v := range vars {
		env[k] = v
	}
	task := &sdk.TaskConfig{ID: "build", Image: "registry.example.com/team/builder:2026.12", Entrypoint: []string{"/bin/sh", "-c"},
		Command: []string{strings.Repeat("echo step && make -C ./services/api build test\n", 30)}, Variables: vars, Retries: 2,
		RetryBackoff: "10s", Resources: &sdk.Resources{CPU: 500, Memory: 512}, DependsOn: map[string]sdk.RequiredParentStatus{}}
	te := model.TaskExecution{NamespaceID: "default", PipelineID: "dag", RunID: 1, RunUID: 5, TaskID: "build", Task: task,
		State: model.TaskStateRunning, Status: model.TaskStatusUnknown, Attempt: 1, Container: "gofer-c-default-dag-1-build-1",
		Scheduled: 1_765_000_000_000, Started: 1_765_000_000_100, Variables: env, Created: 1_765_000_000_000, LogBytes: 4096, LogOffset: 4096, LogChunks: 12}
	for _, form := range []struct {
		name    string
		version int64
	}{{"fat", 0}, {"slim", 1}} {
		b.Run(form.name, func(b *testing.B) {
			t := te
			t.ConfigVersion = form.version
			raw, err := encodeTask(&t)
			if err != nil {
				b.Fatal(err)
			}
			size := len(raw)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				var d model.TaskExecution
				if err := json.Unmarshal(raw, &d); err != nil {
					b.Fatal(err)
				}
				d.LogBytes++
				if raw, err = encodeTask(&d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size), "record-bytes")
		})
	}
}
