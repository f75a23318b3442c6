package fsm

import (
	"testing"

	"go.etcd.io/bbolt"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// BenchmarkCanaryRunFinish measures applying the finish of a canary
// deployment's run once 9 000 canary runs were counted: at envelope
// version 3 the finish rewrites the deployment record with every
// duration in it (the old shape, ~100 KB), at version 4 it rewrites the
// small record and puts one per-run key. "commit" also commits the state
// file after each finish, as the agent's flush timer does at most every
// 50 ms. Run with a fixed count (-benchtime=2000x): each op's setup (a run
// created, started and its task ended) is not timed.
func BenchmarkCanaryRunFinish(b *testing.B) {
	for _, v := range []struct {
		name    string
		version byte
	}{{"v3-record", envelopeVersionTyped}, {"v4-keys", envelopeVersionSteps}} {
		for _, commit := range []bool{false, true} {
			name := v.name + "/apply"
			if commit {
				name = v.name + "/apply+commit"
			}
			b.Run(name, func(b *testing.B) { benchCanaryRunFinish(b, v.version, commit) })
		}
	}
}

func benchCanaryRunFinish(b *testing.B, version byte, commit bool) {
	const counted = 9000
	x := &runFixture{t: b, f: testFSM(b, b.TempDir()), b: &logBuilder{t: b, version: version}}
	cfg := &sdk.PipelineConfig{ID: "dag", Name: "DAG", Tasks: []*sdk.TaskConfig{{ID: "aaa", Image: "busybox"}}}
	x.ok(CmdClusterInit, ClusterInit{ClusterID: "c", Roles: model.BuiltinRoles(1), Namespace: model.Namespace{ID: "default"}})
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg})
	x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 1})
	x.ok(CmdConfigRegister, ConfigRegister{NamespaceID: "default", Config: cfg})
	pol := model.CanaryPolicy{Percent: 99, Runs: 10000, Duration: "24h", MaxFailureIncrease: 5}
	x.ok(CmdConfigDeploy, ConfigDeploy{NamespaceID: "default", PipelineID: "dag", Version: 2, Strategy: model.DeploymentStrategyCanary, Canary: &pol})
	x.f.Flush()
	if err := x.f.DB().Update(func(tx *bbolt.Tx) error {
		d, err := store.GetDeployment(tx, "default", "dag", 2)
		if err != nil {
			return err
		}
		d.Canary.Canary.Completed = counted
		for i := range int64(counted) {
			ms := 1000 + i*7%5000
			if version < envelopeVersionSteps {
				d.Canary.Canary.DurationsMillis = append(d.Canary.Canary.DurationsMillis, ms)
			} else if err := store.PutCanaryDuration(tx, "default", "dag", 2, 1_000_000+i, ms); err != nil {
				return err
			}
		}
		return store.PutDeployment(tx, d)
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		r := x.newRun()
		ref := ref(r.RunID, "aaa")
		x.ok(CmdRunStart, RunStart{RunRef: ref.RunRef})
		x.ok(CmdTaskSchedule, TaskSchedule{TaskRef: ref, Attempt: 1, Container: "c"})
		x.ok(CmdTaskFinish, TaskFinish{TaskRef: ref, Attempt: 1, Status: model.TaskStatusSuccessful})
		if commit {
			x.f.Flush()
		}
		b.StartTimer()
		x.ok(CmdRunFinish, RunFinish{RunRef: ref.RunRef, Status: model.RunStatusSuccessful})
		if commit {
			x.f.Flush()
		}
	}
}
