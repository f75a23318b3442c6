package fsm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// BenchmarkTaskRecord measures what every hot-path applier (a log append
// every 250 ms per running task, each status change) pays for the task
// record: read and decode it, encode and write it back, in a write
// transaction, for a fat record (envelope version 4) and a slim one
// (version 6). record-bytes is the stored size.
func BenchmarkTaskRecord(b *testing.B) {
	for _, v := range []struct {
		name    string
		version byte
	}{{"fat-v4", envelopeVersionSteps}, {"slim-v6", envelopeVersionSlim}} {
		b.Run(v.name, func(b *testing.B) {
			f, ref := benchRunningTask(b, v.version)
			f.Flush()
			var size int
			err := f.DB().Update(func(tx *bbolt.Tx) error {
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					t, err := store.GetTaskRecord(tx, ref.NamespaceID, ref.PipelineID, ref.RunID, ref.TaskID)
					if err != nil {
						return err
					}
					t.LogBytes++
					if err := store.PutTask(tx, t); err != nil {
						return err
					}
				}
				b.StopTimer()
				size = len(tx.Bucket([]byte("task_executions")).Get(taskRecordKey(tx, ref)))
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(size), "record-bytes")
		})
	}
}

// BenchmarkLogAppendApply is the whole LogAppend apply (decode the entry,
// check the task, store the chunk, rewrite the record) for a running
// task whose record is fat or slim.
func BenchmarkLogAppendApply(b *testing.B) {
	for _, v := range []struct {
		name    string
		version byte
	}{{"fat-v4", envelopeVersionSteps}, {"slim-v6", envelopeVersionSlim}} {
		b.Run(v.name, func(b *testing.B) {
			f, ref := benchRunningTask(b, v.version)
			lb := &logBuilder{t: b, index: 1000, version: v.version}
			line := []byte(strings.Repeat("x", 99) + "\n")
			logs := make([]*raft.Log, b.N)
			for i := range logs {
				logs[i] = lb.entry(CmdLogAppend, LogAppend{TaskRef: ref, Attempt: 1, Offset: int64(i * len(line)), Data: line, MaxBytes: 1 << 40})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, l := range logs {
				if res := f.ApplyBatch([]*raft.Log{l}); res[0].(*Result).Err != nil {
					b.Fatal(res[0].(*Result).Err)
				}
			}
		})
	}
}

// benchRunningTask makes a running task of a typical pipeline: a task
// with a script, 25 config variables and resources, scheduled with the
// environment the executor gives it (system, config and run variables).
func benchRunningTask(b *testing.B, version byte) (*FSM, TaskRef) {
	b.Helper()
	x := &runFixture{t: b, f: testFSM(b, b.TempDir()), b: &logBuilder{t: b, version: version}}
	vars := map[string]string{}
	for i := range 25 {
		vars[fmt.Sprintf("SETTING_%02d", i)] = strings.Repeat("v", 40)
	}
	script := strings.Repeat("echo step && make -C ./services/api build test\n", 30)
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG", Tasks: []*sdk.TaskConfig{
		{ID: "build", Image: "registry.example.com/team/builder:2026.12", Entrypoint: []string{"/bin/sh", "-c"}, Command: []string{script},
			Variables: vars, Retries: 2, RetryBackoff: "10s", Resources: &sdk.Resources{CPU: 500, Memory: 512}},
		{ID: "deploy", Image: "busybox", DependsOn: map[string]sdk.RequiredParentStatus{"build": sdk.RequiredParentStatusSuccess}},
	}}
	x.ok(CmdClusterInit, ClusterInit{ClusterID: "c", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: "default"}})
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg})
	x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 1})
	runVars := map[string]string{"BRANCH": "main", "COMMIT": strings.Repeat("a", 40)}
	x.ok(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag", Variables: runVars})
	x.ok(CmdRunStart, RunStart{RunRef: RunRef{NamespaceID: "default", PipelineID: "dag", RunID: 1}})
	env := map[string]string{"GOFER_NAMESPACE_ID": "default", "GOFER_PIPELINE_ID": "dag", "GOFER_RUN_ID": "1", "GOFER_TASK_ID": "build",
		"GOFER_TASK_IMAGE": cfg.Tasks[0].Image, "GOFER_TASK_ATTEMPT": "1", "GOFER_API_BASE_URL": "http://10.0.0.1:8080,http://10.0.0.2:8080"}
	model.OverlayEnv(env, vars)
	model.OverlayEnv(env, runVars)
	ref := TaskRef{RunRef: RunRef{NamespaceID: "default", PipelineID: "dag", RunID: 1}, TaskID: "build"}
	x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: ref, Attempt: 1, Container: "gofer-c-default-dag-1-build-1", Variables: env})
	x.ok(CmdTaskRunning, TaskRunning{TaskRef: ref, Attempt: 1})
	return x.f, ref
}

func taskRecordKey(tx *bbolt.Tx, ref TaskRef) []byte {
	var key []byte
	_ = store.ForEachTaskRaw(tx, ref.NamespaceID, ref.PipelineID, ref.RunID, func(k, v []byte) error {
		if strings.HasSuffix(string(k), ref.TaskID) {
			key = append([]byte(nil), k...)
		}
		return nil
	})
	return key
}
