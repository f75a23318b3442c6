package fsm

import (
	"fmt"
	"maps"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// applyExtensionInstall registers an extension, or replaces the
// registration of one already installed (a reinstall): the auto role is
// (re)written, the previous token deleted and the new one stored, in one
// entry. A reinstall keeps the extension's status and subscriptions; its
// runtime state starts afresh (a new container will run).
func applyExtensionInstall(a *applyCtx, body []byte) (any, error) {
	plan, err := checkExtensionInstall(a, *decodeBody[ExtensionInstall](body))
	if err != nil {
		return nil, err
	}
	return writeExtensionInstall(a, plan)
}

// extensionInstallPlan is an install that passed its checks.
type extensionInstallPlan struct {
	cmd      ExtensionInstall
	prev     *model.Extension
	oldToken *model.StoredToken
}

// checkExtensionInstall checks an install without writing anything.
func checkExtensionInstall(a *applyCtx, cmd ExtensionInstall) (*extensionInstallPlan, error) {
	ext := cmd.Extension
	for _, r := range ext.AdditionalRoles {
		role, err := store.GetRole(a.tx, r)
		if err != nil {
			return nil, err
		}
		if role == nil {
			return nil, fmt.Errorf("%w: additional_roles: role %q does not exist", ErrInvalid, r)
		}
	}
	roleID := model.ExtensionRoleID(ext.ID)
	existingRole, err := store.GetRole(a.tx, roleID)
	if err != nil {
		return nil, err
	}
	prev, err := store.GetExtension(a.tx, ext.ID)
	if err != nil {
		return nil, err
	}
	if existingRole != nil && prev == nil {
		return nil, fmt.Errorf("%w: role %q exists and was not made for this extension; delete or rename it first", ErrConflict, roleID)
	}
	if err := checkNewToken(a, &cmd.Token); err != nil {
		return nil, err
	}
	plan := &extensionInstallPlan{cmd: cmd, prev: prev}
	if prev != nil && prev.TokenID != "" {
		if plan.oldToken, err = store.GetToken(a.tx, prev.TokenID); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// writeExtensionInstall writes a checked install.
func writeExtensionInstall(a *applyCtx, plan *extensionInstallPlan) (any, error) {
	ext, prev := plan.cmd.Extension, plan.prev
	roleID := model.ExtensionRoleID(ext.ID)
	ext.Status, ext.Created = model.ExtensionEnabled, a.meta.Timestamp
	if prev != nil {
		ext.Status, ext.Created = prev.Status, prev.Created
	}
	ext.Modified = a.meta.Timestamp
	ext.Runtime = model.ExtensionRuntime{}
	if ext.Settings == nil {
		ext.Settings = map[string]string{}
	}
	if plan.oldToken != nil {
		if err := store.DeleteToken(a.tx, plan.oldToken); err != nil {
			return nil, err
		}
	}
	if err := store.PutRole(a.tx, model.ExtensionRole(ext.ID, a.meta.Timestamp)); err != nil {
		return nil, err
	}
	tok := plan.cmd.Token
	tok.User = model.ExtensionUser(ext.ID)
	tok.Roles = append([]string{roleID}, ext.AdditionalRoles...)
	tok.Permissions = nil
	tok.Extension = ext.ID
	tok.Expires = 0
	tok.Metadata = map[string]string{"extension_id": ext.ID, "system_generated_extension_token": "true"}
	tok.Created = a.meta.Timestamp
	if err := store.PutToken(a.tx, &tok); err != nil {
		return nil, err
	}
	ext.TokenID = tok.ID
	if err := store.PutExtension(a.tx, &ext); err != nil {
		return nil, err
	}
	details := model.EventDetails{"extension_id": ext.ID, "image": ext.Image, "token_id": tok.ID}
	if prev != nil {
		details["reinstall"] = true
	}
	return &ext, a.emit(model.EventInstalledExtension, details)
}

// applyExtensionStdInstall installs the standard extensions once per
// cluster. An id already taken (the operator installed their own
// "interval" first) is skipped, never replaced; every install is checked
// before any is written. It answers the ids it installed.
func applyExtensionStdInstall(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ExtensionStdInstall](body)
	if store.StdExtensionsInstalled(a.tx) {
		return []string{}, nil
	}
	var plans []*extensionInstallPlan
	seen := map[string]bool{}
	for _, in := range cmd.Installs {
		if in.Extension.ID == "" || seen[in.Extension.ID] {
			return nil, fmt.Errorf("%w: standard extension ids must be set and distinct, got %q twice or empty", ErrInvalid, in.Extension.ID)
		}
		seen[in.Extension.ID] = true
		existing, err := store.GetExtension(a.tx, in.Extension.ID)
		if err != nil {
			return nil, err
		}
		role, err := store.GetRole(a.tx, model.ExtensionRoleID(in.Extension.ID))
		if err != nil {
			return nil, err
		}
		if existing != nil || role != nil {
			continue
		}
		plan, err := checkExtensionInstall(a, in)
		if err != nil {
			return nil, err
		}
		plans = append(plans, plan)
	}
	// Checks done; write.
	installed := []string{}
	for _, p := range plans {
		if _, err := writeExtensionInstall(a, p); err != nil {
			return nil, err
		}
		installed = append(installed, p.cmd.Extension.ID)
	}
	return installed, store.SetStdExtensionsInstalled(a.tx)
}

// applyExtensionSetState records the supervisor's observation. It emits
// no event: the supervisor writes only on change, but a crash-looping
// extension still changes state every backoff, and the event log is not
// the place for that (the state and its reason are on the extension).
func applyExtensionSetState(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ExtensionSetState](body)
	e, err := mustExtension(a, cmd.ID)
	if err != nil {
		return nil, err
	}
	if e.TokenID != cmd.TokenID {
		return nil, fmt.Errorf("%w: extension %q was reinstalled (token %s, not %s); the observation is of its old container", ErrConflict, cmd.ID, e.TokenID, cmd.TokenID)
	}
	switch cmd.Runtime.State {
	case model.ExtensionStateUnknown, model.ExtensionStateProcessing, model.ExtensionStateRunning, model.ExtensionStateExited:
	default:
		return nil, fmt.Errorf("%w: extension state %q is not unknown, processing, running or exited", ErrInvalid, cmd.Runtime.State)
	}
	if len(cmd.Runtime.Reason) > maxRuntimeReason || len(cmd.Runtime.Documentation) > maxRuntimeDocumentation {
		return nil, fmt.Errorf("%w: extension state reason (at most %d bytes) or documentation (at most %d bytes) too long", ErrInvalid, maxRuntimeReason, maxRuntimeDocumentation)
	}
	if cmd.Runtime.Documentation == nil {
		cmd.Runtime.Documentation = e.Runtime.Documentation
	}
	e.Runtime = cmd.Runtime
	if err := store.PutExtension(a.tx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// Bounds on what the supervisor records (it truncates before sending).
const (
	maxRuntimeReason        = 4 << 10
	maxRuntimeDocumentation = 64 << 10
)

func mustExtension(a *applyCtx, id string) (*model.Extension, error) {
	e, err := store.GetExtension(a.tx, id)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%w: extension %q is not installed", ErrNotFound, id)
	}
	return e, nil
}

func applyExtensionSetStatus(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ExtensionSetStatus](body)
	e, err := mustExtension(a, cmd.ID)
	if err != nil {
		return nil, err
	}
	status, kind := model.ExtensionDisabled, model.EventDisabledExtension
	if cmd.Enabled {
		status, kind = model.ExtensionEnabled, model.EventEnabledExtension
	}
	if e.Status == status {
		return e, nil
	}
	e.Status, e.Modified = status, a.meta.Timestamp
	if err := store.PutExtension(a.tx, e); err != nil {
		return nil, err
	}
	return e, a.emit(kind, model.EventDetails{"extension_id": e.ID})
}

// applyExtensionDelete uninstalls: registration, subscriptions, trigger
// keys, the auto role (taken out of any token holding it) and the token.
func applyExtensionDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[ExtensionDelete](body)
	e, err := mustExtension(a, cmd.ID)
	if err != nil {
		return nil, err
	}
	roleID := model.ExtensionRoleID(e.ID)
	held, err := store.TokensHoldingRole(a.tx, roleID)
	if err != nil {
		return nil, err
	}
	var tok *model.StoredToken
	if e.TokenID != "" {
		if tok, err = store.GetToken(a.tx, e.TokenID); err != nil {
			return nil, err
		}
	}
	// Checks done; write.
	for _, t := range held {
		if tok != nil && t.ID == tok.ID {
			continue
		}
		t.Roles = removeString(t.Roles, roleID)
		if err := store.PutToken(a.tx, t); err != nil {
			return nil, err
		}
	}
	if tok != nil {
		if err := store.DeleteToken(a.tx, tok); err != nil {
			return nil, err
		}
	}
	if err := store.DeleteRole(a.tx, roleID); err != nil {
		return nil, err
	}
	if err := store.DeleteExtension(a.tx, e.ID); err != nil {
		return nil, err
	}
	return nil, a.emit(model.EventUninstalledExtension, model.EventDetails{"extension_id": e.ID})
}

func removeString(list []string, s string) []string {
	out := list[:0:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

func subscriptionDetails(r SubscriptionRef) model.EventDetails {
	return pipelineDetails(r.NamespaceID, r.PipelineID, "extension_id", r.ExtensionID, "subscription_id", r.SubscriptionID)
}

func applySubscriptionCreate(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[SubscriptionCreate](body)
	if _, err := mustPipeline(a, cmd.NamespaceID, cmd.PipelineID); err != nil {
		return nil, err
	}
	if _, err := mustExtension(a, cmd.ExtensionID); err != nil {
		return nil, err
	}
	existing, err := store.GetSubscription(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.ExtensionID, cmd.SubscriptionID)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return nil, fmt.Errorf("%w: pipeline %q already has subscription %q of extension %q", ErrConflict, cmd.PipelineID, cmd.SubscriptionID, cmd.ExtensionID)
	}
	s := &model.Subscription{
		NamespaceID: cmd.NamespaceID, PipelineID: cmd.PipelineID, ExtensionID: cmd.ExtensionID, SubscriptionID: cmd.SubscriptionID,
		Settings: maps.Clone(cmd.Settings), Status: model.SubscriptionActive, Created: a.meta.Timestamp, Modified: a.meta.Timestamp,
	}
	if s.Settings == nil {
		s.Settings = map[string]string{}
	}
	if err := store.PutSubscription(a.tx, s); err != nil {
		return nil, err
	}
	return s, a.emitIn(s.NamespaceID, s.PipelineID, model.EventCreatedSubscription, subscriptionDetails(cmd.SubscriptionRef))
}

func mustSubscription(a *applyCtx, r SubscriptionRef) (*model.Subscription, error) {
	s, err := store.GetSubscription(a.tx, r.NamespaceID, r.PipelineID, r.ExtensionID, r.SubscriptionID)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("%w: pipeline %q has no subscription %q of extension %q", ErrNotFound, r.PipelineID, r.SubscriptionID, r.ExtensionID)
	}
	return s, nil
}

func applySubscriptionSetStatus(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[SubscriptionSetStatus](body)
	s, err := mustSubscription(a, cmd.SubscriptionRef)
	if err != nil {
		return nil, err
	}
	var kind string
	switch cmd.Status {
	case model.SubscriptionActive:
		kind = model.EventEnabledSubscription
	case model.SubscriptionDisabled:
		kind = model.EventDisabledSubscription
	default:
		return nil, fmt.Errorf("%w: status %q is not one of %s, %s", ErrInvalid, cmd.Status, model.SubscriptionActive, model.SubscriptionDisabled)
	}
	if s.Status == cmd.Status {
		return s, nil
	}
	s.Status, s.StatusReason, s.Modified = cmd.Status, "", a.meta.Timestamp
	if err := store.PutSubscription(a.tx, s); err != nil {
		return nil, err
	}
	return s, a.emitIn(s.NamespaceID, s.PipelineID, kind, subscriptionDetails(cmd.SubscriptionRef))
}

func applySubscriptionDelete(a *applyCtx, body []byte) (any, error) {
	cmd := decodeBody[SubscriptionDelete](body)
	s, err := mustSubscription(a, cmd.SubscriptionRef)
	if err != nil {
		return nil, err
	}
	if err := store.DeleteSubscription(a.tx, s); err != nil {
		return nil, err
	}
	return nil, a.emitIn(s.NamespaceID, s.PipelineID, model.EventDeletedSubscription, subscriptionDetails(cmd.SubscriptionRef))
}

// triggerCheck is what a trigger key needs before RunCreate writes: the
// run it already started, or the subscription whose watermark it moves.
type triggerCheck struct {
	existing int64
	sub      *model.Subscription
	tickMs   int64
}

// checkTrigger validates a run start by an extension: the extension must
// be installed and enabled; a trigger key needs a subscription of it on the
// pipeline — the one the key names, active, for a key in the tick form
// (ParseTickKey), any for another key.
// It reads only; nil means no trigger key.
func checkTrigger(a *applyCtx, cmd *RunCreate) (*triggerCheck, error) {
	e, err := mustExtension(a, cmd.Extension)
	if err != nil {
		return nil, err
	}
	if e.Status != model.ExtensionEnabled {
		return nil, fmt.Errorf("%w: extension %q is disabled; its token may not start runs", ErrConflict, e.ID)
	}
	if cmd.TriggerKey == "" {
		return nil, nil
	}
	if id := store.GetTriggerKey(a.tx, cmd.NamespaceID, cmd.PipelineID, e.ID, cmd.TriggerKey); id != 0 {
		return &triggerCheck{existing: id}, nil
	}
	tick, ok := ParseTickKey(cmd.TriggerKey)
	if !ok {
		// A key that names no subscription (a GitHub delivery, or an
		// interval key in another form): deduplicated, no watermark.
		n, err := store.CountActiveExtensionSubscriptions(a.tx, cmd.NamespaceID, cmd.PipelineID, e.ID)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: pipeline %q has no active subscription of extension %q", ErrConflict, cmd.PipelineID, e.ID)
		}
		return &triggerCheck{}, nil
	}
	if tick.Namespace != cmd.NamespaceID || tick.Pipeline != cmd.PipelineID {
		return nil, fmt.Errorf("%w: trigger key %q names pipeline %s/%s, not this one (%s/%s)", ErrInvalid, cmd.TriggerKey, tick.Namespace, tick.Pipeline, cmd.NamespaceID, cmd.PipelineID)
	}
	s, err := mustSubscription(a, SubscriptionRef{NamespaceID: cmd.NamespaceID, PipelineID: cmd.PipelineID, ExtensionID: e.ID, SubscriptionID: tick.Subscription})
	if err != nil {
		return nil, err
	}
	if s.Status != model.SubscriptionActive {
		return nil, fmt.Errorf("%w: subscription %q of extension %q is disabled", ErrConflict, s.SubscriptionID, e.ID)
	}
	if tick.Unix*1000 <= s.Watermark {
		// Not fired (no key), and the watermark passed it: it was skipped,
		// or decided before the subscription was recreated. One tick gets
		// one run or one skip, never both.
		return nil, fmt.Errorf("%w: tick %d of subscription %q was already decided (the subscription's watermark is %d); it is not fired late",
			ErrConflict, tick.Unix, s.SubscriptionID, s.Watermark/1000)
	}
	return &triggerCheck{sub: s, tickMs: tick.Unix * 1000}, nil
}

// recordTrigger writes the trigger key and advances the watermark and the
// last fired tick to this tick.
func recordTrigger(a *applyCtx, cmd *RunCreate, tc *triggerCheck, runID int64) error {
	if err := store.PutTriggerKey(a.tx, cmd.NamespaceID, cmd.PipelineID, cmd.Extension, cmd.TriggerKey, runID, a.meta.Timestamp); err != nil {
		return err
	}
	if tc.sub == nil {
		return nil
	}
	// checkTrigger refused ticks at or behind the watermark.
	tc.sub.Watermark, tc.sub.LastFired = tc.tickMs, tc.tickMs
	return store.PutSubscription(a.tx, tc.sub)
}
