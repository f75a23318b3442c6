package fsm

// Secret and object store commands. Secret values arrive sealed (the
// leader encrypted them before apply); the FSM never sees plaintext.

// SecretPut stores a pipeline secret, or a global secret when NamespaceID
// and PipelineID are empty.
type SecretPut struct {
	NamespaceID string `json:"namespace_id,omitempty"`
	PipelineID  string `json:"pipeline_id,omitempty"`
	Key         string `json:"key"`
	// Sealed is nonce ++ AES-256-GCM ciphertext (store/seal).
	Sealed []byte `json:"sealed"`
	// Namespaces (global secrets) are the regular expressions of the
	// namespaces allowed to use it.
	Namespaces []string `json:"namespaces,omitempty"`
	// Force replaces an existing secret; without it a second put of a key
	// is a conflict.
	Force bool `json:"force,omitempty"`
	// KeyCheck identifies the key that sealed the value; every secret of
	// a cluster must be sealed with the same key.
	KeyCheck string `json:"key_check"`
}

// SecretRef names a pipeline secret, or a global one (no namespace).
type SecretRef struct {
	NamespaceID string `json:"namespace_id,omitempty"`
	PipelineID  string `json:"pipeline_id,omitempty"`
	Key         string `json:"key"`
}

// ObjectPut stores a pipeline object (RunID 0) or a run object.
type ObjectPut struct {
	ObjectRef
	Data  []byte `json:"data"`
	Force bool   `json:"force,omitempty"`
	// PipelineLimit caps a pipeline's object count; storing a new key at
	// the cap evicts the oldest object. 0: no cap. It travels in the
	// command so every node evicts alike.
	PipelineLimit int `json:"pipeline_limit,omitempty"`
	// RunLimit caps a run's object count; a new key past it is refused.
	// 0: no cap.
	RunLimit int `json:"run_limit,omitempty"`
}

// ObjectRef names a pipeline object (RunID 0) or a run object.
type ObjectRef struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	RunID       int64  `json:"run_id,omitempty"`
	Key         string `json:"key"`
}

// RunObjectsExpire deletes the objects of complete runs after the
// pipeline's previous expiry point, up to Through.
type RunObjectsExpire struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	Through     int64  `json:"through"`
}
