package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// SubscriptionValidator checks a subscription's settings before it is
// stored. Upstream asks the extension itself (its /api/subscribe); that
// arrives with the extension supervisor, which replaces this through
// Options.SubscriptionValidator. A returned error is shown to the caller.
type SubscriptionValidator interface {
	ValidateSubscription(ext *model.Extension, settings map[string]string) error
}

// BuiltinSubscriptionValidator validates the built-in interval and cron
// extensions' settings locally with extensions/schedule; it accepts any
// settings for other extensions.
type BuiltinSubscriptionValidator struct{}

// ValidateSubscription implements SubscriptionValidator.
func (BuiltinSubscriptionValidator) ValidateSubscription(ext *model.Extension, settings map[string]string) error {
	switch ext.ID {
	case "interval":
		min, err := schedule.MinInterval(ext.Settings)
		if err != nil {
			return err
		}
		if _, err := schedule.ParseInterval(settings["every"], min, time.Unix(0, 0)); err != nil {
			return err
		}
	case "cron":
		if _, err := schedule.Parse(settings["expression"], settings["timezone"]); err != nil {
			return err
		}
	default:
		return nil
	}
	_, err := schedule.ParseCatchUp(settings["catch_up"], settings["catch_up_window"])
	return err
}

func (s *Server) subscriptionValidator() SubscriptionValidator {
	if s.opts.SubscriptionValidator != nil {
		return s.opts.SubscriptionValidator
	}
	return BuiltinSubscriptionValidator{}
}

type createSubscriptionRequest struct {
	ExtensionID    string            `json:"extension_id"`
	SubscriptionID string            `json:"subscription_id"`
	Settings       map[string]string `json:"settings"`
}

func (s *Server) listSubscriptions(c echo.Context) error {
	ns, id, _, err := s.pipelinePath(c)
	if err != nil {
		return err
	}
	return respondList(s, c, "subscriptions", func(tx *bbolt.Tx, page store.Page) ([]*model.Subscription, error) {
		return store.ListPipelineSubscriptions(tx, ns, id, page)
	})
}

// createSubscription subscribes the pipeline to an extension. Settings are
// stored as given (secret markers included); the built-in extensions'
// are validated here (see SubscriptionValidator).
func (s *Server) createSubscription(c echo.Context) error {
	ns, id, _, err := s.pipelinePath(c)
	if err != nil {
		return err
	}
	var req createSubscriptionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := validID("extension_id", req.ExtensionID); err != nil {
		return err
	}
	if err := validID("subscription_id", req.SubscriptionID); err != nil {
		return err
	}
	if err := checkSettings("settings", req.Settings); err != nil {
		return err
	}
	var ext *model.Extension
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		ext, err = store.GetExtension(tx, req.ExtensionID)
		return err
	}); err != nil {
		return err
	}
	if ext == nil {
		return notFound("extension_id: extension %q is not installed", req.ExtensionID)
	}
	if err := s.subscriptionValidator().ValidateSubscription(ext, req.Settings); err != nil {
		return badRequest("settings: %s", err)
	}
	sub, err := applyAs[model.Subscription](s, c, fsm.CmdSubscriptionCreate, fsm.SubscriptionCreate{
		SubscriptionRef: fsm.SubscriptionRef{NamespaceID: ns, PipelineID: id, ExtensionID: req.ExtensionID, SubscriptionID: req.SubscriptionID},
		Settings:        req.Settings,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, wrap("subscription", sub))
}

// subscriptionPath validates …/subscriptions/:extension/:subscription.
func (s *Server) subscriptionPath(c echo.Context) (fsm.SubscriptionRef, error) {
	ns, id, _, err := s.pipelinePath(c)
	if err != nil {
		return fsm.SubscriptionRef{}, err
	}
	ref := fsm.SubscriptionRef{NamespaceID: ns, PipelineID: id, ExtensionID: c.Param("extension"), SubscriptionID: c.Param("subscription")}
	if err := validID("extension id", ref.ExtensionID); err != nil {
		return ref, err
	}
	return ref, validID("subscription id", ref.SubscriptionID)
}

func (s *Server) getSubscription(c echo.Context) error {
	ref, err := s.subscriptionPath(c)
	if err != nil {
		return err
	}
	var sub *model.Subscription
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		sub, err = store.GetSubscription(tx, ref.NamespaceID, ref.PipelineID, ref.ExtensionID, ref.SubscriptionID)
		return err
	}); err != nil {
		return err
	}
	if sub == nil {
		return notFound("pipeline %q has no subscription %q of extension %q", ref.PipelineID, ref.SubscriptionID, ref.ExtensionID)
	}
	return c.JSON(http.StatusOK, wrap("subscription", sub))
}

type updateSubscriptionRequest struct {
	Status string `json:"status"`
}

func (s *Server) updateSubscription(c echo.Context) error {
	ref, err := s.subscriptionPath(c)
	if err != nil {
		return err
	}
	var req updateSubscriptionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Status != model.SubscriptionActive && req.Status != model.SubscriptionDisabled {
		return badRequest("status must be %q or %q, got %q", model.SubscriptionActive, model.SubscriptionDisabled, req.Status)
	}
	sub, err := applyAs[model.Subscription](s, c, fsm.CmdSubscriptionSetStatus, fsm.SubscriptionSetStatus{SubscriptionRef: ref, Status: req.Status})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("subscription", sub))
}

func (s *Server) deleteSubscription(c echo.Context) error {
	ref, err := s.subscriptionPath(c)
	if err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdSubscriptionDelete, fsm.SubscriptionDelete{SubscriptionRef: ref}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
