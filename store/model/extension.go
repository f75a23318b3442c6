package model

import "encoding/json"

// Extension is an installed extension's registration. The leader's
// extension supervisor (agent/supervisor) runs its container and records
// what it observes in the runtime fields (CmdExtensionSetState).
type Extension struct {
	ID       string            `json:"id"`
	Image    string            `json:"image"`
	Settings map[string]string `json:"settings"`
	// RegistryUser is the registry login; the password is kept sealed in
	// RegistryPassSealed and never shown.
	RegistryUser       string   `json:"registry_user,omitempty"`
	RegistryPassSealed []byte   `json:"registry_pass_sealed,omitempty"`
	AdditionalRoles    []string `json:"additional_roles"`
	// Status is ExtensionEnabled or ExtensionDisabled; a disabled
	// extension's token may not start runs.
	Status string `json:"status"`
	// TokenID is the extension's current API token; a reinstall replaces
	// it (the old one is deleted in the same entry).
	TokenID  string `json:"token_id"`
	Created  int64  `json:"created"`
	Modified int64  `json:"modified"`
	// Pull lets the supervisor pull the image (always, at every start,
	// as upstream did); without it a missing image is an error.
	Pull bool `json:"pull,omitempty"`
	// Runtime is what the supervisor last observed of the container
	// started for TokenID; a reinstall resets it.
	Runtime ExtensionRuntime `json:"runtime"`
}

// ExtensionRuntime is the supervisor's view of an extension's container,
// written only when it changes.
type ExtensionRuntime struct {
	// State is one of upstream's names: ExtensionStateUnknown,
	// ExtensionStateProcessing, ExtensionStateRunning, ExtensionStateExited.
	State string `json:"state"`
	// Reason says why, for a state that is not running (the last error).
	Reason string `json:"reason,omitempty"`
	// Started is when the running container started (epoch ms); 0 when none.
	Started int64 `json:"started,omitempty"`
	// Documentation is the extension's GET /api/info documentation, kept
	// as the extension sent it.
	Documentation json.RawMessage `json:"documentation,omitempty"`
}

// Extension runtime states (upstream's names).
const (
	ExtensionStateUnknown    = "unknown"
	ExtensionStateProcessing = "processing"
	ExtensionStateRunning    = "running"
	ExtensionStateExited     = "exited"
)

// Extension statuses (upstream's names).
const (
	ExtensionEnabled  = "enabled"
	ExtensionDisabled = "disabled"
)

// ExtensionView is an extension as the API shows it: no sealed values.
type ExtensionView struct {
	ID              string            `json:"id"`
	Image           string            `json:"image"`
	Settings        map[string]string `json:"settings"`
	RegistryUser    string            `json:"registry_user,omitempty"`
	AdditionalRoles []string          `json:"additional_roles"`
	Status          string            `json:"status"`
	TokenID         string            `json:"token_id"`
	Created         int64             `json:"created"`
	Modified        int64             `json:"modified"`
	Pull            bool              `json:"pull"`
	// State is the supervisor's last observation (upstream's names:
	// unknown, processing, running, exited), StateReason why, Started
	// when the running container started (epoch ms).
	State         string          `json:"state"`
	StateReason   string          `json:"state_reason,omitempty"`
	Started       int64           `json:"started,omitempty"`
	Documentation json.RawMessage `json:"documentation,omitempty"`
}

// View returns the extension without sealed values.
func (e *Extension) View() ExtensionView {
	state := e.Runtime.State
	if state == "" {
		state = ExtensionStateUnknown
	}
	return ExtensionView{ID: e.ID, Image: e.Image, Settings: e.Settings, RegistryUser: e.RegistryUser,
		AdditionalRoles: e.AdditionalRoles, Status: e.Status, TokenID: e.TokenID, Created: e.Created,
		Modified: e.Modified, Pull: e.Pull, State: state, StateReason: e.Runtime.Reason, Started: e.Runtime.Started,
		Documentation: e.Runtime.Documentation}
}

// ExtensionRoleID is the role an extension's token holds: extension_<id>.
func ExtensionRoleID(id string) string { return "extension_" + id }

// ExtensionUser is how an extension's token appears in events and records.
func ExtensionUser(id string) string { return id + " (extension)" }

// ExtensionRole is the auto role made at install, granting what upstream's
// does: everything on its own extension resource (extensions:<id>), read
// and write on namespaces, pipelines and runs (to start runs), and read on
// configs, deployments, events, subscriptions, system and task executions
// (so it reads its own subscriptions, GET /api/extensions/<id>/subscriptions,
// but may not subscribe pipelines).
func ExtensionRole(id string, now int64) *Role {
	rwd := []Action{ActionRead, ActionWrite, ActionDelete}
	return &Role{
		ID:          ExtensionRoleID(id),
		Description: "Made for extension " + id + " at install; removed at uninstall.",
		Permissions: []Permission{
			{Resources: []string{"extensions:" + id}, Actions: rwd},
			{Resources: []string{"namespaces:.*", "pipelines:.*", "runs"}, Actions: []Action{ActionRead, ActionWrite}},
			{Resources: []string{"namespaces:.*", "pipelines:.*", "configs", "deployments", "events",
				"subscriptions", "system", "task_executions"}, Actions: []Action{ActionRead}},
		},
		Created: now, Modified: now,
	}
}

// Subscription ties a pipeline to an extension: the extension starts runs
// of the pipeline when its trigger fires.
type Subscription struct {
	NamespaceID    string `json:"namespace_id"`
	PipelineID     string `json:"pipeline_id"`
	ExtensionID    string `json:"extension_id"`
	SubscriptionID string `json:"subscription_id"`
	// Settings are stored as given (they may hold secret markers, which
	// the extension's subscribe call resolves).
	Settings     map[string]string `json:"settings"`
	Status       string            `json:"status"`
	StatusReason string            `json:"status_reason"`
	// Watermark is the last tick (epoch ms) decided for this subscription:
	// fired through a trigger key naming it, or reported skipped; 0 before
	// the first. No tick at or behind it is fired (docs/triggers.md).
	Watermark int64 `json:"watermark"`
	// LastFired is the last tick (epoch ms) that started a run; 0 before
	// the first. The watermark may be past it (skipped ticks).
	LastFired int64 `json:"last_fired,omitempty"`
	Created   int64 `json:"created"`
	Modified  int64 `json:"modified"`
}

// Subscription statuses (upstream's names).
const (
	SubscriptionActive   = "active"
	SubscriptionDisabled = "disabled"
)
