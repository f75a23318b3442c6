package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/goferhq/gofer/store/seal"
)

// devSecretKeyFile holds the key a dev node generated for itself, so its
// secrets survive a restart of `make run`.
const devSecretKeyFile = "dev-secret-key"

// maxRotationBatch caps secret_store.rotation_batch_size, the records one
// re-seal command carries. What keeps a command within a raft entry is the
// worker's bound on its encoded size (rotationBatchBytes); the count only
// bounds the work of a batch of small records.
const maxRotationBatch = 512

// openSecretKeyring builds the keys that seal and open secrets: the
// configured key, then the previous keys a rotation moves values away
// from. Outside dev mode the key must be configured (Validate refuses to
// start without it); a dev node without one generates a key once and
// keeps it in its data dir.
func openSecretKeyring(cfg Config, logger hclog.Logger) (*seal.Keyring, error) {
	key := cfg.Secrets.EncryptionKey
	if key == "" && cfg.Server.Dev {
		var err error
		if key, err = devSecretKey(cfg.Server.DataDir); err != nil {
			return nil, err
		}
		logger.Warn("dev mode: secrets are sealed with a generated key kept in the data dir; set secret_store.encryption_key in production",
			"file", filepath.Join(cfg.Server.DataDir, devSecretKeyFile))
	}
	kr, err := seal.NewKeyring(key, cfg.Secrets.PreviousEncryptionKeys...)
	if err != nil {
		return nil, fmt.Errorf("secret_store.encryption_key: %w", err)
	}
	logger.Info("secret encryption keys", "key_checks", strings.Join(kr.Checks(), ","))
	return kr, nil
}

func devSecretKey(dataDir string) (string, error) {
	path := filepath.Join(dataDir, devSecretKeyFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(raw)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read dev secret key: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	key := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write dev secret key: %w", err)
	}
	return key, nil
}
