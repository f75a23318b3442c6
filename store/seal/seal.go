// Package seal encrypts secret values before they enter the raft log, so
// no plaintext reaches the log, snapshots or the state file (docs/secrets-and-objects.md).
//
// A Box seals with AES-256-GCM under a key derived from the operator's
// secret_store.encryption_key. Each value gets a fresh random nonce and
// is bound to where it lives (namespace, pipeline, key) as additional
// authenticated data, so a sealed value copied to another secret's slot
// does not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MinKeyLength is the shortest encryption key accepted, in bytes.
const MinKeyLength = 32

// ErrKeyMismatch means a value was sealed under another key, or its
// location (the additional data) differs from the one it was sealed for.
var ErrKeyMismatch = errors.New("the secret cannot be opened with this node's encryption key")

// wellKnownKeys are keys that appear in documentation and upstream
// samples. Anyone can read them, so they protect nothing.
var wellKnownKeys = []string{
	"changemechangemechangemechangeme",
	"changeme",
	"0123456789abcdef0123456789abcdef",
	"00000000000000000000000000000000",
	"example-key-replace-me-example-key-replace-me",
}

// CheckKey refuses a key that is too short or well known.
func CheckKey(key string) error {
	if len(key) < MinKeyLength {
		return fmt.Errorf("secret_store.encryption_key must be at least %d characters (got %d); generate one with `openssl rand -hex 32`", MinKeyLength, len(key))
	}
	lower := strings.ToLower(key)
	for _, k := range wellKnownKeys {
		if lower == k {
			return fmt.Errorf("secret_store.encryption_key is a well-known sample key; generate your own with `openssl rand -hex 32`")
		}
	}
	if strings.Count(key, key[:1]) == len(key) {
		return fmt.Errorf("secret_store.encryption_key repeats one character; generate one with `openssl rand -hex 32`")
	}
	return nil
}

// Box seals and opens secret values under one key.
type Box struct {
	aead  cipher.AEAD
	check string
}

// New derives the AES-256 key from key (SHA-256 of it, so any key of at
// least MinKeyLength characters, hex or not, gives a full-strength key).
func New(key string) (*Box, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	k := sha256.Sum256([]byte(key))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, k[:])
	mac.Write([]byte("gofer secret key check v1"))
	return &Box{aead: aead, check: hex.EncodeToString(mac.Sum(nil))[:16]}, nil
}

// KeyCheck identifies the key. The cluster records the check of the key
// its secrets were sealed with, so a node configured with a different key
// is told so instead of failing to open them later. It does not reveal a
// random key, but it is a fast hash: whoever holds it can test guesses of
// a weak (passphrase-like) key offline, so nodes show it only to each
// other and to admins, never in the anonymous health answer.
func (b *Box) KeyCheck() string { return b.check }

// Seal encrypts plaintext for location: nonce ++ ciphertext ++ tag.
func (b *Box) Seal(plaintext []byte, location string) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return b.aead.Seal(nonce, nonce, plaintext, []byte(location)), nil
}

// Open decrypts a value sealed for location.
func (b *Box) Open(sealed []byte, location string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, fmt.Errorf("sealed value is truncated (%d bytes)", len(sealed))
	}
	out, err := b.aead.Open(nil, sealed[:n], sealed[n:], []byte(location))
	if err != nil {
		return nil, ErrKeyMismatch
	}
	return out, nil
}

// PipelineLocation is the additional data of a pipeline secret.
func PipelineLocation(namespace, pipeline, key string) string {
	return "pipeline|" + namespace + "|" + pipeline + "|" + key
}

// GlobalLocation is the additional data of a global secret.
func GlobalLocation(key string) string { return "global|" + key }

// RunTokenLocation is the additional data of a run's sealed API token.
func RunTokenLocation(tokenID string) string { return "run_token|" + tokenID }

// ExtensionRegistryLocation is the additional data of an extension's
// sealed registry password.
func ExtensionRegistryLocation(extension string) string { return "extension_registry|" + extension }
