package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/executor"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/agent/retry"
	"github.com/goferhq/gofer/fsm"
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

// stepUp starts a leadership term: the barrier and establish, then every
// leader service (leaderServices).
func (a *Agent) stepUp() {
	a.leadership.Start()
}

// stepDown stops every leader-only goroutine and waits for them: a deposed
// leader must cause no side effects after this returns (docs/architecture.md §6, G8).
func (a *Agent) stepDown() {
	a.ready.Store(false)
	if a.leadership.Stop() {
		a.logger.Info("leader services stopped")
	}
}

// newLeadership builds the lifecycle of the leader services. Its deps
// apply commands as the actor "system".
func (a *Agent) newLeadership() *leadership.Lifecycle {
	return leadership.New(leadership.Config{
		Establish: a.establishLeadership,
		Services:  a.leaderServices,
		Deps: leadership.Deps{
			State: a.fsm,
			Apply: a.leaderApplier("system"),
			Clock: clock.Real{},
			// Each service's logger is named after its entry.
			Logger: a.logger,
		},
	})
}

// leaderServices lists the leader-only services, built afresh each term
// once leadership is established. Adding a service is adding an entry.
func (a *Agent) leaderServices() []leadership.Entry {
	execCfg := a.executorConfig() // reads the term now, not at a restart
	return []leadership.Entry{
		{Name: "pruner", New: func(d leadership.Deps) leadership.Service {
			return newPruner(pruneConfig{
				Interval:          a.cfg.API.EventPruneInterval.D(),
				EventRetention:    a.cfg.API.EventLogRetention.D(),
				KeepLogs:          int64(a.cfg.API.TaskExecutionLogRetention),
				KeepObjects:       int64(a.cfg.Objects.RunObjectExpiry),
				RunRetentionCount: a.cfg.API.RunRetentionCount,
				RunRetentionAge:   a.cfg.API.RunRetentionAge.D(),

				TriggerKeyRetention: a.cfg.Extensions.TriggerKeyRetention.D(),
			}, d)
		}},
		{Name: "key-rotation", New: func(d leadership.Deps) leadership.Service {
			return newKeyRotator(rotationConfig{Keys: a.secrets, Batch: a.cfg.Secrets.RotationBatchSize,
				Interval: a.cfg.Secrets.RotationBatchInterval.D()}, d)
		}},
		{Name: "executor", New: func(d leadership.Deps) leadership.Service {
			d.Apply = a.leaderApplier("gofer") // the executor's commands have always carried this actor
			return executor.New(execCfg, d, a.executorScheduler())
		}},
		{Name: "canary-watcher", New: func(d leadership.Deps) leadership.Service {
			d.Apply = a.leaderApplier(canaryWatchActor)
			return newCanaryService(d)
		}},
		// Rewrites task executions of older entries slim (taskslimmer.go).
		{Name: "task-slimmer", New: func(d leadership.Deps) leadership.Service { return newTaskSlimmer(d) }},
		// Extensions (extensions.go).
		{Name: "extension-supervisor", New: a.newSupervisor},
	}
}

// leaderApplier applies commands a leader service decided on, stamped
// with actor and the leader's clock. The state machine's refusal is in
// the result, not the error.
func (a *Agent) leaderApplier(actor string) leadership.Applier {
	return leadership.ApplyFunc(func(ctx context.Context, t fsm.CommandType, body any) (*fsm.Result, error) {
		res, _, err := a.Apply(ctx, t, fsm.Meta{Actor: actor, Timestamp: time.Now().UnixMilli()}, body)
		return res, err
	})
}

// establishLeadership waits for the log barrier and establishes
// leadership; then the node is ready. If establishing fails the node
// gives leadership away rather than act as a half-initialised leader.
func (a *Agent) establishLeadership(ctx context.Context) error {
	a.logger.Info("gained leadership; waiting for the log barrier")
	backoff := 100 * time.Millisecond
	for {
		err := a.raft.Barrier(2 * time.Minute).Error()
		if err == nil {
			break
		}
		if ctx.Err() != nil || a.raft.State() != raft.Leader {
			return errNotLeading
		}
		a.logger.Warn("barrier failed; retrying", "error", err)
		if !retry.Sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	if err := a.establish(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.logger.Error("could not establish leadership; transferring it", "error", err)
		if err := a.raft.LeadershipTransfer().Error(); err != nil {
			a.logger.Error("leadership transfer failed", "error", err)
		}
		return err
	}
	a.ready.Store(true)
	a.logger.Info("leadership established", "applied_index", a.fsm.AppliedIndex())
	return nil
}

// errNotLeading: leadership ended before it was established.
var errNotLeading = errors.New("leadership ended before it was established")

// executorConfig is this leadership term's DAG executor configuration.
func (a *Agent) executorConfig() executor.Config {
	return executor.Config{
		ClusterID:     a.clusterID(),
		Term:          a.raft.CurrentTerm(),
		APIURLs:       a.apiURLs,
		GlobalLimit:   a.cfg.API.GlobalRunConcurrencyLimit,
		PipelineLimit: a.cfg.API.PipelineRunConcurrencyLimit,
		StopGrace:     a.cfg.API.TaskExecutionStopTimeout.D(),
		LogMaxBytes:   a.cfg.API.TaskExecutionLogMaxBytes,
		Secrets:       a.secrets,
	}
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
	if _, err := a.applySystem(ctx, fsm.CmdServerUpsert, fsm.ServerUpsert{Server: model.Server{
		ID: a.nodeID, RaftAddr: a.cfg.RaftAdvertise(), APIAddr: a.cfg.APIURL(), Version: a.meta.Semver, Joined: time.Now().UnixMilli(),
	}}); err != nil {
		return err
	}
	a.installStdExtensions(ctx) // extensions.go
	return nil
}
