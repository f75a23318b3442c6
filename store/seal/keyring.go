package seal

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrUnknownKey means the keyring holds no key with the asked check.
var ErrUnknownKey = errors.New("this node holds no encryption key with that key check")

// Keyring is a node's set of encryption keys: the configured key first
// (the one a rotation targets), then the previous keys that values may
// still be sealed under while a rotation re-seals them. Values are opened
// with whichever key fits (GCM authentication says which); sealing always
// names the key, chosen by the cluster's state (fsm/DESIGN.md, "Key rotation").
type Keyring struct {
	boxes []*Box
}

// NewKeyring builds a keyring from the configured key and the previous
// keys, in that order. Duplicates are dropped.
func NewKeyring(primary string, previous ...string) (*Keyring, error) {
	kr := &Keyring{}
	for i, k := range append([]string{primary}, previous...) {
		b, err := New(k)
		if err != nil {
			if i == 0 {
				return nil, err
			}
			return nil, fmt.Errorf("previous key %d: %w", i, err)
		}
		if kr.ForCheck(b.KeyCheck()) == nil {
			kr.boxes = append(kr.boxes, b)
		}
	}
	return kr, nil
}

// Primary is the configured key's box.
func (kr *Keyring) Primary() *Box { return kr.boxes[0] }

// Checks lists the key checks of every key held, primary first.
func (kr *Keyring) Checks() []string {
	out := make([]string, len(kr.boxes))
	for i, b := range kr.boxes {
		out[i] = b.KeyCheck()
	}
	return out
}

// ForCheck returns the box of the key with that check, or nil.
func (kr *Keyring) ForCheck(check string) *Box {
	for _, b := range kr.boxes {
		if b.KeyCheck() == check {
			return b
		}
	}
	return nil
}

// Has says whether the keyring holds the key with that check.
func (kr *Keyring) Has(check string) bool { return kr.ForCheck(check) != nil }

// Open decrypts a value sealed for location under any key held, trying
// the primary key first. ErrKeyMismatch when none opens it.
func (kr *Keyring) Open(sealed []byte, location string) ([]byte, error) {
	out, _, err := kr.OpenCheck(sealed, location)
	return out, err
}

// OpenCheck is Open that also says which key opened the value.
func (kr *Keyring) OpenCheck(sealed []byte, location string) ([]byte, string, error) {
	var last error = ErrKeyMismatch
	for _, b := range kr.boxes {
		out, err := b.Open(sealed, location)
		if err == nil {
			return out, b.KeyCheck(), nil
		}
		last = err
	}
	return nil, "", last
}

// Digest identifies a sealed value (hex SHA-256, truncated). A re-seal
// carries the digest of the value it replaces so the state machine can
// refuse it when the value changed meanwhile (compare-and-swap) without
// the command carrying the old ciphertext. The empty value's digest is "".
func Digest(sealed []byte) string {
	if len(sealed) == 0 {
		return ""
	}
	sum := sha256.Sum256(sealed)
	return hex.EncodeToString(sum[:16])
}
