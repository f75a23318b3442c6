package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/goferhq/gofer/store/model"
)

// DeployOptions is the deploy route's optional body. The zero value is an
// immediate deployment, exactly what DeployConfig sends (no body).
type DeployOptions struct {
	// Strategy is "immediate" (or empty) or "canary".
	Strategy string `json:"strategy,omitempty"`
	// Canary is the canary's policy; only with Strategy "canary".
	Canary *model.CanaryPolicy `json:"canary,omitempty"`
}

// DeployConfigWith deploys a version with a strategy: a canary keeps the
// live version live and splits new runs until it is decided. With zero
// options it is DeployConfig.
func (c *Client) DeployConfigWith(ctx context.Context, pipeline string, version int64, opts DeployOptions) (*model.Deployment, error) {
	if opts == (DeployOptions{}) {
		return c.DeployConfig(ctx, pipeline, version)
	}
	var out struct {
		Deployment *model.Deployment `json:"deployment"`
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: c.pipelinePath(pipeline) + "/configs/" + strconv.FormatInt(version, 10), body: opts}, &out)
	return out.Deployment, err
}

// DecideDeployment records a human's decision of a canary deployment:
// outcome is model.CanaryPromote, CanaryRollback or CanaryAbort; an empty
// reason lets the server say "<outcome> requested". Once a canary is
// decided, any later decision is a 409.
func (c *Client) DecideDeployment(ctx context.Context, pipeline string, id int64, outcome, reason string) (*model.Deployment, error) {
	var body any
	if reason != "" {
		body = map[string]string{"reason": reason}
	}
	var out struct {
		Deployment *model.Deployment `json:"deployment"`
	}
	_, err := c.do(ctx, request{method: http.MethodPost,
		path: c.pipelinePath(pipeline) + "/deployments/" + strconv.FormatInt(id, 10) + "/" + outcome, body: body}, &out)
	return out.Deployment, err
}
