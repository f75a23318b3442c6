package store

import (
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store/seal"
)

// OpenSecretMarker resolves a pipeline_secret{{key}} or
// global_secret{{key}} marker used in namespace ns, pipeline pipeline: the
// secret's value and, when it was replaced, its previous value (callers
// that print may mask both). The executor resolves task variables with it
// and the API subscription settings. kr nil: the node has no
// secret_store.encryption_key. Errors say what to do.
func OpenSecretMarker(tx *bbolt.Tx, kr *seal.Keyring, ns, pipeline, kind, key string) (value, previous []byte, err error) {
	scopeNS, scopePipeline, location, how := ns, pipeline, seal.PipelineLocation(ns, pipeline, key), MarkerFix(ns, pipeline, 0, kind, key)
	switch kind {
	case "pipeline_secret":
	case "global_secret":
		scopeNS, scopePipeline, location = "", "", seal.GlobalLocation(key)
	default:
		return nil, nil, fmt.Errorf("%q is not a secret marker kind", kind)
	}
	s, err := GetSecret(tx, scopeNS, scopePipeline, key)
	if err != nil {
		return nil, nil, err
	}
	if s == nil {
		return nil, nil, fmt.Errorf("%s %q does not exist; store it with `%s`", kind, key, how)
	}
	if kind == "global_secret" && !s.AllowsNamespace(ns) {
		return nil, nil, fmt.Errorf("global secret %q may not be used in namespace %q (it allows %s)", key, ns, strings.Join(s.Namespaces, ", "))
	}
	if kr == nil {
		return nil, nil, fmt.Errorf("%s %q cannot be opened: the leader has no secret_store.encryption_key", kind, key)
	}
	v, err := kr.Open(s.Sealed, location)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %q cannot be opened: %w", kind, key, err)
	}
	if len(s.PreviousSealed) > 0 {
		if prev, err := kr.Open(s.PreviousSealed, location); err == nil {
			previous = prev
		}
	}
	return v, previous, nil
}
