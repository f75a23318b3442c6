package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// pipelinePath validates :ns and :pipeline and checks that both exist.
func (s *Server) pipelinePath(c echo.Context) (ns, id string, p *model.Pipeline, err error) {
	ns, id = c.Param("ns"), c.Param("pipeline")
	if err = validID("namespace id", ns); err != nil {
		return
	}
	if err = validID("pipeline id", id); err != nil {
		return
	}
	err = s.view(func(tx *bbolt.Tx) error {
		n, err := store.GetNamespace(tx, ns)
		if err != nil {
			return err
		}
		if n == nil {
			return notFound("namespace %q does not exist", ns)
		}
		if p, err = store.GetPipeline(tx, ns, id); err != nil {
			return err
		}
		if p == nil {
			return notFound("pipeline %q does not exist in namespace %q", id, ns)
		}
		return nil
	})
	return
}

// pipelineItemPath is pipelinePath plus a numeric path parameter: a
// version or a deployment id.
func (s *Server) pipelineItemPath(c echo.Context, param string) (ns, id string, p *model.Pipeline, n int64, err error) {
	if ns, id, p, err = s.pipelinePath(c); err != nil {
		return
	}
	n, err = parseInt64Param(c, param)
	return
}

func (s *Server) listPipelines(c echo.Context) error {
	ns := c.Param("ns")
	if err := validID("namespace id", ns); err != nil {
		return err
	}
	if _, err := s.lookupNamespace(ns); err != nil {
		return err
	}
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	caller := callerOf(c)
	var out []*model.Pipeline
	err = s.view(func(tx *bbolt.Tx) (err error) {
		out, err = store.ListPipelines(tx, ns, page, func(p *model.Pipeline) bool {
			return s.authz.allowed(caller, []resourceRef{{kind: "namespaces", target: ns}, {kind: "pipelines", target: p.PipelineID}}, model.ActionRead)
		})
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("pipelines", out))
}

func (s *Server) getPipeline(c echo.Context) error {
	_, _, p, err := s.pipelinePath(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("pipeline", p))
}

type updatePipelineRequest struct {
	State *model.PipelineState `json:"state"`
}

func (s *Server) updatePipeline(c echo.Context) error {
	ns, id, _, err := s.pipelinePath(c)
	if err != nil {
		return err
	}
	var req updatePipelineRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.State == nil {
		return badRequest("state is required: %q or %q", model.PipelineStateActive, model.PipelineStateDisabled)
	}
	if *req.State != model.PipelineStateActive && *req.State != model.PipelineStateDisabled {
		return badRequest("state must be %q or %q, got %q", model.PipelineStateActive, model.PipelineStateDisabled, *req.State)
	}
	if _, err := applyAs[model.Pipeline](s, c, fsm.CmdPipelineSetState, fsm.PipelineSetState{NamespaceID: ns, PipelineID: id, State: *req.State}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent) // upstream's answer

}

func (s *Server) deletePipeline(c echo.Context) error {
	ns, id, _, err := s.pipelinePath(c)
	if err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdPipelineDelete, fsm.PipelineDelete{NamespaceID: ns, PipelineID: id}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type registerConfigRequest struct {
	Config json.RawMessage `json:"config"`
}

// registerConfig registers version N+1. The pipeline is created on its
// first registration; the path id must equal the config's id.
func (s *Server) registerConfig(c echo.Context) error {
	ns, id := c.Param("ns"), c.Param("pipeline")
	if err := validID("namespace id", ns); err != nil {
		return err
	}
	if err := validID("pipeline id", id); err != nil {
		return err
	}
	var req registerConfigRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Config) == 0 || string(req.Config) == "null" {
		return badRequest("config is required: send {\"config\": <pipeline config JSON>}")
	}
	cfg, err := sdk.DecodeConfig(req.Config)
	if err != nil {
		return badRequest("%s", err)
	}
	cfg.Normalize() // so equal configs hash equal (gofer up compares hashes)
	if err := cfg.Validate(); err != nil {
		return badRequest("%s", err)
	}
	if cfg.ID != id {
		return badRequest("config id %q does not match the pipeline id %q in the path", cfg.ID, id)
	}
	if _, err := s.lookupNamespace(ns); err != nil {
		return err
	}
	canonical, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(canonical)
	out, err := applyAs[model.PipelineConfig](s, c, fsm.CmdConfigRegister, fsm.ConfigRegister{
		NamespaceID: ns,
		Config:      cfg,
		Hash:        hex.EncodeToString(sum[:]),
		Retention:   s.opts.PipelineVersionRetention,
	})
	if err != nil {
		return err
	}
	// Upstream answers {"pipeline": {"metadata": …, "config": …}}: the
	// pipeline the registration created or updated, and the new version.
	var p *model.Pipeline
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		p, err = store.GetPipeline(tx, ns, id)
		return err
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, wrap("pipeline", registeredPipeline{Metadata: p, Config: out.View()}))
}

func (s *Server) listConfigs(c echo.Context) error {
	ns, id, _, err := s.pipelinePath(c)
	if err != nil {
		return err
	}
	return respondList(s, c, "configs", func(tx *bbolt.Tx, page store.Page) ([]model.PipelineConfigView, error) {
		list, err := store.ListConfigs(tx, ns, id, page)
		return model.ConfigViews(list), err
	})
}

// getConfig returns one version; version 0 means the newest registered.
func (s *Server) getConfig(c echo.Context) error {
	ns, id, p, version, err := s.pipelineItemPath(c, "version")
	if err != nil {
		return err
	}
	if version == 0 {
		version = p.LatestVersion
	}
	return respondOne(s, c, "config", func(tx *bbolt.Tx) (*model.PipelineConfigView, error) {
		cfg, err := store.GetConfig(tx, ns, id, version)
		if cfg == nil || err != nil {
			return nil, err
		}
		v := cfg.View()
		return &v, nil
	}, notFound("pipeline %q has no config version %d", id, version))
}

func (s *Server) deployConfig(c echo.Context) error {
	ns, id, _, version, err := s.pipelineItemPath(c, "version")
	if err != nil {
		return err
	}
	if version == 0 {
		return badRequest("version must be a registered version number (1 or more)")
	}
	var req deployRequest
	if _, err := decodeOptionalJSON(c, &req); err != nil {
		return err
	}
	cmd := fsm.ConfigDeploy{NamespaceID: ns, PipelineID: id, Version: version}
	switch req.Strategy {
	case "", model.DeploymentStrategyImmediate:
		if req.Canary != nil {
			return badRequest("canary: only with strategy %q", model.DeploymentStrategyCanary)
		}
	case model.DeploymentStrategyCanary:
		if req.Canary == nil {
			return badRequest("canary: strategy %q needs the canary policy {canary_percent, canary_runs, canary_duration, max_failure_increase, max_p95_duration?}", model.DeploymentStrategyCanary)
		}
		if _, err := fsm.CanaryPolicy(req.Canary); err != nil {
			return badRequest("%s", strings.TrimPrefix(err.Error(), fsm.ErrInvalid.Error()+": "))
		}
		cmd.Strategy, cmd.Canary = req.Strategy, req.Canary
		if err := s.checkCanaryValues(ns, id, version); err != nil {
			return err
		}
	default:
		return badRequest("strategy: must be %q or %q, got %q", model.DeploymentStrategyImmediate, model.DeploymentStrategyCanary, req.Strategy)
	}
	d, err := applyAs[model.Deployment](s, c, fsm.CmdConfigDeploy, cmd)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, wrap("deployment", viewDeployment(d)))
}

// deployRequest is the deploy route's optional body; none is an
// immediate deployment, as upstream's.
type deployRequest struct {
	Strategy string              `json:"strategy"`
	Canary   *model.CanaryPolicy `json:"canary"`
}

// maxDeployBody bounds the deploy body (a strategy and a small policy).
const maxDeployBody = 4 << 10

// decideDeployment records a human's decision of a canary deployment:
// promote, rollback or abort, attributed to the token's user.
func (s *Server) decideDeployment(outcome string) echo.HandlerFunc {
	return func(c echo.Context) error {
		ns, id, _, depID, err := s.pipelineItemPath(c, "deployment")
		if err != nil {
			return err
		}
		var req decisionRequest
		if _, err := decodeOptionalJSON(c, &req); err != nil {
			return err
		}
		if len(req.Reason) > maxDecisionReason {
			return badRequest("reason: at most %d bytes, got %d", maxDecisionReason, len(req.Reason))
		}
		reason := req.Reason
		if reason == "" {
			reason = outcome + " requested"
		}
		d, err := applyAs[model.Deployment](s, c, fsm.CmdDeploymentDecide, fsm.DeploymentDecide{
			NamespaceID: ns, PipelineID: id, DeploymentID: depID, Outcome: outcome, Reason: reason})
		if err != nil {
			return err
		}
		// The applied record holds no per-run durations (they are keyed
		// apart); this node is the leader and has applied the decision, so
		// its state answers the same shape as a GET.
		_ = s.view(func(tx *bbolt.Tx) error { store.WithCanaryDurations(tx, d); return nil })
		return c.JSON(http.StatusOK, wrap("deployment", viewDeployment(d)))
	}
}

// maxDecisionReason bounds a human's reason for a decision.
const maxDecisionReason = 1024

func (s *Server) deleteConfig(c echo.Context) error {
	ns, id, _, version, err := s.pipelineItemPath(c, "version")
	if err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdConfigDelete, fsm.ConfigDelete{NamespaceID: ns, PipelineID: id, Version: version}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listDeployments(c echo.Context) error {
	ns, id, _, err := s.pipelinePath(c)
	if err != nil {
		return err
	}
	return respondList(s, c, "deployments", func(tx *bbolt.Tx, page store.Page) ([]deploymentView, error) {
		list, err := store.ListDeployments(tx, ns, id, page)
		out := make([]deploymentView, len(list))
		for i, d := range list {
			store.WithCanaryDurations(tx, d)
			out[i] = viewDeployment(d)
		}
		return out, err
	})
}

func (s *Server) getDeployment(c echo.Context) error {
	ns, id, _, depID, err := s.pipelineItemPath(c, "deployment")
	if err != nil {
		return err
	}
	return respondOne(s, c, "deployment", func(tx *bbolt.Tx) (*deploymentView, error) {
		d, err := store.GetDeployment(tx, ns, id, depID)
		if d == nil || err != nil {
			return nil, err
		}
		store.WithCanaryDurations(tx, d)
		v := viewDeployment(d)
		return &v, nil
	}, notFound("pipeline %q has no deployment %d", id, depID))
}

// decisionRequest is the optional body of a canary decision.
type decisionRequest struct {
	Reason string `json:"reason"`
}

// registeredPipeline is upstream's answer to a config registration.
type registeredPipeline struct {
	Metadata *model.Pipeline          `json:"metadata"`
	Config   model.PipelineConfigView `json:"config"`
}

// deploymentView is a deployment as upstream serves it: with logs, which
// upstream always leaves empty too (a deployment is an instant cut-over),
// and a status_reason, which no deployment here has.
type deploymentView struct {
	*model.Deployment
	Logs         []model.Event       `json:"logs"`
	StatusReason *model.StatusReason `json:"status_reason"`
}

func viewDeployment(d *model.Deployment) deploymentView {
	v := deploymentView{Deployment: d, Logs: []model.Event{}}
	if d.Canary != nil && d.Canary.Decision != nil {
		v.StatusReason = &model.StatusReason{Reason: d.Canary.Decision.Outcome, Description: d.Canary.Decision.Reason}
	}
	return v
}
