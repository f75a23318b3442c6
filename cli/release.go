package cli

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// Release strategies: immediate (blue/green) makes a version live at
// once; canary splits new runs until the version is promoted or rolled
// back (cli/canary.go).
const (
	strategyImmediate = "immediate"
	strategyCanary    = "canary"
)

// errNothingToRollBack is why a rollback is refused: no version was live
// before the current one.
var errNothingToRollBack = errors.New("nothing to roll back to")

func strategyFlag() cli.Flag {
	return &cli.StringFlag{Name: "strategy", Value: strategyImmediate,
		Usage: "how the version goes live: immediate (blue/green: live at once for new runs; runs already started finish on their own version) or canary (a share of new runs until promoted or rolled back; needs the --canary-* flags and --max-failure-increase)"}
}

func pipelineDeployCommand() *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "make a registered version live (a release; rolls back when it is older)",
		ArgsUsage: "PIPELINE VERSION",
		Description: `With --strategy immediate (the default) the version is live at once, blue/green:
new runs use it, runs already started finish on the version they started with.

With --strategy canary the live version stays live and --canary-percent of new runs go
to VERSION; the leader promotes it after --canary-runs completed canary runs (or at the
end of --canary-duration) unless its failure rate exceeds the live version's by more
than --max-failure-increase points (or its p95 exceeds --max-p95), and then rolls it
back. Follow it with gofer pipeline deployment watch PIPELINE; decide first with
gofer pipeline deployment promote|rollback|abort PIPELINE.

Every deploy is recorded as a deployment (gofer pipeline deployment list PIPELINE).
Same as gofer pipeline config deploy.`,
		Flags:  deployFlags(),
		Action: pipelineDeploy,
	}
}

func pipelineRollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "make the version that was live before the current one live again",
		ArgsUsage: "PIPELINE",
		Description: `The version to return to is the one the newest deployment replaced. Runs already
started finish on their own version. A rollback is itself a deployment, so running
rollback twice returns to where you started. Refused when no version was live before.`,
		Action: pipelineRollback,
	}
}

func pipelineDeploy(c *cli.Context) error {
	if err := args(c, 2); err != nil {
		return err
	}
	opts, err := deployOptions(c)
	if err != nil {
		return err
	}
	return configDeploy(c, opts)
}

func pipelineRollback(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	id := c.Args().First()
	live, target, err := rollbackTarget(c, cl, id)
	if err != nil {
		return err
	}
	d, err := cl.DeployConfig(c.Context, id, target)
	err = canaryConflictHint(err, id)
	if err != nil && client.IsStatus(err, http.StatusUnprocessableEntity) && c.String(flagIdemKey) != "" {
		// Run again with the key of a rollback whose outcome was
		// unknown: that rollback applied (so this one aimed at another
		// version) and the key refused a second, different deploy.
		return fmt.Errorf("the rollback with this --%s already applied: version %d is live now; see gofer pipeline deployment list %s (%w)",
			flagIdemKey, live, id, err)
	}
	if err != nil {
		return fmt.Errorf("roll back pipeline %q to version %d: %w", id, target, err)
	}
	if d.StartVersion != live {
		fmt.Fprintf(c.App.ErrWriter, "warning: pipeline %q: version %d was live when the rollback applied, not version %d: another deploy came in between\n",
			id, d.StartVersion, live)
	}
	if p.format != "plain" {
		return p.result("deployment", d, nil, nil)
	}
	p.message("✓ pipeline %s: version %d → %d (deployment %d)", d.PipelineID, d.StartVersion, d.EndVersion, d.DeploymentID)
	return nil
}

// rollbackTarget returns the live version and the version that was live
// before it: the start version of the newest deployment, which is the one
// that made the live version live. It is read before the deploy, so a
// deploy by someone else in between can still race it; the caller warns
// when the deployment it records did not start from the version read
// here, and that deployment names both versions.
func rollbackTarget(c *cli.Context, cl *client.Client, id string) (live, target int64, err error) {
	// Read from the leader: a follower a step behind would name the
	// version before an older deploy.
	cl = cl.Consistent()
	pl, err := cl.GetPipeline(c.Context, id)
	if err != nil {
		return 0, 0, err
	}
	if pl.ActiveCanary != 0 {
		return 0, 0, fmt.Errorf("pipeline %q has canary deployment %d running; end it instead: gofer pipeline deployment rollback|abort %s (or promote)",
			id, pl.ActiveCanary, id)
	}
	if pl.LiveVersion == 0 || pl.LastDeployment == 0 {
		return 0, 0, fmt.Errorf("pipeline %q has no live version: %w", id, errNothingToRollBack)
	}
	d, err := lastLiveDeployment(c, cl, id, pl.LastDeployment)
	if err != nil {
		return 0, 0, err
	}
	if d.EndVersion != pl.LiveVersion {
		return 0, 0, fmt.Errorf("pipeline %q's newest deployment %d made version %d live, but version %d is live; check gofer pipeline deployment list %s",
			id, d.DeploymentID, d.EndVersion, pl.LiveVersion, id)
	}
	if d.State != model.DeploymentStateComplete {
		return 0, 0, fmt.Errorf("pipeline %q's newest deployment %d is still %s; roll back once it is complete", id, d.DeploymentID, d.State)
	}
	if d.StartVersion == 0 {
		return 0, 0, fmt.Errorf("pipeline %q: version %d is the first version made live, no version was live before it: %w",
			id, pl.LiveVersion, errNothingToRollBack)
	}
	return pl.LiveVersion, d.StartVersion, nil
}

// lastLiveDeployment is the newest deployment that changed the live
// version, reading back from newest: a canary that was rolled back or
// aborted left the live version as it was, so it is skipped (deployment
// ids of a pipeline are consecutive).
func lastLiveDeployment(c *cli.Context, cl *client.Client, pipeline string, newest int64) (*model.Deployment, error) {
	for id := newest; ; id-- {
		d, err := cl.GetDeployment(c.Context, pipeline, id)
		if err != nil {
			return nil, fmt.Errorf("read pipeline %q's deployment %d: %w", pipeline, id, err)
		}
		if d.Canary == nil || d.Canary.Decision == nil || d.Canary.Decision.Outcome == model.CanaryPromote || id == 1 {
			return d, nil
		}
	}
}
