package agent

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/clock"
	"github.com/goferhq/gofer/agent/leadership"
	"github.com/goferhq/gofer/agent/reconcile"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// idempotencyRetention is how long a write's idempotency key is honoured.
// Clients retry within seconds; an hour leaves ample margin.
const idempotencyRetention = time.Hour

// pruneBatch bounds one prune command so it stays a small raft entry and
// a short FSM transaction.
const pruneBatch = 5000

// runRetentionBatch bounds how many runs one RunsDelete names: each takes
// its task records, logs and objects with it, so a batch of many runs
// would make a large FSM transaction.
const runRetentionBatch = 50

// runRetentionBatchTasks bounds the task executions (each with its log)
// the runs of one RunsDelete have between them: 50 runs of a 1,000-task
// pipeline would otherwise be one huge entry. A single run always fits.
const runRetentionBatchTasks = 5000

// runRetentionBatchesPerPass bounds the RunsDelete entries one pruner
// pass writes for one pipeline; a larger backlog (turning retention on
// over years of runs) goes on in the next passes, so the pass still gets
// to its other work (log expiry, event and key pruning) every interval.
const runRetentionBatchesPerPass = 10

// logExpiryBatch bounds how many runs one LogsExpire or RunObjectsExpire
// command covers.
const logExpiryBatch = 50

// pruneConfig is what the pruner needs from the node's configuration.
type pruneConfig struct {
	// Interval between passes (capped at 5 minutes).
	Interval time.Duration
	// EventRetention is how long events are kept.
	EventRetention time.Duration
	// KeepLogs and KeepObjects are how many of each pipeline's newest
	// runs keep their task logs and run objects (0: all).
	KeepLogs, KeepObjects int64
	// TriggerKeyRetention is how long trigger keys are kept (0: for ever).
	TriggerKeyRetention time.Duration
	// RunRetentionCount and RunRetentionAge are the server's run
	// retention (0: off), for pipelines whose live config sets none.
	RunRetentionCount int64
	RunRetentionAge   time.Duration
}

// pruner is the leader service that deletes expired events and
// idempotency records, in bounded batches, and applies retention by
// number of runs to task logs and run objects.
type pruner struct {
	cfg    pruneConfig
	state  leadership.StateReader
	apply  leadership.Applier
	clock  clock.Clock
	logger hclog.Logger
}

func newPruner(cfg pruneConfig, d leadership.Deps) *pruner {
	cfg.Interval = min(cfg.Interval, 5*time.Minute)
	return &pruner{cfg: cfg, state: d.State, apply: d.Apply, clock: clock.Or(d.Clock), logger: d.Logger}
}

// Run prunes every interval until ctx ends.
func (p *pruner) Run(ctx context.Context) error {
	reconcile.NewLoop(reconcile.LoopConfig{
		Pass: func(ctx context.Context) (reconcile.Result, error) {
			start := p.clock.Now()
			p.pruneOnce(ctx)
			return reconcile.Result{Wake: start.Add(p.cfg.Interval)}, nil
		},
		Clock:  p.clock,
		Logger: p.logger,
	}).Run(ctx)
	return nil
}

func (p *pruner) pruneOnce(ctx context.Context) {
	p.deleteRunsPastRetention(ctx)
	p.expireByRuns(ctx)
	p.pruneTriggerKeys(ctx)
	for ctx.Err() == nil {
		now := p.clock.Now()
		cmd := fsm.Prune{
			EventsBefore:      now.Add(-p.cfg.EventRetention).UnixMilli(),
			IdempotencyBefore: now.Add(-idempotencyRetention).UnixMilli(),
			Max:               pruneBatch,
		}
		if !p.anythingToPrune(cmd) {
			return
		}
		res, err := applyChecked(ctx, p.apply, fsm.CmdPrune, cmd)
		if err != nil {
			p.logger.Warn("prune failed", "error", err)
			return
		}
		pr, err := fsm.ResultAs[fsm.PruneResult](res)
		if err != nil || pr == nil {
			return
		}
		if pr.Events > 0 || pr.Idempotency > 0 {
			p.logger.Info("pruned expired records", "events", pr.Events, "idempotency_keys", pr.Idempotency)
		}
		if pr.Events < pruneBatch && pr.Idempotency < pruneBatch {
			return
		}
	}
}

// pruneTriggerKeys deletes trigger keys past their retention: the leader
// reads which from its state (no raft entry when there are none) and
// names at most MaxPrunedTriggerKeys per command, so no apply walks every
// key.
func (p *pruner) pruneTriggerKeys(ctx context.Context) {
	if p.cfg.TriggerKeyRetention <= 0 {
		return
	}
	for ctx.Err() == nil {
		before := p.clock.Now().Add(-p.cfg.TriggerKeyRetention).UnixMilli()
		var old []store.TriggerKeyRef
		_ = p.state.ViewCommitted(func(tx *bbolt.Tx) error {
			old = store.OldTriggerKeys(tx, before, fsm.MaxPrunedTriggerKeys)
			return nil
		})
		if len(old) == 0 {
			return
		}
		res, err := applyChecked(ctx, p.apply, fsm.CmdPrune, fsm.Prune{TriggerKeysBefore: before, TriggerKeys: old})
		if err != nil {
			p.logger.Warn("pruning trigger keys failed", "error", err)
			return
		}
		pr, err := fsm.ResultAs[fsm.PruneResult](res)
		if err != nil || pr == nil || pr.TriggerKeys == 0 {
			return
		}
		p.logger.Info("pruned expired trigger keys", "trigger_keys", pr.TriggerKeys)
		if len(old) < fsm.MaxPrunedTriggerKeys {
			return
		}
	}
}

// anythingToPrune checks local state first, so an idle cluster does not
// write a raft entry every prune interval.
func (p *pruner) anythingToPrune(cmd fsm.Prune) bool {
	var found bool
	_ = p.state.ViewCommitted(func(tx *bbolt.Tx) error {
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
func (p *pruner) expireByRuns(ctx context.Context) {
	type due struct {
		cmd  fsm.CommandType
		body any
		what string
	}
	keepLogs, keepObjects := p.cfg.KeepLogs, p.cfg.KeepObjects
	var todo []due
	_ = p.state.View(func(tx *bbolt.Tx) error {
		return store.ForEachPipeline(tx, func(pl *model.Pipeline) error {
			if through := pl.LastRunID - keepLogs; keepLogs > 0 && through > pl.LogsExpiredThrough {
				todo = append(todo, due{fsm.CmdLogsExpire, fsm.LogsExpire{NamespaceID: pl.NamespaceID, PipelineID: pl.PipelineID,
					Through: min(through, pl.LogsExpiredThrough+logExpiryBatch)}, "task logs"})
			}
			if through := pl.LastRunID - keepObjects; keepObjects > 0 && through > pl.ObjectsExpiredThrough {
				todo = append(todo, due{fsm.CmdRunObjectsExpire, fsm.RunObjectsExpire{NamespaceID: pl.NamespaceID, PipelineID: pl.PipelineID,
					Through: min(through, pl.ObjectsExpiredThrough+logExpiryBatch)}, "run objects"})
			}
			return nil
		})
	})
	for _, d := range todo {
		if _, err := applyChecked(ctx, p.apply, d.cmd, d.body); err != nil && ctx.Err() == nil {
			p.logger.Warn("expiring "+d.what+" failed", "error", err)
		}
	}
}

// applyChecked applies a command and reports the state machine's refusal
// as an error too.
func applyChecked(ctx context.Context, ap leadership.Applier, t fsm.CommandType, body any) (*fsm.Result, error) {
	res, err := ap.Apply(ctx, t, body)
	if err != nil {
		return nil, err
	}
	return res, res.Err
}
