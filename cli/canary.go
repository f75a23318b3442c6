package cli

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/agent/canary"
	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// Canary policy flags, shared by pipeline deploy, pipeline config deploy
// and up. They mean something only with --strategy canary.
const (
	flagCanaryPercent      = "canary-percent"
	flagCanaryRuns         = "canary-runs"
	flagCanaryDuration     = "canary-duration"
	flagMaxFailureIncrease = "max-failure-increase"
	flagMaxP95             = "max-p95"
)

// requiredCanaryFlags have no default: the split and the budget are the
// deployer's decision, so a canary without them is a usage mistake rather
// than a guess.
var requiredCanaryFlags = []string{flagCanaryPercent, flagCanaryRuns, flagCanaryDuration, flagMaxFailureIncrease}

func canaryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: flagCanaryPercent, Usage: "canary: share of new runs sent to the new version, 1-99"},
		&cli.IntFlag{Name: flagCanaryRuns, Usage: "canary: completed canary runs that decide it"},
		&cli.DurationFlag{Name: flagCanaryDuration, Usage: "canary: longest observation (e.g. 30m); at its end the canary is decided on what completed"},
		&cli.Float64Flag{Name: flagMaxFailureIncrease, Usage: "canary: percentage points the canary's failure rate may exceed the stable version's, 0-100"},
		&cli.DurationFlag{Name: flagMaxP95, Usage: "canary: optional bound on the canary runs' 95th percentile duration"},
	}
}

// deployFlags are the strategy and canary flags of every deploying command.
func deployFlags() []cli.Flag {
	return append([]cli.Flag{strategyFlag()}, canaryFlags()...)
}

// deployOptions reads --strategy and the canary flags into the deploy
// body, refusing (exit 2, before anything is sent) a strategy that does
// not exist, a canary flag without --strategy canary and a canary without
// its policy. The server still validates the values and names the field.
func deployOptions(c *cli.Context) (client.DeployOptions, error) {
	switch s := c.String("strategy"); s {
	case strategyImmediate:
		for _, f := range append(requiredCanaryFlags, flagMaxP95) {
			if c.IsSet(f) {
				return client.DeployOptions{}, usageError(c, "--%s needs --strategy canary (the strategy is %s)", f, s)
			}
		}
		return client.DeployOptions{}, nil
	case strategyCanary:
		var missing []string
		for _, f := range requiredCanaryFlags {
			if !c.IsSet(f) {
				missing = append(missing, "--"+f)
			}
		}
		if len(missing) > 0 {
			return client.DeployOptions{}, usageError(c, "--strategy canary needs %s", strings.Join(missing, ", "))
		}
		policy := &model.CanaryPolicy{Percent: c.Int(flagCanaryPercent), Runs: c.Int(flagCanaryRuns),
			Duration: c.Duration(flagCanaryDuration).String(), MaxFailureIncrease: c.Float64(flagMaxFailureIncrease)}
		if c.IsSet(flagMaxP95) {
			policy.MaxP95Duration = c.Duration(flagMaxP95).String()
		}
		if err := validateCanaryFlags(c); err != nil {
			return client.DeployOptions{}, err
		}
		return client.DeployOptions{Strategy: strategyCanary, Canary: policy}, nil
	default:
		return client.DeployOptions{}, usageError(c, "--strategy %q is not a strategy; use immediate or canary", s)
	}
}

// canaryFieldFlags spells the policy's fields (as canary.Policy.Validate
// names them) as this CLI's flags.
var canaryFieldFlags = strings.NewReplacer(
	canary.ErrInvalidPolicy.Error()+": ", "",
	"canary_percent:", "--"+flagCanaryPercent+":",
	"canary_runs:", "--"+flagCanaryRuns+":",
	"canary_duration:", "--"+flagCanaryDuration+":",
	"max_failure_increase:", "--"+flagMaxFailureIncrease+":",
	"max_p95_duration:", "--"+flagMaxP95+":",
)

// validateCanaryFlags runs the server's own policy validation before
// sending, so a value such as --max-failure-increase NaN (which flag
// parsing accepts, and JSON cannot carry) is a usage error naming the
// flag rather than an encoding error.
func validateCanaryFlags(c *cli.Context) error {
	p := canary.Policy{Percent: c.Int(flagCanaryPercent), Runs: c.Int(flagCanaryRuns), Duration: c.Duration(flagCanaryDuration),
		MaxFailureIncrease: c.Float64(flagMaxFailureIncrease), MaxP95: c.Duration(flagMaxP95)}
	if err := p.Validate(); err != nil {
		return usageError(c, "%s", canaryFieldFlags.Replace(err.Error()))
	}
	return nil
}

// deployVersion deploys and, when an immediate deploy is refused because
// a canary runs, says how to end that canary.
func deployVersion(c *cli.Context, cl *client.Client, pipeline string, version int64, opts client.DeployOptions) (*model.Deployment, error) {
	d, err := cl.DeployConfigWith(c.Context, pipeline, version, opts)
	return d, canaryConflictHint(err, pipeline)
}

// canaryConflictHint adds the commands that decide a running canary to a
// 409 that names one (the server refuses deploys and rollbacks meanwhile).
func canaryConflictHint(err error, pipeline string) error {
	if err == nil || !client.IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "canary deployment") {
		return err
	}
	return fmt.Errorf("%w\ndecide the canary first: gofer pipeline deployment promote|rollback|abort %s (see gofer pipeline deployment get)", err, pipeline)
}

// canaryStartedMessage says what a canary deploy did and what comes next.
func canaryStartedMessage(p *printer, d *model.Deployment) {
	pol := d.Canary.Policy
	p.message("✓ pipeline %s: canary of version %d started (deployment %d): %d%% of new runs go to it, version %d stays live",
		d.PipelineID, d.Canary.CanaryVersion, d.DeploymentID, pol.Percent, d.Canary.StableVersion)
	p.message("  Follow it:  gofer pipeline deployment watch %s %d", d.PipelineID, d.DeploymentID)
	p.message("  Decide now: gofer pipeline deployment promote|rollback|abort %s %d", d.PipelineID, d.DeploymentID)
}

func deploymentDecideCommand(outcome, usage string) *cli.Command {
	return &cli.Command{
		Name:      outcome,
		Usage:     usage,
		ArgsUsage: "PIPELINE [DEPLOYMENT]",
		Description: `DEPLOYMENT defaults to the pipeline's running canary. Exactly one decision is kept,
whoever makes it first (a human or the leader's canary watcher); a later one is refused.`,
		Flags: []cli.Flag{&cli.StringFlag{Name: "reason", Usage: "why, kept with the decision (default: \"" + outcome + " requested\")"}},
		Action: func(c *cli.Context) error {
			p, cl, pipeline, id, err := canaryTarget(c, false)
			if err != nil {
				return err
			}
			d, err := cl.DecideDeployment(c.Context, pipeline, id, outcome, c.String("reason"))
			if err != nil {
				return fmt.Errorf("%s deployment %d of pipeline %q: %w", outcome, id, pipeline, err)
			}
			if p.format != "plain" {
				return p.result("deployment", d, nil, nil)
			}
			p.message("✓ pipeline %s: deployment %d %s; version %d is live", pipeline, id, decidedVerb(outcome), liveAfter(d))
			return nil
		},
	}
}

func decidedVerb(outcome string) string {
	switch outcome {
	case model.CanaryPromote:
		return "promoted"
	case model.CanaryRollback:
		return "rolled back"
	case model.CanaryAbort:
		return "aborted"
	}
	return outcome
}

// liveAfter is the version a deployment left live: an immediate one's
// new version (once it succeeded), a decided canary's promoted or stable
// version; while a canary runs, the stable version, live until then.
func liveAfter(d *model.Deployment) int64 {
	if d.Canary == nil {
		if d.Status == model.DeploymentStatusFailed {
			return d.StartVersion
		}
		return d.EndVersion
	}
	if d.Canary.Decision != nil && d.Canary.Decision.Outcome == model.CanaryPromote {
		return d.Canary.CanaryVersion
	}
	return d.Canary.StableVersion
}

// deploymentUndecided reports whether d is a canary still running.
func deploymentUndecided(d *model.Deployment) bool {
	return d.Canary != nil && d.Canary.Decision == nil
}

func deploymentStrategy(d *model.Deployment) string {
	if d.Strategy == "" {
		return strategyImmediate
	}
	return d.Strategy
}

// deploymentOutcome is what came of a deployment in a word or two:
// deployed (or failed) for an immediate one; promoted, rolled back,
// aborted or in progress (with its split) for a canary.
func deploymentOutcome(d *model.Deployment) string {
	switch {
	case d.Canary == nil && d.Status == model.DeploymentStatusFailed:
		return "failed"
	case d.Canary == nil:
		return "deployed"
	case d.Canary.Decision == nil:
		return fmt.Sprintf("in progress (%d%%)", d.Canary.Policy.Percent)
	}
	return decidedVerb(d.Canary.Decision.Outcome)
}

// deploymentSummary is deployment get's sentence about the outcome and
// the live version it left.
func deploymentSummary(d *model.Deployment) string {
	dc := d.Canary
	switch {
	case dc == nil && d.Status == model.DeploymentStatusFailed:
		return fmt.Sprintf("failed; version %d stayed live", d.StartVersion)
	case dc == nil:
		return fmt.Sprintf("deployed; version %d made live", d.EndVersion)
	case dc.Decision == nil:
		return fmt.Sprintf("in progress; version %d live, version %d on %d%% of new runs", dc.StableVersion, dc.CanaryVersion, dc.Policy.Percent)
	case dc.Decision.Outcome == model.CanaryPromote:
		return fmt.Sprintf("promoted; version %d made live", dc.CanaryVersion)
	}
	return fmt.Sprintf("%s; version %d stayed live, version %d never went live", decidedVerb(dc.Decision.Outcome), dc.StableVersion, dc.CanaryVersion)
}

// canaryTarget reads PIPELINE [DEPLOYMENT]. Without DEPLOYMENT it is the
// pipeline's running canary; with orLast (watch), the newest deployment
// when no canary runs any more, so watching right after a canary that was
// already decided still shows its decision.
func canaryTarget(c *cli.Context, orLast bool) (*printer, *client.Client, string, int64, error) {
	if c.NArg() < 1 || c.NArg() > 2 {
		return nil, nil, "", 0, usageError(c, "%s takes 1 or 2 argument(s), got %d", c.Command.Name, c.NArg())
	}
	p, cl, err := setup(c, c.NArg())
	if err != nil {
		return nil, nil, "", 0, err
	}
	pipeline := c.Args().First()
	if c.NArg() == 2 {
		id, err := strconv.ParseInt(c.Args().Get(1), 10, 64)
		if err != nil || id < 1 {
			return nil, nil, "", 0, usageError(c, "DEPLOYMENT must be a deployment number, got %q", c.Args().Get(1))
		}
		return p, cl, pipeline, id, nil
	}
	pl, err := cl.Consistent().GetPipeline(c.Context, pipeline)
	if err != nil {
		return nil, nil, "", 0, err
	}
	switch {
	case pl.ActiveCanary != 0:
		return p, cl, pipeline, pl.ActiveCanary, nil
	case orLast && pl.LastDeployment != 0:
		return p, cl, pipeline, pl.LastDeployment, nil
	}
	return nil, nil, "", 0, fmt.Errorf("pipeline %q has no canary running; name the deployment (gofer pipeline deployment list %s)", pipeline, pipeline)
}

func deploymentWatchCommand() *cli.Command {
	return &cli.Command{
		Name:      "watch",
		Usage:     "follow a canary until it is decided (exit 0 promoted, 1 rolled back or aborted)",
		ArgsUsage: "PIPELINE [DEPLOYMENT]",
		Description: `DEPLOYMENT defaults to the pipeline's running canary (or, when none runs, its newest
deployment). Reads the deployment about once a second and prints the runs counted on
each version whenever they change, then the decision and why. Exit status: 0 when the
canary was promoted (or the deployment is not a canary), 1 when it was rolled back or
aborted, so a script can wait on it.`,
		Flags:  []cli.Flag{&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "how often to read the deployment"}},
		Action: deploymentWatch,
	}
}

func deploymentWatch(c *cli.Context) error {
	p, cl, pipeline, id, err := canaryTarget(c, true)
	if err != nil {
		return err
	}
	interval := c.Duration("interval")
	if interval <= 0 {
		return usageError(c, "--interval must be positive, got %s", interval)
	}
	var last string
	for {
		d, err := cl.GetDeployment(c.Context, pipeline, id)
		if err != nil {
			return err
		}
		if d.Canary == nil {
			p.message("deployment %d of pipeline %s is not a canary: version %d → %d, %s", id, pipeline, d.StartVersion, d.EndVersion, d.State)
			return nil
		}
		if line := canaryCounts(d.Canary); line != last && p.format == "plain" {
			fmt.Fprintln(p.w, line)
			last = line
		}
		if dec := d.Canary.Decision; dec != nil {
			if p.format != "plain" {
				if err := p.result("deployment", d, nil, nil); err != nil {
					return err
				}
			} else {
				p.message("%s by %s; version %d is live", decidedVerb(dec.Outcome), dec.Actor, liveAfter(d))
				for i, line := range wrapWords(dec.Reason, maxPlainWidth-len("why: ")) {
					p.message("%s%s", map[bool]string{true: "why: ", false: "     "}[i == 0], line)
				}
			}
			if dec.Outcome != model.CanaryPromote {
				// Exit 1 without another message: the line above says why.
				return cli.Exit("", 1)
			}
			return nil
		}
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-time.After(interval):
		}
	}
}

// canaryCounts is one line of evidence: completed and failed runs per arm.
func canaryCounts(dc *model.DeploymentCanary) string {
	return fmt.Sprintf("stable v%d: %d completed, %d failed | canary v%d: %d completed, %d failed (of %d to decide)",
		dc.StableVersion, dc.Stable.Completed, dc.Stable.Failed, dc.CanaryVersion, dc.Canary.Completed, dc.Canary.Failed, dc.Policy.Runs)
}

// printDeployment is deployment get's plain output: the record, and for a
// canary its split, the evidence per version and the decision with why.
func printDeployment(p *printer, d *model.Deployment) {
	versions := fmt.Sprintf("%d → %d", d.StartVersion, d.EndVersion)
	if d.Canary != nil {
		versions = fmt.Sprintf("stable %d, canary %d", d.Canary.StableVersion, d.Canary.CanaryVersion)
	}
	table(p.w, nil, kv("deployment", strconv.FormatInt(d.DeploymentID, 10), "pipeline", d.PipelineID, "strategy", deploymentStrategy(d),
		"versions", versions, "outcome", deploymentSummary(d), "state", fmt.Sprintf("%s (%s)", d.State, d.Status),
		"started", humanTime(d.Started), "ended", endedTime(d.Ended), "by", orDash(d.Actor)))
	dc := d.Canary
	if dc == nil {
		return
	}
	pol := dc.Policy
	rule := fmt.Sprintf("decide on %d canary runs or after %s; canary failure rate at most stable + %s points",
		pol.Runs, pol.Duration, strconv.FormatFloat(pol.MaxFailureIncrease, 'f', -1, 64))
	if pol.MaxP95Duration != "" && pol.MaxP95Duration != "0s" {
		rule += "; p95 at most " + pol.MaxP95Duration
	}
	fmt.Fprintln(p.w)
	table(p.w, nil, kv("split", fmt.Sprintf("%d%% of new runs to version %d, the rest to version %d", pol.Percent, dc.CanaryVersion, dc.StableVersion),
		"policy", rule, "canary started", humanTime(dc.Started)))
	fmt.Fprintln(p.w)
	table(p.w, []string{"arm", "version", "completed", "failed", "failure rate", "p95"}, [][]string{
		armRow("stable", dc.StableVersion, dc.Stable), armRow("canary", dc.CanaryVersion, dc.Canary)})
	fmt.Fprintln(p.w)
	if dec := dc.Decision; dec != nil {
		rows := kv("decision", fmt.Sprintf("%s by %s, %s", dec.Outcome, orDash(dec.Actor), humanTime(dec.At)))
		// "live version:  " is the widest key of these rows.
		for i, line := range wrapWords(dec.Reason, maxPlainWidth-len("live version:  ")) {
			key := ""
			if i == 0 {
				key = "why:"
			}
			rows = append(rows, []string{key, line})
		}
		table(p.w, nil, append(rows, kv("live version", strconv.FormatInt(liveAfter(d), 10))...))
		return
	}
	table(p.w, nil, kv("decision", "not yet; version "+strconv.FormatInt(dc.StableVersion, 10)+" stays live until then",
		"decide now", "gofer pipeline deployment promote|rollback|abort "+d.PipelineID+" "+strconv.FormatInt(d.DeploymentID, 10)))
}

func armRow(arm string, version int64, a model.CanaryArm) []string {
	rate, p95 := "-", "-"
	if a.Completed > 0 {
		rate = strconv.FormatFloat(math.Round(float64(a.Failed)*1000/float64(a.Completed))/10, 'f', -1, 64) + "%"
	}
	if len(a.DurationsMillis) > 0 {
		ds := make([]time.Duration, len(a.DurationsMillis))
		for i, ms := range a.DurationsMillis {
			ds[i] = time.Duration(ms) * time.Millisecond
		}
		p95 = canary.P95(ds).Round(time.Millisecond).String()
	}
	return []string{arm, strconv.FormatInt(version, 10), strconv.Itoa(a.Completed), strconv.Itoa(a.Failed), rate, p95}
}

// canarySummary is pipeline get's line about the running canary: its
// version and split, or just its deployment when that cannot be read.
func canarySummary(c *cli.Context, cl *client.Client, pl *model.Pipeline) string {
	d, err := cl.GetDeployment(c.Context, pl.PipelineID, pl.ActiveCanary)
	if err != nil || d.Canary == nil {
		return fmt.Sprintf("deployment %d running (gofer pipeline deployment get %s %d)", pl.ActiveCanary, pl.PipelineID, pl.ActiveCanary)
	}
	return fmt.Sprintf("version %d on %d%% of new runs (deployment %d; %d of %d canary runs completed)",
		d.Canary.CanaryVersion, d.Canary.Policy.Percent, d.DeploymentID, d.Canary.Canary.Completed, d.Canary.Policy.Runs)
}

func endedTime(ms int64) string {
	if ms == 0 {
		return "not yet"
	}
	return humanTime(ms)
}

// maxPlainWidth is the widest line canary output writes: a decision's
// reason carries its numbers and can be long, so it is wrapped.
const maxPlainWidth = 120

// wrapWords breaks s at spaces into lines of at most width columns (a
// longer word gets a line of its own).
func wrapWords(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		switch {
		case line == "":
			line = w
		case displayWidth(line)+1+displayWidth(w) <= width:
			line += " " + w
		default:
			lines = append(lines, line)
			line = w
		}
	}
	return append(lines, line)
}
