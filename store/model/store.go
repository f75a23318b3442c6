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
	// Secret is the plaintext, set only in a response to a request with
	// include_secret=true.
	Secret string `json:"secret,omitempty"`
}

// StoredSecret is a secret as state holds it: metadata plus the sealed
// value (nonce ++ ciphertext).
type StoredSecret struct {
	Secret
	Sealed []byte `json:"sealed"`
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
