package fsm

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// slimState is fixtureScenario at envelope version 6: runs 1 (version 1,
// pruned and retained), 2 and 3 (version 2), all slim.
func slimState(t *testing.T) (*FSM, *logBuilder) {
	t.Helper()
	f := testFSM(t, t.TempDir())
	b := &logBuilder{t: t, version: envelopeVersionSlim}
	applyAll(t, f, fixtureScenario(b))
	return f, b
}

// bucketLines is the dump's lines of one bucket.
func bucketLines(t *testing.T, f *FSM, bucket string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(dump(t, f), "\n") {
		if strings.HasPrefix(line, bucket+" ") {
			out = append(out, line)
		}
	}
	return out
}

func configRefs(t *testing.T, f *FSM, version int64) uint64 {
	t.Helper()
	var n uint64
	if err := f.View(func(tx *bbolt.Tx) error {
		n = store.ConfigRefs(tx, "default", "build", version)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// Every slim record counts once for its version, and deleting the last
// run that names a pruned version deletes its retained copy: retained
// configs do not pile up for the pipeline's life, and a version deleted
// on purpose (a leaked credential) does not survive its runs.
func TestRunsDeleteReleasesRetainedConfigs(t *testing.T) {
	f, b := slimState(t)
	if n1, n2 := configRefs(t, f, 1), configRefs(t, f, 2); n1 != 2 || n2 != 4 {
		t.Fatalf("versions 1 and 2 counted %d and %d records, want 2 and 4", n1, n2)
	}
	if got := bucketLines(t, f, "retained_configs"); len(got) != 1 {
		t.Fatalf("retained configs %v, want version 1's", got)
	}
	ref := func(task string) TaskRef {
		return TaskRef{RunRef: RunRef{NamespaceID: "default", PipelineID: "build", RunID: 1}, TaskID: task}
	}
	applyAll(t, f, []*raft.Log{
		b.entry(CmdTaskResolve, TaskResolve{TaskRef: ref("test"), Status: model.TaskStatusSkipped, Reason: model.StatusReason{Reason: model.ReasonFailedPrecondition}}),
		b.entry(CmdRunFinish, RunFinish{RunRef: ref("").RunRef, Status: model.RunStatusSuccessful}),
	})
	res := applyAll(t, f, []*raft.Log{b.entry(CmdRunsDelete, RunsDelete{NamespaceID: "default", PipelineID: "build", RunIDs: []int64{1}, Keep: 1})})
	if got := res[0].Value.(*RunsDeleted); got.Deleted != 1 {
		t.Fatalf("runs_delete answered %+v, want run 1 deleted", got)
	}
	if got := bucketLines(t, f, "retained_configs"); len(got) != 0 {
		t.Errorf("version 1 is still retained after its last run went: %v", got)
	}
	if n := configRefs(t, f, 1); n != 0 {
		t.Errorf("version 1 still counts %d records", n)
	}
	if n := configRefs(t, f, 2); n != 4 {
		t.Errorf("version 2 counts %d records, want 4 (runs 2 and 3 remain)", n)
	}
	checkStateFile(t, f)
}

// A version still named is retained when deleted, and stays while one of
// its runs remains; a pipeline delete clears the counts and the copies.
func TestConfigAndPipelineDeleteKeepTheRefsRight(t *testing.T) {
	f, b := slimState(t)
	// Version 4 has no runs: deleting it keeps nothing. Version 2, which
	// runs 2 and 3 name, is retained with its count.
	v4 := &sdk.PipelineConfig{ID: "build", Name: "Build", Tasks: []*sdk.TaskConfig{{ID: "noop", Image: "busybox"}}}
	v5 := &sdk.PipelineConfig{ID: "build", Name: "Build", Tasks: []*sdk.TaskConfig{{ID: "noop", Image: "alpine"}}}
	applyAll(t, f, []*raft.Log{
		b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: v4}),
		b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: v5}),
		b.entry(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "build", Version: 5}),
		b.entry(CmdConfigDelete, ConfigDelete{NamespaceID: "default", PipelineID: "build", Version: 4}),
		b.entry(CmdConfigDelete, ConfigDelete{NamespaceID: "default", PipelineID: "build", Version: 2}),
	})
	var retained []string
	for _, line := range bucketLines(t, f, "retained_configs") {
		for _, v := range []string{"1", "2", "4"} {
			if strings.Contains(line, `"version":`+v+`,`) {
				retained = append(retained, v)
			}
		}
	}
	if strings.Join(retained, " ") != "1 2" {
		t.Errorf("retained versions %v, want 1 and 2 (named by runs), not 4", retained)
	}
	if n := configRefs(t, f, 4); n != 0 {
		t.Errorf("version 4 counts %d records", n)
	}
	if n := configRefs(t, f, 2); n != 4 {
		t.Errorf("deleted version 2 counts %d records, want 4", n)
	}
	checkStateFile(t, f)
	applyAll(t, f, []*raft.Log{b.entry(CmdPipelineDelete, PipelineDelete{NamespaceID: "default", PipelineID: "build"})})
	for _, bucket := range []string{"config_refs", "retained_configs"} {
		if got := bucketLines(t, f, bucket); len(got) != 0 {
			t.Errorf("%s after the pipeline was deleted: %v", bucket, got)
		}
	}
}

// A retry of a task whose version was pruned (kept only in
// retained_configs) writes its header with the task's retries from there.
func TestRetryOfARetainedVersion(t *testing.T) {
	f, b := slimState(t)
	ref := TaskRef{RunRef: RunRef{NamespaceID: "default", PipelineID: "build", RunID: 1}, TaskID: "test"}
	exit := 1
	applyAll(t, f, []*raft.Log{
		b.entry(CmdTaskSchedule, TaskSchedule{TaskRef: ref, Attempt: 1, Container: "c-1-test-1", Variables: map[string]string{"A": "1"}}),
		b.entry(CmdTaskRunning, TaskRunning{TaskRef: ref, Attempt: 1}),
		b.entry(CmdTaskFinish, TaskFinish{TaskRef: ref, Attempt: 1, Status: model.TaskStatusFailed, ExitCode: &exit, RetryAt: 1}),
		b.entry(CmdTaskSchedule, TaskSchedule{TaskRef: ref, Attempt: 2, Container: "c-1-test-2", Variables: map[string]string{"A": "1"}}),
	})
	var log string
	if err := f.View(func(tx *bbolt.Tx) error {
		if raw := tx.Bucket([]byte("configs")); raw != nil {
			if store.ConfigVersions(tx, "default", "build")[0] == 1 {
				t.Fatal("version 1 was not pruned: the test proves nothing")
			}
		}
		chunks, _ := store.LogChunks(tx, "default", "build", 1, "test", 0, 10)
		for _, c := range chunks {
			log += string(c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if log != "[gofer] attempt 2 of 1 starting\n" {
		t.Errorf("log %q, want the retry header with version 1's retries (0)", log)
	}
}

// A version 6 log append with stream positions stores them in the slim
// record, and readers see them with the task resolved.
func TestSlimRecordKeepsStreamOffsets(t *testing.T) {
	f, b := slimState(t)
	ref := TaskRef{RunRef: RunRef{NamespaceID: "default", PipelineID: "build", RunID: 2}, TaskID: "lint"}
	applyAll(t, f, []*raft.Log{b.entry(CmdLogAppend, LogAppend{TaskRef: ref, Attempt: 1, Offset: 0, Data: []byte("out\nerr\n"), MaxBytes: 1 << 20,
		Streams: &model.StreamOffsets{Stdout: 4, Stderr: 4}})})
	var raw string
	var task *model.TaskExecution
	if err := f.View(func(tx *bbolt.Tx) (err error) {
		_ = store.ForEachTaskRaw(tx, "default", "build", 2, func(k, v []byte) error {
			if strings.HasSuffix(string(k), "lint") {
				raw = string(v)
			}
			return nil
		})
		task, err = store.GetTask(tx, "default", "build", 2, "lint")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(raw, `"stream_offsets":{"stdout":4,"stderr":4}`) || !strings.HasSuffix(raw, `,"pipeline_config_version":2}`) || strings.Contains(raw, `"task":`) {
		t.Fatalf("not a slim record with stream offsets: %s", raw)
	}
	if task.Task == nil || task.Task.Image != "golangci/golangci-lint" || task.StreamOffsets == nil || *task.StreamOffsets != (model.StreamOffsets{Stdout: 4, Stderr: 4}) {
		t.Fatalf("read back %+v (task %+v)", task, task.Task)
	}
}

// checkStateFile runs store.CheckFile (a backup restore's check, which
// knows every bucket's value format) on a copy of the state.
func checkStateFile(t *testing.T, f *FSM) {
	t.Helper()
	f.Flush()
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := f.View(func(tx *bbolt.Tx) error { return tx.CopyFile(path, 0o600) }); err != nil {
		t.Fatal(err)
	}
	if err := store.CheckFile(path); err != nil {
		t.Errorf("CheckFile: %v", err)
	}
}
