package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// Secret limits.
const (
	maxSecretBytes      = 64 << 10
	maxSecretNamespaces = 32
	maxNamespacePattern = 256
)

type putPipelineSecretRequest struct {
	Key     string `json:"key"`
	Content string `json:"content"`
	Force   bool   `json:"force"`
}

type putGlobalSecretRequest struct {
	Key        string   `json:"key"`
	Content    string   `json:"content"`
	Namespaces []string `json:"namespaces"`
	Force      bool     `json:"force"`
}

// secretScope is where a secret route points: a pipeline, or global
// (empty namespace and pipeline).
type secretScope struct{ ns, pipeline string }

func pipelineScope(c echo.Context) (secretScope, error) {
	sc := secretScope{ns: c.Param("ns"), pipeline: c.Param("pipeline")}
	if err := validID("namespace id", sc.ns); err != nil {
		return sc, err
	}
	return sc, validID("pipeline id", sc.pipeline)
}

func (sc secretScope) location(key string) string {
	if sc.ns == "" {
		return seal.GlobalLocation(key)
	}
	return seal.PipelineLocation(sc.ns, sc.pipeline, key)
}

// keyring is this node's secret keys, or a clear error when it has none.
func (s *Server) keyring() (*seal.Keyring, error) {
	if s.opts.Secrets == nil {
		return nil, conflict("this node has no secret_store.encryption_key, so it cannot seal or open secrets; set the same key on every node")
	}
	return s.opts.Secrets, nil
}

func (s *Server) listPipelineSecrets(c echo.Context) error {
	sc, err := pipelineScope(c)
	if err != nil {
		return err
	}
	return s.listSecrets(c, sc)
}

func (s *Server) listGlobalSecrets(c echo.Context) error { return s.listSecrets(c, secretScope{}) }

func (s *Server) listSecrets(c echo.Context, sc secretScope) error {
	return respondList(s, c, "secrets", func(tx *bbolt.Tx, page store.Page) ([]secretView, error) {
		stored, err := store.ListSecrets(tx, sc.ns, sc.pipeline, page)
		out := make([]secretView, len(stored))
		for i, st := range stored {
			out[i] = viewSecret(&st.Secret)
		}
		return out, err
	})
}

func (s *Server) getPipelineSecret(c echo.Context) error {
	sc, err := pipelineScope(c)
	if err != nil {
		return err
	}
	return s.getSecret(c, sc)
}

func (s *Server) getGlobalSecret(c echo.Context) error { return s.getSecret(c, secretScope{}) }

// getSecret answers a secret's metadata, and its plaintext only when the
// caller asks with include_secret=true.
func (s *Server) getSecret(c echo.Context, sc secretScope) error {
	key, err := keyParam(c)
	if err != nil {
		return err
	}
	include, err := boolQuery(c, "include_secret")
	if err != nil {
		return err
	}
	var st *model.StoredSecret
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		st, err = store.GetSecret(tx, sc.ns, sc.pipeline, key)
		return err
	}); err != nil {
		return err
	}
	if st == nil {
		return notFound("%s does not exist", describeSecret(sc, key))
	}
	out := secretValueView{Metadata: viewSecret(&st.Secret)}
	if include {
		kr, err := s.keyring()
		if err != nil {
			return err
		}
		plain, err := kr.Open(st.Sealed, sc.location(key))
		if errors.Is(err, seal.ErrKeyMismatch) {
			return newError(http.StatusInternalServerError, CodeInternal,
				"%s cannot be opened: none of this node's keys (secret_store.encryption_key, secret_store.previous_encryption_keys) is the key it was sealed with; every node needs the same key", describeSecret(sc, key))
		}
		if err != nil {
			return err
		}
		v := string(plain)
		out.Secret = &v
	}
	return c.JSON(http.StatusOK, out)
}

func describeSecret(sc secretScope, key string) string {
	if sc.ns == "" {
		return "global secret " + strconv.Quote(key)
	}
	return "secret " + strconv.Quote(key) + " of pipeline " + sc.ns + "/" + sc.pipeline
}

func (s *Server) putPipelineSecret(c echo.Context) error {
	sc, err := pipelineScope(c)
	if err != nil {
		return err
	}
	var req putPipelineSecretRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	return s.putSecret(c, sc, req.Key, req.Content, nil, req.Force)
}

func (s *Server) putGlobalSecret(c echo.Context) error {
	var req putGlobalSecretRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Namespaces) == 0 {
		return badRequest(`namespaces: give at least one regular expression of the namespaces that may use the secret (".*" allows all)`)
	}
	if len(req.Namespaces) > maxSecretNamespaces {
		return badRequest("namespaces: at most %d expressions, got %d", maxSecretNamespaces, len(req.Namespaces))
	}
	for i, re := range req.Namespaces {
		if len(re) > maxNamespacePattern {
			return badRequest("namespaces[%d]: at most %d characters, got %d", i, maxNamespacePattern, len(re))
		}
		if _, err := model.CompileNamespacePattern(re); err != nil {
			return badRequest("namespaces[%d]: %q is not a valid regular expression: %s", i, re, err)
		}
	}
	return s.putSecret(c, secretScope{}, req.Key, req.Content, req.Namespaces, req.Force)
}

// putSecret seals the value here, on the leader, so only ciphertext
// enters the raft log.
func (s *Server) putSecret(c echo.Context, sc secretScope, key, content string, namespaces []string, force bool) error {
	if err := validID("key", key); err != nil {
		return err
	}
	if content == "" {
		return badRequest("content: the secret value is empty")
	}
	if len(content) > maxSecretBytes {
		return tooLarge("content: a secret may be at most %d bytes, got %d", maxSecretBytes, len(content))
	}
	box, err := s.sealingBox()
	if err != nil {
		return err
	}
	sealed, err := box.Seal([]byte(content), sc.location(key))
	if err != nil {
		return err
	}
	sec, err := applyAs[model.Secret](s, c, fsm.CmdSecretPut, fsm.SecretPut{NamespaceID: sc.ns, PipelineID: sc.pipeline, Key: key,
		Sealed: sealed, Namespaces: namespaces, Force: force, KeyCheck: box.KeyCheck()})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, wrap("secret", viewSecret(sec)))
}

func (s *Server) deletePipelineSecret(c echo.Context) error {
	sc, err := pipelineScope(c)
	if err != nil {
		return err
	}
	return s.deleteSecret(c, sc)
}

func (s *Server) deleteGlobalSecret(c echo.Context) error { return s.deleteSecret(c, secretScope{}) }

func (s *Server) deleteSecret(c echo.Context, sc secretScope) error {
	key, err := keyParam(c)
	if err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdSecretDelete, fsm.SecretRef{NamespaceID: sc.ns, PipelineID: sc.pipeline, Key: key}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// secretView is a secret's metadata as upstream serves it: namespaces is
// always a list (empty for a pipeline secret), never absent.
type secretView struct {
	*model.Secret
	Namespaces []string `json:"namespaces"`
}

func viewSecret(sec *model.Secret) secretView {
	ns := sec.Namespaces
	if ns == nil {
		ns = []string{}
	}
	return secretView{Secret: sec, Namespaces: ns}
}

// secretValueView is model.SecretValue with the metadata as upstream
// serves it.
type secretValueView struct {
	Metadata secretView `json:"metadata"`
	Secret   *string    `json:"secret"`
}
