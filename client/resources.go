package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"net/http"
	"strconv"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

func (c *Client) nsPath(ns string) string {
	if ns == "" {
		ns = c.namespace
	}
	return "/api/namespaces/" + seg(ns)
}

func (c *Client) pipelinePath(id string) string {
	return c.nsPath("") + "/pipelines/" + seg(id)
}

// ListNamespaces lists namespaces the token may read.
func (c *Client) ListNamespaces(ctx context.Context, p Page) ([]*model.Namespace, error) {
	var out struct {
		Namespaces []*model.Namespace `json:"namespaces"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/namespaces", query: p.query()}, &out)
	return out.Namespaces, err
}

// GetNamespace reads one namespace.
func (c *Client) GetNamespace(ctx context.Context, id string) (*model.Namespace, error) {
	var out struct {
		Namespace *model.Namespace `json:"namespace"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.nsPath(id)}, &out)
	return out.Namespace, err
}

// CreateNamespace creates a namespace.
func (c *Client) CreateNamespace(ctx context.Context, id, name, description string) (*model.Namespace, error) {
	var out struct {
		Namespace *model.Namespace `json:"namespace"`
	}
	body := map[string]string{"id": id, "name": name, "description": description}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/namespaces", body: body}, &out)
	return out.Namespace, err
}

// UpdateNamespace changes a namespace's name and/or description (nil
// leaves a field alone).
func (c *Client) UpdateNamespace(ctx context.Context, id string, name, description *string) (*model.Namespace, error) {
	var out struct {
		Namespace *model.Namespace `json:"namespace"`
	}
	body := map[string]*string{"name": name, "description": description}
	_, err := c.do(ctx, request{method: http.MethodPatch, path: c.nsPath(id), body: body}, &out)
	return out.Namespace, err
}

// DeleteNamespace deletes a namespace and everything in it.
func (c *Client) DeleteNamespace(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: c.nsPath(id)}, nil)
	return err
}

// ListPipelines lists the namespace's pipelines.
func (c *Client) ListPipelines(ctx context.Context, p Page) ([]*model.Pipeline, error) {
	var out struct {
		Pipelines []*model.Pipeline `json:"pipelines"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.nsPath("") + "/pipelines", query: p.query()}, &out)
	return out.Pipelines, err
}

// GetPipeline reads a pipeline's metadata.
func (c *Client) GetPipeline(ctx context.Context, id string) (*model.Pipeline, error) {
	var out struct {
		Pipeline *model.Pipeline `json:"pipeline"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.pipelinePath(id)}, &out)
	return out.Pipeline, err
}

// SetPipelineState enables or disables a pipeline.
// The server answers 204 (as upstream does); the pipeline returned is read
// back at least as new as the change.
func (c *Client) SetPipelineState(ctx context.Context, id string, state model.PipelineState) (*model.Pipeline, error) {
	if _, err := c.do(ctx, request{method: http.MethodPatch, path: c.pipelinePath(id), body: map[string]any{"state": state}}, nil); err != nil {
		return nil, err
	}
	return c.AtLeast(c.LastIndex()).GetPipeline(ctx, id)
}

// DeletePipeline deletes a pipeline and its versions.
func (c *Client) DeletePipeline(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: c.pipelinePath(id)}, nil)
	return err
}

// RegisterConfig registers a new version of the pipeline cfg.ID.
// The answer is upstream's {"pipeline": {"metadata": …, "config": …}}.
func (c *Client) RegisterConfig(ctx context.Context, cfg *sdk.PipelineConfig) (*model.PipelineConfig, error) {
	var out struct {
		Pipeline struct {
			Config *model.PipelineConfig `json:"config"`
		} `json:"pipeline"`
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: c.pipelinePath(cfg.ID) + "/configs", body: map[string]any{"config": cfg}}, &out)
	return out.Pipeline.Config, err
}

// ListConfigs lists a pipeline's versions.
func (c *Client) ListConfigs(ctx context.Context, pipeline string, p Page) ([]*model.PipelineConfig, error) {
	var out struct {
		Configs []*model.PipelineConfig `json:"configs"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.pipelinePath(pipeline) + "/configs", query: p.query()}, &out)
	return out.Configs, err
}

// GetConfig reads one version; 0 is the newest registered.
func (c *Client) GetConfig(ctx context.Context, pipeline string, version int64) (*model.PipelineConfig, error) {
	var out struct {
		Config *model.PipelineConfig `json:"config"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.pipelinePath(pipeline) + "/configs/" + strconv.FormatInt(version, 10)}, &out)
	return out.Config, err
}

// DeployConfig makes a version live.
func (c *Client) DeployConfig(ctx context.Context, pipeline string, version int64) (*model.Deployment, error) {
	var out struct {
		Deployment *model.Deployment `json:"deployment"`
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: c.pipelinePath(pipeline) + "/configs/" + strconv.FormatInt(version, 10)}, &out)
	return out.Deployment, err
}

// DeleteConfig deletes a version that is not live.
func (c *Client) DeleteConfig(ctx context.Context, pipeline string, version int64) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: c.pipelinePath(pipeline) + "/configs/" + strconv.FormatInt(version, 10)}, nil)
	return err
}

// ListDeployments lists a pipeline's deployments.
func (c *Client) ListDeployments(ctx context.Context, pipeline string, p Page) ([]*model.Deployment, error) {
	var out struct {
		Deployments []*model.Deployment `json:"deployments"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.pipelinePath(pipeline) + "/deployments", query: p.query()}, &out)
	return out.Deployments, err
}

// GetDeployment reads one deployment.
func (c *Client) GetDeployment(ctx context.Context, pipeline string, id int64) (*model.Deployment, error) {
	var out struct {
		Deployment *model.Deployment `json:"deployment"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: c.pipelinePath(pipeline) + "/deployments/" + strconv.FormatInt(id, 10)}, &out)
	return out.Deployment, err
}

// TokenWithSecret is a newly created token with its one-time secret.
type TokenWithSecret struct {
	Token  *model.Token `json:"token_details"` // upstream's name
	Secret string       `json:"secret"`
}

// BootstrapToken creates the cluster's first admin token (once).
func (c *Client) BootstrapToken(ctx context.Context) (*TokenWithSecret, error) {
	var out TokenWithSecret
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/tokens/bootstrap"}, &out)
	return &out, err
}

// CreateToken creates a token; expires is its lifetime (0 = never).
func (c *Client) CreateToken(ctx context.Context, user string, roles []string, expiresSeconds int64, metadata map[string]string) (*TokenWithSecret, error) {
	var out TokenWithSecret
	body := map[string]any{"user": user, "roles": roles, "expires": expiresSeconds, "metadata": metadata}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/tokens", body: body}, &out)
	return &out, err
}

// ListTokens lists tokens (admin).
func (c *Client) ListTokens(ctx context.Context, p Page) ([]*model.Token, error) {
	var out struct {
		Tokens []*model.Token `json:"tokens"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/tokens", query: p.query()}, &out)
	return out.Tokens, err
}

// GetToken reads a token's details.
func (c *Client) GetToken(ctx context.Context, id string) (*model.Token, error) {
	var out struct {
		Token *model.Token `json:"token"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/tokens/" + seg(id)}, &out)
	return out.Token, err
}

// WhoAmI returns the caller's own token.
func (c *Client) WhoAmI(ctx context.Context) (*model.Token, error) {
	var out struct {
		Token *model.Token `json:"token"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/tokens/whoami"}, &out)
	return out.Token, err
}

// SetTokenDisabled enables or disables a token.
// The server answers 204 (as upstream does); the token returned is read
// back at least as new as the change.
func (c *Client) SetTokenDisabled(ctx context.Context, id string, disabled bool) (*model.Token, error) {
	if _, err := c.do(ctx, request{method: http.MethodPatch, path: "/api/tokens/" + seg(id), body: map[string]bool{"disabled": disabled}}, nil); err != nil {
		return nil, err
	}
	return c.AtLeast(c.LastIndex()).GetToken(ctx, id)
}

// DeleteToken deletes a token.
func (c *Client) DeleteToken(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/tokens/" + seg(id)}, nil)
	return err
}

// ListRoles lists roles.
func (c *Client) ListRoles(ctx context.Context, p Page) ([]*model.Role, error) {
	var out struct {
		Roles []*model.Role `json:"roles"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/roles", query: p.query()}, &out)
	return out.Roles, err
}

// GetRole reads a role.
func (c *Client) GetRole(ctx context.Context, id string) (*model.Role, error) {
	var out struct {
		Role *model.Role `json:"role"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/roles/" + seg(id)}, &out)
	return out.Role, err
}

// CreateRole creates a role.
func (c *Client) CreateRole(ctx context.Context, id, description string, perms []model.Permission) (*model.Role, error) {
	var out struct {
		Role *model.Role `json:"role"`
	}
	body := map[string]any{"id": id, "description": description, "permissions": perms}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/roles", body: body}, &out)
	return out.Role, err
}

// UpdateRole changes a role's description and/or permissions.
func (c *Client) UpdateRole(ctx context.Context, id string, description *string, perms *[]model.Permission) (*model.Role, error) {
	var out struct {
		Role *model.Role `json:"role"`
	}
	body := map[string]any{}
	if description != nil {
		body["description"] = *description
	}
	if perms != nil {
		body["permissions"] = *perms
	}
	_, err := c.do(ctx, request{method: http.MethodPatch, path: "/api/roles/" + seg(id), body: body}, &out)
	return out.Role, err
}

// DeleteRole deletes a role.
func (c *Client) DeleteRole(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/roles/" + seg(id)}, nil)
	return err
}

// GetSystem reads the cluster-wide switches.
func (c *Client) GetSystem(ctx context.Context) (*model.System, error) {
	var out model.System // unwrapped, as upstream answers
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/system"}, &out)
	return &out, err
}

// SetEventIngress pauses (false) or resumes (true) new runs.
func (c *Client) SetEventIngress(ctx context.Context, accept bool) (*model.System, error) {
	var out model.System
	_, err := c.do(ctx, request{method: http.MethodPatch, path: "/api/system", body: map[string]bool{"ignore_pipeline_run_events": !accept}}, &out)
	return &out, err
}

// Metadata reads the server's version.
func (c *Client) Metadata(ctx context.Context) (*model.Metadata, error) {
	var out model.Metadata // unwrapped, as upstream answers
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/system/metadata"}, &out)
	return &out, err
}

// Health asks the first node about itself, without retries. A node that
// knows no leader answers 503; its report is still returned, with an
// *Error for the status.
func (c *Client) Health(ctx context.Context) (*model.Health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.nodes[0]+"/api/system/health", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, redactURLError(err)
	}
	defer resp.Body.Close()
	var out model.Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, &Error{Status: resp.StatusCode, Message: fmt.Sprintf("health of %s answered %d without a report", displayNode(c.nodes[0]), resp.StatusCode)}
	}
	if resp.StatusCode != http.StatusOK {
		return &out, &Error{Status: resp.StatusCode, Code: "unavailable", FromAPI: true, Message: fmt.Sprintf("%s knows no leader (state %s)", displayNode(c.nodes[0]), out.State)}
	}
	return &out, nil
}
