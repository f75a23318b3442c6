package model

// Key rotation states.
const (
	// KeyRotationRotating: the leader is re-sealing every value that is
	// not under Target.
	KeyRotationRotating = "rotating"
	// KeyRotationDone: every value is under Target, which is now the
	// cluster's recorded key.
	KeyRotationDone = "done"
)

// KeyRotation is the cluster's encryption key rotation record: the last
// (or current) rotation of the secret store to a new key.
type KeyRotation struct {
	// State is KeyRotationRotating or KeyRotationDone.
	State string `json:"state"`
	// Source is the key check values were sealed under when the rotation
	// started; Target the key check every value ends up under. An abort
	// swaps them.
	Source string `json:"source_key_check"`
	Target string `json:"target_key_check"`
	// Aborted is set when an operator rolled the rotation back (Target is
	// then the original key).
	Aborted bool `json:"aborted,omitempty"`
	// Resealed counts values re-sealed so far (secrets, previous values
	// and run tokens).
	Resealed int64 `json:"resealed"`
	Started  int64 `json:"started"`
	Finished int64 `json:"finished,omitempty"`
	// StartedBy is the actor who started (or aborted) it.
	StartedBy string `json:"started_by,omitempty"`
}

// KeyRotationStatus is the answer of the rotation status route: the
// record plus what is left, counted on the answering node.
type KeyRotationStatus struct {
	// Rotation is nil when the cluster never rotated its key.
	Rotation *KeyRotation `json:"rotation"`
	// KeyCheck is the cluster's recorded key check ("" with no secret
	// ever stored).
	KeyCheck string `json:"key_check"`
	// Remaining counts sealed values not yet under the target key (the
	// recorded key when no rotation runs): secrets, previous values and
	// run tokens.
	Remaining KeyRotationCounts `json:"remaining"`
	// Total counts every sealed value.
	Total KeyRotationCounts `json:"total"`
	// NodeKeyChecks are the key checks the answering node holds, its
	// configured key first.
	NodeKeyChecks []string `json:"node_key_checks"`
}

// KeyRotationCounts counts sealed values by kind.
type KeyRotationCounts struct {
	Secrets         int `json:"secrets"`
	PreviousSecrets int `json:"previous_secrets"`
	RunTokens       int `json:"run_tokens"`
}

// Sum is the number of values counted.
func (c KeyRotationCounts) Sum() int { return c.Secrets + c.PreviousSecrets + c.RunTokens }
