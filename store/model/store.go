package model

import "regexp"

// Secret is a stored secret's metadata. Its value is kept sealed
// (AES-256-GCM) and never leaves the API unless include_secret=true.
type Secret struct {
	// NamespaceID and PipelineID are empty for a global secret.
	NamespaceID string `json:"namespace_id,omitempty"`
	PipelineID  string `json:"pipeline_id,omitempty"`
	Key         string `json:"key"`
	// Namespaces (global secrets only) are the regular expressions of the
	// namespaces whose runs may use the secret.
	Namespaces []string `json:"namespaces,omitempty"`
	Created    int64    `json:"created"`
	Modified   int64    `json:"modified"`
}

// SecretValue is the answer to reading one secret, in upstream's shape:
// the metadata, and the plaintext only when include_secret=true (null
// otherwise).
type SecretValue struct {
	Metadata *Secret `json:"metadata"`
	Secret   *string `json:"secret"`
}

// StoredSecret is a secret as state holds it: metadata plus the sealed
// value (nonce ++ ciphertext).
type StoredSecret struct {
	Secret
	Sealed []byte `json:"sealed"`
	// PreviousSealed is the value this one replaced, kept so a task
	// started with it still has it masked in its log.
	PreviousSealed []byte `json:"previous_sealed,omitempty"`
	// KeyCheck and PreviousKeyCheck name the keys (seal.Box.KeyCheck)
	// that sealed Sealed and PreviousSealed. Empty on records written
	// before key rotation existed: those are under the cluster's recorded
	// key (store.SecretKeyCheck).
	KeyCheck         string `json:"key_check,omitempty"`
	PreviousKeyCheck string `json:"previous_key_check,omitempty"`
}

// Object is a stored object's metadata; its bytes are served raw.
type Object struct {
	NamespaceID string `json:"namespace_id"`
	PipelineID  string `json:"pipeline_id"`
	// RunID is 0 for a pipeline object.
	RunID   int64  `json:"run_id,omitempty"`
	Key     string `json:"key"`
	Size    int64  `json:"size"`
	Created int64  `json:"created"`
}

// CompileNamespacePattern compiles one of a global secret's namespace
// expressions. It must match the whole namespace id: "prod" allows
// namespace "prod", not "preprod".
func CompileNamespacePattern(expr string) (*regexp.Regexp, error) {
	// On its own first: "prod)|(.*" would otherwise escape the anchors.
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

// AllowsNamespace says whether a global secret may be used by runs of
// namespace ns.
func (s *Secret) AllowsNamespace(ns string) bool {
	for _, expr := range s.Namespaces {
		if re, err := CompileNamespacePattern(expr); err == nil && re.MatchString(ns) {
			return true
		}
	}
	return false
}
