package main

import (
	"context"
	"fmt"
	"path/filepath"
)

// fiveSize is the larger cluster docs/production.md offers ("3 or 5
// nodes"): five members survive two failures, and every write waits for
// three of them instead of two.
const fiveSize = 5

// fiveResults holds the write runs of the five-node stage: a 5-member etcd
// and a 5-node gofer (raft.log_store = "boltdb", the default). The table
// reports them beside the 3-node rows, without targets: the goals G1–G8
// are stated for three nodes, and these rows show what the two extra
// replicas cost each system.
type fiveResults struct {
	gofer, etcd sysResults
}

// benchFive starts the five-node clusters (the caller has stopped the
// 3-node ones, so the two stages never share the machine), measures them
// with the same write loop as the 3-node stage and stops them again. The
// returned code is the program's exit status when err is not nil.
func benchFive(ctx context.Context, cfg config, reg *procs, workDir string, rep *report, payloads []string,
	doEtcd, doGofer bool, res *fiveResults) (int, error) {
	rep.printf("\n== five-node writes (the 3-node clusters are stopped; %d runs per configuration, alternating systems; report only, no targets)\n", cfg.runs)
	var etcdC *etcdCluster
	var goferC *goferCluster
	var err error
	if doEtcd {
		rep.printf("starting etcd-5: %d members on 127.0.0.1, the same settings as the 3-member etcd\n", fiveSize)
		etcdC, err = startEtcd(ctx, reg, cfg.etcdBin, filepath.Join(workDir, "etcd-5"), fiveSize, payloads)
		if err != nil {
			return 1, fmt.Errorf("etcd-5: %w", err)
		}
		defer etcdC.stop()
	}
	if doGofer {
		rep.printf("starting gofer-5: %d nodes on 127.0.0.1, the same settings as the 3-node gofer (raft.log_store=boltdb)\n", fiveSize)
		goferC, err = startGofer(ctx, reg, filepath.Join(workDir, "gofer-5"), fiveSize, payloads, writeGoferOptions(cfg))
		if err != nil {
			return 1, fmt.Errorf("gofer-5: %w", err)
		}
		defer goferC.stop()
	}
	var systems []writeSystem
	if etcdC != nil {
		systems = append(systems, etcdWriteSystem(ctx, cfg, "etcd-5", etcdC, &res.etcd))
	}
	if goferC != nil {
		systems = append(systems, goferWriteSystem(ctx, "gofer-5", goferC, &res.gofer))
	}
	return measureWrites(ctx, cfg, rep, systems, func() []int { return clusterPIDs(etcdC, goferC) })
}
