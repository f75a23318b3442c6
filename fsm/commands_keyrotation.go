package fsm

// Encryption key rotation commands. The leader opens and re-seals values
// (store/seal) and puts the new ciphertexts into the commands; the FSM
// only swaps bytes it is given, so it stays deterministic.

// KeyRotationStart starts a rotation of every sealed value to Target, or
// with Abort rolls the running rotation back to its source key.
type KeyRotationStart struct {
	// Source is the cluster's recorded key check as the leader saw it;
	// the applier refuses the start when it changed meanwhile.
	Source string `json:"source_key_check"`
	// Target is the key check of the leader's configured key (ignored
	// with Abort, whose target is the running rotation's source).
	Target string `json:"target_key_check,omitempty"`
	Abort  bool   `json:"abort,omitempty"`
	// RollbackTo, with Abort, is the key check the leader saw the abort
	// end under: the running rotation's source, or its target when that
	// rotation is already an abort. The applier does nothing when the
	// rotation already runs (or ran) back to it and refuses any other
	// rotation, so an abort sent twice never turns the rollback into a
	// rotation to the new key again. Empty only in entries written
	// before the field existed (they swap whatever runs).
	RollbackTo string `json:"rollback_to_key_check,omitempty"`
}

// SecretsReseal replaces sealed values with the same plaintexts sealed
// under the rotation's target key.
type SecretsReseal struct {
	// Target must be the running rotation's target.
	Target string       `json:"target_key_check"`
	Items  []ResealItem `json:"items"`
}

// ResealItem is one record's new ciphertexts. Was and PreviousWas are
// the seal.Digest of the values the leader opened; an item whose record
// changed since (a concurrent put or delete) is skipped, never clobbered.
type ResealItem struct {
	// Kind is store.SealedSecret or store.SealedRunToken.
	Kind        string `json:"kind"`
	NamespaceID string `json:"namespace_id,omitempty"`
	PipelineID  string `json:"pipeline_id,omitempty"`
	Key         string `json:"key,omitempty"`
	TokenID     string `json:"token_id,omitempty"`
	Was         string `json:"was"`
	// Sealed is the value re-sealed; empty leaves the value as it is
	// (it was already under the target).
	Sealed      []byte `json:"sealed,omitempty"`
	PreviousWas string `json:"previous_was,omitempty"`
	// PreviousSealed is a secret's replaced value re-sealed; empty leaves
	// it as it is.
	PreviousSealed []byte `json:"previous_sealed,omitempty"`
}

// ResealResult says how many values an SecretsReseal replaced and how many
// items it skipped because their record changed.
type ResealResult struct {
	Resealed int `json:"resealed"`
	Skipped  int `json:"skipped"`
}

// KeyRotationFinish ends the rotation to Target once no value is left
// under another key; the cluster's recorded key check becomes Target.
type KeyRotationFinish struct {
	Target string `json:"target_key_check"`
}
