package fsm

import "github.com/goferhq/gofer/store/model"

// ExtensionInstall registers an extension (or replaces its registration),
// with its auto role and a fresh token made on the leader. A reinstall
// deletes the previous token in the same entry: the secret rotates.
type ExtensionInstall struct {
	Extension model.Extension   `json:"extension"`
	Token     model.StoredToken `json:"token"`
}

// ExtensionSetState records what the supervisor observed of the
// container it runs for the extension's token TokenID. It is refused
// (ErrConflict) when the extension was reinstalled since (another token):
// an observation of the replaced container must not overwrite the new
// one's.
type ExtensionSetState struct {
	ID      string                 `json:"id"`
	TokenID string                 `json:"token_id"`
	Runtime model.ExtensionRuntime `json:"runtime"`
}

// ExtensionStdInstall installs the standard extensions once per cluster:
// each install whose id is free is applied, and the cluster is marked so
// that no later leader does it again. A second command is a no-op.
type ExtensionStdInstall struct {
	Installs []ExtensionInstall `json:"installs"`
}

// ExtensionSetStatus enables or disables an extension.
type ExtensionSetStatus struct {
	ID      string `json:"id"`
	Enabled bool   `json:"enabled"`
}

// ExtensionDelete uninstalls an extension: its registration, role, token
// and every subscription to it.
type ExtensionDelete struct {
	ID string `json:"id"`
}

// SubscriptionRef names a pipeline subscription.
type SubscriptionRef struct {
	NamespaceID    string `json:"namespace_id"`
	PipelineID     string `json:"pipeline_id"`
	ExtensionID    string `json:"extension_id"`
	SubscriptionID string `json:"subscription_id"`
}

// SubscriptionCreate subscribes a pipeline to an extension.
type SubscriptionCreate struct {
	SubscriptionRef
	Settings map[string]string `json:"settings"`
}

// SubscriptionSetStatus sets a subscription active or disabled.
type SubscriptionSetStatus struct {
	SubscriptionRef
	Status string `json:"status"`
}

// SubscriptionDelete removes a subscription.
type SubscriptionDelete struct {
	SubscriptionRef
}

// MaxSkippedTicks bounds the ticks one TriggerSkip lists: each becomes an
// event, so a client with more splits them over several commands (the SDK's
// RecordSkippedTicks does).
const MaxSkippedTicks = 500

// MaxSkipReason bounds TriggerSkip.Reason.
const MaxSkipReason = 256

// TriggerSkip records ticks of a subscription that its extension decided
// not to fire under the subscription's catch-up policy: one event per tick
// not yet decided (after the watermark), and the watermark moves to the
// latest of them. Ticks at or before the watermark are ignored, so a
// retried command records nothing twice.
type TriggerSkip struct {
	SubscriptionRef
	// Ticks are the skipped ticks' scheduled times, unix seconds.
	Ticks []int64 `json:"ticks"`
	// Through, when set, says further ticks after the listed ones, up to
	// and including this unix second, were skipped too without being
	// listed (a very long outage); they become one range event.
	Through int64  `json:"through,omitempty"`
	Reason  string `json:"reason"`
}

// TriggerSkipped is TriggerSkip's result.
type TriggerSkipped struct {
	// Recorded is how many skip events the command wrote.
	Recorded int `json:"recorded"`
	// Watermark is the subscription's watermark afterwards (epoch ms).
	Watermark int64 `json:"watermark"`
}
