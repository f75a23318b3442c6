package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/executor"
	"github.com/goferhq/gofer/agent/retry"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// monitorLeadership turns raft's leadership notifications into starting
// and stopping the leader-only services. Raft may coalesce notifications,
// so "true" while already leading means leadership was lost and regained:
// the services are stopped and rebuilt from state.
func (a *Agent) monitorLeadership() {
	for {
		select {
		case <-a.leaderNotify:
			// Act on the current state, not the (possibly stale) value.
			a.stepDown()
			if a.raft.State() == raft.Leader {
				a.stepUp()
			}
		case <-a.shutdownCh:
			a.stepDown()
			return
		}
	}
}

// stepUp starts the leader loop.
func (a *Agent) stepUp() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.leaderCancel, a.leaderDone = cancel, done
	go func() {
		defer close(done)
		a.leaderLoop(ctx)
	}()
}

// stepDown stops every leader-only goroutine and waits for them: a deposed
// leader must cause no side effects after this returns (docs/architecture.md §6, G8).
func (a *Agent) stepDown() {
	a.ready.Store(false)
	if a.leaderCancel == nil {
		return
	}
	a.leaderCancel()
	<-a.leaderDone
	a.leaderCancel, a.leaderDone = nil, nil
	a.logger.Info("leader services stopped")
}

// leaderLoop establishes leadership and runs the leader services until
// ctx ends. If establishing fails the node gives leadership away rather
// than act as a half-initialised leader.
func (a *Agent) leaderLoop(ctx context.Context) {
	a.logger.Info("gained leadership; waiting for the log barrier")
	backoff := 100 * time.Millisecond
	for {
		err := a.raft.Barrier(2 * time.Minute).Error()
		if err == nil {
			break
		}
		if ctx.Err() != nil || a.raft.State() != raft.Leader {
			return
		}
		a.logger.Warn("barrier failed; retrying", "error", err)
		if !retry.Sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	if err := a.establish(ctx); err != nil {
		if ctx.Err() != nil {
			return
		}
		a.logger.Error("could not establish leadership; transferring it", "error", err)
		if err := a.raft.LeadershipTransfer().Error(); err != nil {
			a.logger.Error("leadership transfer failed", "error", err)
		}
		return
	}
	a.ready.Store(true)
	a.logger.Info("leadership established", "applied_index", a.fsm.AppliedIndex())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		a.runPruner(ctx)
	}()
	go func() {
		defer wg.Done()
		a.newKeyRotator().Run(ctx)
	}()
	go func() {
		defer wg.Done()
		a.newExecutor().Run(ctx)
	}()
	wg.Wait()
}

// newExecutor builds this leadership term's DAG executor.
func (a *Agent) newExecutor() *executor.Executor {
	apply := func(ctx context.Context, t fsm.CommandType, body any) (*fsm.Result, error) {
		res, _, err := a.Apply(ctx, t, fsm.Meta{Actor: "gofer", Timestamp: time.Now().UnixMilli()}, body)
		return res, err
	}
	return executor.New(executor.Config{
		ClusterID:     a.clusterID(),
		Term:          a.raft.CurrentTerm(),
		APIURLs:       a.apiURLs,
		GlobalLimit:   a.cfg.API.GlobalRunConcurrencyLimit,
		PipelineLimit: a.cfg.API.PipelineRunConcurrencyLimit,
		StopGrace:     a.cfg.API.TaskExecutionStopTimeout.D(),
		LogMaxBytes:   a.cfg.API.TaskExecutionLogMaxBytes,
		Secrets:       a.secrets,
	}, a.fsm, apply, a.sched, a.logger)
}

// establish makes state ready for a leader: a new cluster gets its id,
// built-in roles and default namespace; this node's addresses are
// recorded so followers can forward to it.
func (a *Agent) establish(ctx context.Context) error {
	if a.clusterID() == "" {
		now := time.Now().UnixMilli()
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		init := fsm.ClusterInit{
			ClusterID: hex.EncodeToString(b[:]),
			Roles:     model.BuiltinRoles(now),
			Namespace: model.Namespace{ID: model.DefaultNamespace, Name: "Default", Description: "The namespace every cluster starts with.", Created: now, Modified: now},
		}
		if _, err := a.applySystem(ctx, fsm.CmdClusterInit, init); err != nil {
			return err
		}
		a.logger.Info("initialized a new cluster", "cluster_id", a.clusterID())
	}
	_, err := a.applySystem(ctx, fsm.CmdServerUpsert, fsm.ServerUpsert{Server: model.Server{
		ID: a.nodeID, RaftAddr: a.cfg.RaftAdvertise(), APIAddr: a.cfg.APIURL(), Version: a.meta.Semver, Joined: time.Now().UnixMilli(),
	}})
	return err
}

// idempotencyRetention is how long a write's idempotency key is honoured.
// Clients retry within seconds; an hour leaves ample margin.
const idempotencyRetention = time.Hour

// pruneBatch bounds one prune command so it stays a small raft entry and
// a short FSM transaction.
const pruneBatch = 5000

// runPruner deletes expired events and idempotency records, in bounded
// batches, until ctx ends.
func (a *Agent) runPruner(ctx context.Context) {
	interval := min(a.cfg.API.EventPruneInterval.D(), 5*time.Minute)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		a.pruneOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (a *Agent) pruneOnce(ctx context.Context) {
	a.expireByRuns(ctx)
	for ctx.Err() == nil {
		now := time.Now()
		cmd := fsm.Prune{
			EventsBefore:      now.Add(-a.cfg.API.EventLogRetention.D()).UnixMilli(),
			IdempotencyBefore: now.Add(-idempotencyRetention).UnixMilli(),
			Max:               pruneBatch,
		}
		if !a.anythingToPrune(cmd) {
			return
		}
		res, err := a.applySystem(ctx, fsm.CmdPrune, cmd)
		if err != nil {
			a.logger.Warn("prune failed", "error", err)
			return
		}
		pr, err := fsm.ResultAs[fsm.PruneResult](res)
		if err != nil || pr == nil {
			return
		}
		if pr.Events > 0 || pr.Idempotency > 0 {
			a.logger.Info("pruned expired records", "events", pr.Events, "idempotency_keys", pr.Idempotency)
		}
		if pr.Events < pruneBatch && pr.Idempotency < pruneBatch {
			return
		}
	}
}

// anythingToPrune checks local state first, so an idle cluster does not
// write a raft entry every prune interval.
func (a *Agent) anythingToPrune(cmd fsm.Prune) bool {
	var found bool
	_ = a.fsm.ViewCommitted(func(tx *bbolt.Tx) error {
		oldestEvent, oldestKey := store.OldestEventTime(tx), store.OldestIdempotencyTime(tx)
		found = (oldestEvent != 0 && oldestEvent < cmd.EventsBefore) || (oldestKey != 0 && oldestKey < cmd.IdempotencyBefore)
		return nil
	})
	return found
}

// expireByRuns applies retention by number of runs: task logs beyond
// each pipeline's newest api.task_execution_log_retention runs, and run
// objects beyond its newest object_store.run_object_expiry runs, a
// bounded batch per command.
func (a *Agent) expireByRuns(ctx context.Context) {
	type due struct {
		cmd  fsm.CommandType
		body any
		what string
	}
	keepLogs, keepObjects := int64(a.cfg.API.TaskExecutionLogRetention), int64(a.cfg.Objects.RunObjectExpiry)
	var todo []due
	_ = a.fsm.View(func(tx *bbolt.Tx) error {
		return store.ForEachPipeline(tx, func(p *model.Pipeline) error {
			if through := p.LastRunID - keepLogs; keepLogs > 0 && through > p.LogsExpiredThrough {
				todo = append(todo, due{fsm.CmdLogsExpire, fsm.LogsExpire{NamespaceID: p.NamespaceID, PipelineID: p.PipelineID,
					Through: min(through, p.LogsExpiredThrough+logExpiryBatch)}, "task logs"})
			}
			if through := p.LastRunID - keepObjects; keepObjects > 0 && through > p.ObjectsExpiredThrough {
				todo = append(todo, due{fsm.CmdRunObjectsExpire, fsm.RunObjectsExpire{NamespaceID: p.NamespaceID, PipelineID: p.PipelineID,
					Through: min(through, p.ObjectsExpiredThrough+logExpiryBatch)}, "run objects"})
			}
			return nil
		})
	})
	for _, d := range todo {
		if _, err := a.applySystem(ctx, d.cmd, d.body); err != nil && ctx.Err() == nil {
			a.logger.Warn("expiring "+d.what+" failed", "error", err)
		}
	}
}

// logExpiryBatch bounds how many runs one LogsExpire or RunObjectsExpire
// command covers.
const logExpiryBatch = 50
