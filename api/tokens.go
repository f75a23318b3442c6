package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// tokenWithSecret is the one response that carries a token's secret, in
// upstream's shape ({token_details, secret}).
type tokenWithSecret struct {
	Token  *model.Token `json:"token_details"`
	Secret string       `json:"secret"`
}

type createTokenRequest struct {
	User  string   `json:"user"`
	Roles []string `json:"roles"`
	// Expires is the lifetime in seconds; 0 means the token never expires.
	Expires  int64             `json:"expires"`
	Metadata map[string]string `json:"metadata"`
}

const (
	maxTokenRoles    = 64
	maxTokenMetadata = 64
	maxTokenLifetime = 10 * 365 * 24 * time.Hour
)

// listTokens lists tokens without their hashes.
func (s *Server) listTokens(c echo.Context) error {
	return respondList(s, c, "tokens", func(tx *bbolt.Tx, page store.Page) ([]*model.Token, error) {
		stored, err := store.ListTokens(tx, page)
		out := make([]*model.Token, len(stored))
		for i, t := range stored {
			out[i] = &t.Token
		}
		return out, err
	})
}

// bootstrapToken creates the first admin token. It needs no auth and works
// exactly once per cluster; the secret is shown only in this response.
func (s *Server) bootstrapToken(c echo.Context) error {
	if err := noBody(c); err != nil {
		return err
	}
	secret, hash := newTokenSecret()
	tok := model.StoredToken{
		Token: model.Token{ID: newID(), User: "bootstrap", Roles: []string{model.RoleAdmin}, Metadata: map[string]string{}},
		Hash:  hash,
	}
	res, err := s.apply(c, fsm.CmdTokenBootstrap, fsm.TokenCreate{Token: tok})
	if err != nil {
		return err
	}
	if res.Replayed {
		return conflict("the bootstrap token was already created by an earlier request with this idempotency key; its secret was shown only then")
	}
	out, err := fsm.ResultAs[model.Token](res)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tokenWithSecret{Token: out, Secret: secret})
}

func (s *Server) createToken(c echo.Context) error {
	var req createTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.User) == "" || len(req.User) > maxNameLength {
		return badRequest("user is required and may be at most %d characters", maxNameLength)
	}
	if len(req.Roles) == 0 {
		return badRequest("roles is required: name at least one role (for example %q)", model.RoleUser)
	}
	if len(req.Roles) > maxTokenRoles {
		return badRequest("a token may have at most %d roles", maxTokenRoles)
	}
	for _, r := range req.Roles {
		if err := validID("roles", r); err != nil {
			return err
		}
	}
	// Compared in seconds: converting first to a Duration would overflow
	// (2^62 or 9223372037 seconds wrap around) and slip past the bound.
	if maxSecs := int64(maxTokenLifetime / time.Second); req.Expires < 0 || req.Expires > maxSecs {
		return badRequest("expires is a lifetime in seconds between 0 (never) and %d (10 years), got %d", maxSecs, req.Expires)
	}
	if len(req.Metadata) > maxTokenMetadata {
		return badRequest("metadata may have at most %d entries", maxTokenMetadata)
	}
	if req.Metadata == nil {
		req.Metadata = map[string]string{}
	}
	var expires int64
	if req.Expires > 0 {
		expires = s.opts.Now().Add(time.Duration(req.Expires) * time.Second).UnixMilli()
	}
	secret, hash := newTokenSecret()
	tok := model.StoredToken{
		Token: model.Token{ID: newID(), User: req.User, Roles: req.Roles, Metadata: req.Metadata, Expires: expires},
		Hash:  hash,
	}
	res, err := s.apply(c, fsm.CmdTokenCreate, fsm.TokenCreate{Token: tok})
	if err != nil {
		return err
	}
	if res.Replayed {
		return conflict("a token was already created by an earlier request with this idempotency key; its secret was shown only then")
	}
	out, err := fsm.ResultAs[model.Token](res)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tokenWithSecret{Token: out, Secret: secret})
}

func (s *Server) whoami(c echo.Context) error {
	caller := callerOf(c)
	if caller.Dev {
		return c.JSON(http.StatusOK, wrap("token", &model.Token{ID: "dev", User: "dev", Roles: []string{model.RoleAdmin}, Metadata: map[string]string{"mode": "dev: authentication is off"}}))
	}
	return s.respondToken(c, caller.TokenID)
}

// getToken returns a token's details: your own with any token, others'
// with tokens:read.
func (s *Server) getToken(c echo.Context) error {
	caller := callerOf(c)
	id := c.Param("id")
	if id != caller.TokenID && !s.authz.allowed(caller, []resourceRef{{kind: "tokens"}}, model.ActionRead) {
		return forbidden("token %s may only read its own details (tokens:read is needed for others)", caller.TokenID)
	}
	return s.respondToken(c, id)
}

func (s *Server) respondToken(c echo.Context, id string) error {
	return respondOne(s, c, "token", func(tx *bbolt.Tx) (*model.Token, error) {
		tok, err := store.GetToken(tx, id)
		if tok == nil {
			return nil, err
		}
		return &tok.Token, err
	}, notFound("token %q does not exist", id))
}

type updateTokenRequest struct {
	Disabled *bool `json:"disabled"`
}

func (s *Server) updateToken(c echo.Context) error {
	id := c.Param("id")
	var req updateTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Disabled == nil {
		return badRequest("disabled is required (true or false)")
	}
	if id == callerOf(c).TokenID {
		return badRequest("a token may not disable or enable itself; use another admin token")
	}
	if _, err := applyAs[model.Token](s, c, fsm.CmdTokenSetDisabled, fsm.TokenSetDisabled{ID: id, Disabled: *req.Disabled}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent) // upstream's answer

}

func (s *Server) deleteToken(c echo.Context) error {
	if _, err := s.apply(c, fsm.CmdTokenDelete, fsm.TokenDelete{ID: c.Param("id")}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// Roles.

type createRoleRequest struct {
	ID          string             `json:"id"`
	Description string             `json:"description"`
	Permissions []model.Permission `json:"permissions"`
}

type updateRoleRequest struct {
	Description *string             `json:"description"`
	Permissions *[]model.Permission `json:"permissions"`
}

const maxPermissions = 256

// validatePermissions checks kinds, patterns and actions so a role that
// can never match is refused when it is written, not silently useless.
func (s *Server) validatePermissions(perms []model.Permission) error {
	if len(perms) == 0 {
		return badRequest("permissions is required: at least one {resources, actions}")
	}
	if len(perms) > maxPermissions {
		return badRequest("a role may have at most %d permissions", maxPermissions)
	}
	for i, p := range perms {
		if len(p.Resources) == 0 || len(p.Actions) == 0 {
			return badRequest("permissions[%d]: resources and actions are both required", i)
		}
		for _, res := range p.Resources {
			kind, pattern, hasPattern := strings.Cut(res, ":")
			if !contains(model.ResourceKinds, kind) {
				return badRequest("permissions[%d]: unknown resource kind %q; known kinds: %s", i, kind, strings.Join(model.ResourceKinds, ", "))
			}
			if hasPattern {
				if kind != "namespaces" && kind != "pipelines" && kind != "extensions" {
					return badRequest("permissions[%d]: resource %q cannot take a pattern; only namespaces, pipelines and extensions carry ids", i, kind)
				}
				if s.authz.compile(pattern) == nil {
					return badRequest("permissions[%d]: %q is not a valid regular expression", i, pattern)
				}
			}
		}
		for _, a := range p.Actions {
			if a != model.ActionRead && a != model.ActionWrite && a != model.ActionDelete {
				return badRequest("permissions[%d]: unknown action %q; want read, write or delete", i, a)
			}
		}
	}
	return nil
}

func (s *Server) listRoles(c echo.Context) error {
	return respondList(s, c, "roles", store.ListRoles)
}

func (s *Server) getRole(c echo.Context) error {
	id := c.Param("id")
	if err := validID("role id", id); err != nil {
		return err
	}
	return respondOne(s, c, "role", func(tx *bbolt.Tx) (*model.Role, error) {
		return store.GetRole(tx, id)
	}, notFound("role %q does not exist", id))
}

func (s *Server) createRole(c echo.Context) error {
	var req createRoleRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := validID("id", req.ID); err != nil {
		return err
	}
	if err := checkNameAndDescription(nil, &req.Description); err != nil {
		return err
	}
	if err := s.validatePermissions(req.Permissions); err != nil {
		return err
	}
	r, err := applyAs[model.Role](s, c, fsm.CmdRoleCreate, fsm.RoleCreate{Role: model.Role{ID: req.ID, Description: req.Description, Permissions: req.Permissions}})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, wrap("role", r))
}

func (s *Server) updateRole(c echo.Context) error {
	id := c.Param("id")
	if err := validID("role id", id); err != nil {
		return err
	}
	var req updateRoleRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := checkNameAndDescription(nil, req.Description); err != nil {
		return err
	}
	if req.Permissions != nil {
		if err := s.validatePermissions(*req.Permissions); err != nil {
			return err
		}
	}
	if req.Description == nil && req.Permissions == nil {
		// An empty PATCH ({} or null) changes nothing: no raft entry, and
		// modified stays; the answer is the role as it is.
		return respondOne(s, c, "role", func(tx *bbolt.Tx) (*model.Role, error) {
			return store.GetRole(tx, id)
		}, notFound("role %q does not exist", id))
	}
	r, err := applyAs[model.Role](s, c, fsm.CmdRoleUpdate, fsm.RoleUpdate{ID: id, Description: req.Description, Permissions: req.Permissions})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("role", r))
}

func (s *Server) deleteRole(c echo.Context) error {
	id := c.Param("id")
	if err := validID("role id", id); err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdRoleDeleteDetach, fsm.RoleDelete{ID: id}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
