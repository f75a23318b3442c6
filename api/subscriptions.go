package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/agent/extcall"
	"github.com/goferhq/gofer/extensions/schedule"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// SubscriptionValidator checks a subscription's settings locally before
// the running extension is asked (Options.ExtensionCalls): fast, clear
// errors for the built-in extensions even while the extension is down. A
// returned error is shown to the caller.
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
// stored as given (secret markers included). The built-in extensions'
// settings are checked here first (see SubscriptionValidator: clear
// errors even while the extension is down); then, with ExtensionCalls, the
// running extension validates them (POST /api/subscribe, markers
// resolved) before anything is stored. Writes run on the leader, where the
// extensions run.
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
	// Whoever may subscribe may make the extension read the secrets the
	// settings name: only a caller that may read them itself, whether or
	// not this cluster calls its extensions (they resolve the markers from
	// the cluster when they restore their subscriptions).
	if err := s.checkSettingMarkers(callerOf(c), ns, id, req.Settings); err != nil {
		return err
	}
	ref := fsm.SubscriptionRef{NamespaceID: ns, PipelineID: id, ExtensionID: req.ExtensionID, SubscriptionID: req.SubscriptionID}
	create := func() (*model.Subscription, bool, error) {
		return applySubscription(s, c, fsm.CmdSubscriptionCreate, fsm.SubscriptionCreate{SubscriptionRef: ref, Settings: req.Settings})
	}
	if s.opts.ExtensionCalls == nil {
		if err := s.subscriptionValidator().ValidateSubscription(ext, req.Settings); err != nil {
			return badRequest("settings: %s", err)
		}
		sub, _, err := create()
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, wrap("subscription", sub))
	}
	unlock := s.subLocks.lock(subscriptionKey(ref))
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	existing, err := s.lookupSubscription(ref)
	if err != nil {
		return err
	}
	if existing != nil {
		// A replay or a duplicate: the commit answers it (the idempotent
		// replay, or 409). The extension has it already.
		sub, _, err := create()
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, wrap("subscription", sub))
	}
	if err := s.subscribeExtension(c.Request().Context(), ext, ref, req.Settings); err != nil {
		return err
	}
	sub, refused, err := create()
	if err != nil {
		s.abandonSubscribe(ref, refused, err, unlock)
		unlock = nil
		return err
	}
	return c.JSON(http.StatusCreated, wrap("subscription", sub))
}

// applySubscription applies a subscription command. refused reports a
// definite refusal by the FSM (nothing was stored); any other error leaves
// the outcome open (a timed-out apply may still commit).
func applySubscription(s *Server, c echo.Context, t fsm.CommandType, body any) (sub *model.Subscription, refused bool, err error) {
	res, err := s.apply(c, t, body)
	if err != nil {
		return nil, res != nil && res.Err != nil, err
	}
	sub, err = fsm.ResultAs[model.Subscription](res)
	return sub, false, err
}

// abandonSubscribe follows a subscribe the extension took but whose commit
// failed, taking over unlock (the subscription's lock). On a definite
// refusal the extension is told to drop it, under the lock, so a
// subscribe that follows cannot overtake the unsubscribe. When the
// outcome is open the entry may still commit: the extension keeps the
// subscription (unsubscribing could leave a committed subscription the
// extension does not run), and its restore at boot reconciles with what
// the cluster holds.
func (s *Server) abandonSubscribe(ref fsm.SubscriptionRef, refused bool, err error, unlock func()) {
	if refused {
		s.unsubscribeLater(ref.ExtensionID, extcallRef(ref), unlock)
		return
	}
	unlock()
	s.logger.Warn("the extension took a subscription whose commit has no known outcome; it keeps it until it restores from the cluster",
		"extension", ref.ExtensionID, "namespace", ref.NamespaceID, "pipeline", ref.PipelineID, "subscription", ref.SubscriptionID, "error", err)
}

// checkSettingMarkers refuses (403) settings naming a secret the caller
// may not read: the extension gets them resolved, so naming one is
// reading it. The rule of run variables (checkSecretMarkers), worded for
// settings.
func (s *Server) checkSettingMarkers(caller *identity, ns, pipeline string, settings map[string]string) error {
	return s.checkMarkersReadable(caller, ns, pipeline, settings, func(name string) string { return "settings." + name }, "name")
}

// subscribeExtension validates settings through the running extension:
// markers resolved, the built-in check first, then POST /api/subscribe.
func (s *Server) subscribeExtension(ctx context.Context, ext *model.Extension, ref fsm.SubscriptionRef, settings map[string]string) error {
	params, err := s.resolveSettings(ref.NamespaceID, ref.PipelineID, settings)
	if err != nil {
		return err
	}
	if err := s.subscriptionValidator().ValidateSubscription(ext, params); err != nil {
		return badRequest("settings: %s", err)
	}
	err = s.opts.ExtensionCalls.Subscribe(ctx, ref.ExtensionID, extcall.Subscription{
		NamespaceID: ref.NamespaceID, PipelineID: ref.PipelineID, SubscriptionID: ref.SubscriptionID, Params: params,
	})
	if err != nil {
		return s.extensionCallError(ref.ExtensionID, err, callSubscribe)
	}
	return nil
}

func subscriptionKey(ref fsm.SubscriptionRef) string {
	return ref.NamespaceID + "/" + ref.PipelineID + "/" + ref.ExtensionID + "/" + ref.SubscriptionID
}

func extcallRef(ref fsm.SubscriptionRef) extcall.SubscriptionRef {
	return extcall.SubscriptionRef{NamespaceID: ref.NamespaceID, PipelineID: ref.PipelineID, SubscriptionID: ref.SubscriptionID}
}

func (s *Server) lookupSubscription(ref fsm.SubscriptionRef) (sub *model.Subscription, err error) {
	err = s.view(func(tx *bbolt.Tx) (err error) {
		sub, err = store.GetSubscription(tx, ref.NamespaceID, ref.PipelineID, ref.ExtensionID, ref.SubscriptionID)
		return err
	})
	return sub, err
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
	sub, err := s.lookupSubscription(ref)
	if err != nil {
		return err
	}
	if sub == nil {
		return subscriptionNotFound(ref)
	}
	return c.JSON(http.StatusOK, wrap("subscription", sub))
}

func subscriptionNotFound(ref fsm.SubscriptionRef) error {
	return notFound("pipeline %q has no subscription %q of extension %q", ref.PipelineID, ref.SubscriptionID, ref.ExtensionID)
}

type updateSubscriptionRequest struct {
	Status string `json:"status"`
}

// updateSubscription enables or disables a subscription. With
// ExtensionCalls the extension follows: enabling validates through it
// (errors as at create) before the commit; disabling tells it to drop the
// subscription after the commit, best effort.
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
	set := func() (*model.Subscription, bool, error) {
		return applySubscription(s, c, fsm.CmdSubscriptionSetStatus, fsm.SubscriptionSetStatus{SubscriptionRef: ref, Status: req.Status})
	}
	if s.opts.ExtensionCalls == nil {
		// The caller enabling a subscription must be allowed the secrets
		// it names, as at create.
		if req.Status == model.SubscriptionActive {
			before, err := s.lookupSubscription(ref)
			if err != nil {
				return err
			}
			if before != nil && before.Status != model.SubscriptionActive {
				if err := s.checkSettingMarkers(callerOf(c), ref.NamespaceID, ref.PipelineID, before.Settings); err != nil {
					return err
				}
			}
		}
		sub, _, err := set()
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, wrap("subscription", sub))
	}
	unlock := s.subLocks.lock(subscriptionKey(ref))
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	before, err := s.lookupSubscription(ref)
	if err != nil {
		return err
	}
	enabling := before != nil && before.Status != model.SubscriptionActive && req.Status == model.SubscriptionActive
	disabling := before != nil && before.Status == model.SubscriptionActive && req.Status == model.SubscriptionDisabled
	if enabling {
		ext, err := s.extension(ref.ExtensionID)
		if err != nil {
			return err
		}
		if ext == nil {
			return notFound("extension %q is not installed", ref.ExtensionID)
		}
		if err := s.checkSettingMarkers(callerOf(c), ref.NamespaceID, ref.PipelineID, before.Settings); err != nil {
			return err
		}
		if err := s.subscribeExtension(c.Request().Context(), ext, ref, before.Settings); err != nil {
			return err
		}
	}
	sub, refused, err := set()
	if err != nil {
		if enabling {
			s.abandonSubscribe(ref, refused, err, unlock)
			unlock = nil
		}
		return err
	}
	if disabling {
		s.unsubscribeLater(ref.ExtensionID, extcallRef(ref), unlock)
		unlock = nil
	}
	return c.JSON(http.StatusOK, wrap("subscription", sub))
}

// deleteSubscription removes a subscription; with ExtensionCalls the
// extension is then told to drop it, best effort (never holding up or
// failing the delete). Only an active subscription is sent: the extension
// does not know a disabled one (upstream's interval extension never
// answers a DELETE for an id it does not have).
func (s *Server) deleteSubscription(c echo.Context) error {
	ref, err := s.subscriptionPath(c)
	if err != nil {
		return err
	}
	if s.opts.ExtensionCalls == nil {
		if _, err := s.apply(c, fsm.CmdSubscriptionDelete, fsm.SubscriptionDelete{SubscriptionRef: ref}); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
	unlock := s.subLocks.lock(subscriptionKey(ref))
	before, err := s.lookupSubscription(ref)
	if err == nil {
		_, err = s.apply(c, fsm.CmdSubscriptionDelete, fsm.SubscriptionDelete{SubscriptionRef: ref})
	}
	if err != nil || before == nil || before.Status != model.SubscriptionActive {
		unlock()
		if err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
	s.unsubscribeLater(ref.ExtensionID, extcallRef(ref), unlock)
	return c.NoContent(http.StatusNoContent)
}
