package fsm

import (
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// TestEnvelopeVersionDecidesStreamOffsets: a log append that carries
// per-stream positions (a Nomad task's separate stdout and stderr) stores
// them on the task only at envelope version 5. The same entries at
// versions 1 to 4 leave the record exactly as those binaries left it (no
// stream_offsets field), so a node replaying an old log agrees byte for
// byte with the nodes that applied it first; a new attempt starts with no
// positions at any version.
func TestEnvelopeVersionDecidesStreamOffsets(t *testing.T) {
	var without string // the task record of a version 4 append
	for _, v := range []byte{envelopeVersion, envelopeVersionHash, envelopeVersionTyped, envelopeVersionSteps, envelopeVersionLogs} {
		task, retried := appendWithStreamsAt(t, v)
		has := strings.Contains(task, `"stream_offsets":{"stdout":4,"stderr":3}`)
		if v >= envelopeVersionLogs != has {
			t.Errorf("envelope version %d: stored stream offsets %v, want %v\ntask: %s", v, has, v >= envelopeVersionLogs, task)
		}
		if v < envelopeVersionLogs && strings.Contains(task, "stream_offsets") {
			t.Errorf("envelope version %d: the record holds a field its binaries never wrote: %s", v, task)
		}
		if v == envelopeVersionSteps {
			without = task
		}
		if strings.Contains(retried, "stream_offsets") {
			t.Errorf("envelope version %d: a new attempt kept the old attempt's stream offsets: %s", v, retried)
		}
	}
	// A version 5 record is the version 4 one plus the positions.
	if with, _ := appendWithStreamsAt(t, envelopeVersionLogs); strings.Replace(with, `,"stream_offsets":{"stdout":4,"stderr":3}`, "", 1) != without {
		t.Errorf("version 5 record differs from version 4 beyond the stream offsets:\nv5 %s\nv4 %s", with, without)
	}
}

// appendWithStreamsAt applies, at envelope version v, a run whose task
// appends output with per-stream positions (twice: the second, already
// stored, changes nothing); it returns the task's stored record then, and
// after the task is scheduled again (a retry).
func appendWithStreamsAt(t *testing.T, v byte) (task, retried string) {
	t.Helper()
	f := testFSM(t, t.TempDir())
	b := &logBuilder{t: t, version: v}
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox", Retries: 1}}}
	a := TaskRef{RunRef: RunRef{NamespaceID: "default", PipelineID: "dag", RunID: 1}, TaskID: "aaa"}
	chunk := LogAppend{TaskRef: a, Attempt: 1, Data: []byte("out\nerr\n"[:7]), MaxBytes: 100,
		Streams: &model.StreamOffsets{Stdout: 4, Stderr: 3}}
	apply := func(logs ...*raft.Log) {
		for i, r := range f.ApplyBatch(logs) {
			if res := resultOf(t, r); res.Err != nil {
				t.Fatalf("version %d entry %d: %v", v, i+1, res.Err)
			}
		}
	}
	apply(
		b.entry(CmdClusterInit, ClusterInit{ClusterID: "c", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: "default"}}),
		b.entry(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg}),
		b.entry(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 1}),
		b.entry(CmdRunCreate, RunCreate{NamespaceID: "default", PipelineID: "dag"}),
		b.entry(CmdRunStart, RunStart{RunRef: a.RunRef}),
		b.entry(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 1, Container: "c1"}),
		b.entry(CmdLogAppend, chunk),
		b.entry(CmdLogAppend, chunk),
	)
	task = taskRecord(t, f)
	one := 1
	apply(
		b.entry(CmdTaskFinish, TaskFinish{TaskRef: a, Attempt: 1, Status: model.TaskStatusFailed, ExitCode: &one, RetryAt: 2000}),
		b.entry(CmdTaskSchedule, TaskSchedule{TaskRef: a, Attempt: 2, Container: "c2"}),
	)
	return task, taskRecord(t, f)
}

// taskRecord is the one task's stored record, from the state dump.
func taskRecord(t *testing.T, f *FSM) string {
	t.Helper()
	for l := range strings.Lines(dump(t, f)) {
		if strings.Contains(l, `"task_id":"aaa"`) && strings.Contains(l, `"log_offset"`) {
			return l
		}
	}
	t.Fatal("no task record in the state")
	return ""
}
