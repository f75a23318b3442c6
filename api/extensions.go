package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// Extension registrations (docs/extensions.md). This is the replicated
// record; the leader's supervisor (agent/supervisor) runs the container.

const (
	maxExtensionImage      = 1024
	maxExtensionSettings   = 128
	maxSettingKeyLen       = 256
	maxSettingValueLen     = 8 << 10
	maxRegistryCredentials = 4 << 10
)

type registryAuth struct {
	User string `json:"user"`
	Pass string `json:"pass"`
}

type installExtensionRequest struct {
	ID              string            `json:"id"`
	Image           string            `json:"image"`
	Settings        map[string]string `json:"settings"`
	RegistryAuth    *registryAuth     `json:"registry_auth"`
	AdditionalRoles []string          `json:"additional_roles"`
	// Pull lets the supervisor pull the image; without it the image must
	// be present on the engine.
	Pull bool `json:"pull"`
}

// extensionToken is the token an install made: its secret is shown once,
// in the install's answer, like a created token's.
type extensionToken struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// installAnswer is the answer of an install.
type installAnswer struct {
	Extension model.ExtensionView `json:"extension"`
	Token     extensionToken      `json:"token"`
}

// checkSettings validates install or subscription settings: names are
// environment-variable-like (the extension receives install settings as
// its environment), values bounded.
func checkSettings(field string, settings map[string]string) error {
	if len(settings) > maxExtensionSettings {
		return badRequest("%s: at most %d entries, got %d", field, maxExtensionSettings, len(settings))
	}
	for k, v := range settings {
		if k == "" || len(k) > maxSettingKeyLen || strings.ContainsAny(k, "=\x00") {
			return badRequest("%s: name %q must be 1 to %d characters without '=' or NUL", field, k, maxSettingKeyLen)
		}
		if len(v) > maxSettingValueLen || strings.ContainsRune(v, 0) {
			return badRequest("%s: %q may hold at most %d bytes and no NUL", field, k, maxSettingValueLen)
		}
	}
	return nil
}

// installExtension registers an extension (or reinstalls it: new image and
// settings, a fresh token; status and subscriptions stay). It answers 201
// with the registration and the new token's secret, once.
func (s *Server) installExtension(c echo.Context) error {
	var req installExtensionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := validID("id", req.ID); err != nil {
		return err
	}
	if strings.TrimSpace(req.Image) == "" || len(req.Image) > maxExtensionImage {
		return badRequest("image is required: a container image reference of at most %d characters", maxExtensionImage)
	}
	// The SDK's check, the one task images get at registration: an image
	// Docker would refuse fails here, not when the supervisor starts it.
	if err := sdk.ValidateImageRef(req.Image); err != nil {
		return badRequest("image: %q is not a valid image reference: %v", req.Image, err)
	}
	if err := checkSettings("settings", req.Settings); err != nil {
		return err
	}
	if len(req.AdditionalRoles) > maxTokenRoles {
		return badRequest("additional_roles: at most %d roles", maxTokenRoles)
	}
	for _, r := range req.AdditionalRoles {
		if err := validID("additional_roles", r); err != nil {
			return err
		}
	}
	ext := model.Extension{ID: req.ID, Image: req.Image, Settings: req.Settings, AdditionalRoles: req.AdditionalRoles, Pull: req.Pull}
	if ext.AdditionalRoles == nil {
		ext.AdditionalRoles = []string{}
	}
	if ra := req.RegistryAuth; ra != nil {
		if ra.User == "" || ra.Pass == "" || len(ra.User)+len(ra.Pass) > maxRegistryCredentials {
			return badRequest("registry_auth: user and pass are both required (at most %d bytes in all)", maxRegistryCredentials)
		}
		if s.opts.Secrets == nil {
			return conflict("registry_auth: this node has no secret_store.encryption_key to seal the password with")
		}
		box, err := s.sealingBox()
		if err != nil {
			return err
		}
		sealed, err := box.Seal([]byte(ra.Pass), seal.ExtensionRegistryLocation(req.ID))
		if err != nil {
			return err
		}
		ext.RegistryUser, ext.RegistryPassSealed = ra.User, sealed
	}
	cmd, secret, err := s.NewExtensionInstall(ext)
	if err != nil {
		return err
	}
	res, err := s.apply(c, fsm.CmdExtensionInstall, cmd)
	if err != nil {
		return err
	}
	if res.Replayed {
		return conflict("the extension was already installed by an earlier request with this idempotency key; its token's secret was shown only then")
	}
	out, err := fsm.ResultAs[model.Extension](res)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, installAnswer{Extension: out.View(), Token: extensionToken{ID: cmd.Token.ID, Secret: secret}})
}

// NewExtensionInstall makes the install command for ext: a fresh token
// (its secret returned, its hash stored) whose secret is sealed like a
// run token's (seal.RunTokenLocation), so the supervisor can hand it to
// the container and a key rotation re-seals it. The API's install and
// the leader's install of the standard extensions both use it.
func (s *Server) NewExtensionInstall(ext model.Extension) (cmd fsm.ExtensionInstall, secret string, err error) {
	secret, hash := newTokenSecret()
	tok := model.StoredToken{Token: model.Token{ID: newID()}, Hash: hash}
	if s.opts.Secrets != nil {
		box, err := s.sealingBox()
		if err != nil {
			return cmd, "", err
		}
		if tok.Sealed, err = box.Seal([]byte(secret), seal.RunTokenLocation(tok.ID)); err != nil {
			return cmd, "", err
		}
		tok.KeyCheck = box.KeyCheck()
	}
	return fsm.ExtensionInstall{Extension: ext, Token: tok}, secret, nil
}

func (s *Server) listExtensions(c echo.Context) error {
	return respondList(s, c, "extensions", func(tx *bbolt.Tx, page store.Page) ([]model.ExtensionView, error) {
		list, err := store.ListExtensions(tx, page)
		out := make([]model.ExtensionView, len(list))
		for i, e := range list {
			out[i] = e.View()
		}
		return out, err
	})
}

// extensionParam is the :extension path parameter, checked.
func extensionParam(c echo.Context) (string, error) {
	id := c.Param("extension")
	return id, validID("extension id", id)
}

func (s *Server) getExtension(c echo.Context) error {
	id, err := extensionParam(c)
	if err != nil {
		return err
	}
	e, err := s.installedExtension(id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("extension", e.View()))
}

type updateExtensionRequest struct {
	Enable *bool `json:"enable"`
}

// updateExtension enables or disables an extension; a disabled
// extension's token may not start runs (upstream only flips the field).
func (s *Server) updateExtension(c echo.Context) error {
	id, err := extensionParam(c)
	if err != nil {
		return err
	}
	var req updateExtensionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Enable == nil {
		return badRequest("enable is required (true or false)")
	}
	e, err := applyAs[model.Extension](s, c, fsm.CmdExtensionSetStatus, fsm.ExtensionSetStatus{ID: id, Enabled: *req.Enable})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("extension", e.View()))
}

// uninstallExtension deletes the registration, its role and token and
// every subscription to it.
func (s *Server) uninstallExtension(c echo.Context) error {
	id, err := extensionParam(c)
	if err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdExtensionDelete, fsm.ExtensionDelete{ID: id}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// listExtensionSubscriptions answers every subscription to the extension
// that the caller may read, across namespaces: what an extension reads at
// boot to restore its state.
//
// The extension itself gets the settings as its subscribe call did:
// secret markers resolved. A subscription whose markers do not resolve
// (the secret was deleted, the key is missing) is left out of its list,
// with a warning in the log: it must not subscribe with a marker's text
// as the setting. Anyone else sees the settings as stored.
func (s *Server) listExtensionSubscriptions(c echo.Context) error {
	id, err := extensionParam(c)
	if err != nil {
		return err
	}
	caller := callerOf(c)
	readable := func(sub *model.Subscription) bool {
		return s.authz.allowed(caller, []resourceRef{{kind: "namespaces", target: sub.NamespaceID},
			{kind: "pipelines", target: sub.PipelineID}, {kind: "subscriptions"}}, model.ActionRead)
	}
	own := caller.Extension == id
	return respondList(s, c, "subscriptions", func(tx *bbolt.Tx, page store.Page) ([]*model.Subscription, error) {
		keep := readable
		if own {
			// Resolved while the page is made, so a left-out
			// subscription does not shorten the page (the SDK stops
			// at a short one).
			keep = func(sub *model.Subscription) bool {
				if !readable(sub) {
					return false
				}
				resolved, err := s.resolveSettingsIn(tx, sub.NamespaceID, sub.PipelineID, sub.Settings)
				if err != nil {
					s.logger.Warn("a subscription is left out of its extension's list: its settings do not resolve",
						"extension", id, "namespace", sub.NamespaceID, "pipeline", sub.PipelineID,
						"subscription", sub.SubscriptionID, "reason", classify(err).message)
					return false
				}
				sub.Settings = resolved
				return true
			}
		}
		return store.ListExtensionSubscriptions(tx, id, page, keep)
	})
}

// extensionRefs are the resources of a route under /api/extensions/:extension.
func extensionRefs(kinds ...string) func(c echo.Context) []resourceRef {
	return func(c echo.Context) []resourceRef {
		out := []resourceRef{{kind: "extensions", target: c.Param("extension")}}
		for _, k := range kinds {
			out = append(out, resourceRef{kind: k})
		}
		return out
	}
}

// installedExtension reads an installed extension's record; 404 naming
// it when there is none.
func (s *Server) installedExtension(id string) (*model.Extension, error) {
	e, err := s.extension(id)
	if err == nil && e == nil {
		err = notFound("extension %q is not installed", id)
	}
	return e, err
}

// extension reads an installed extension's record; nil when none.
func (s *Server) extension(id string) (e *model.Extension, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		e, err = store.GetExtension(tx, id)
		return err
	})
	return e, err
}
