package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
	"github.com/goferhq/gofer/store/seal"
)

// maxRotateBody bounds the rotate request ({"abort": true} and little
// else).
const maxRotateBody = 1 << 10

// activeKeyCheck is the key new values are sealed under: the running
// rotation's target, else the cluster's recorded key ("" when no value
// was ever sealed: the node's configured key then).
func activeKeyCheck(tx *bbolt.Tx) (string, error) {
	rot, err := store.GetKeyRotation(tx)
	if err != nil {
		return "", err
	}
	if rot != nil && rot.State == model.KeyRotationRotating {
		return rot.Target, nil
	}
	return store.SecretKeyCheck(tx), nil
}

// sealingBox picks the key this leader seals a new value with. Operators
// roll a new key out as every node's configured key (the old one kept in
// previous_encryption_keys) before they rotate, so the configured key is
// not necessarily the cluster's: values stay under the cluster's key
// until the rotation moves them.
func (s *Server) sealingBox() (*seal.Box, error) {
	kr, err := s.keyring()
	if err != nil {
		return nil, err
	}
	var active string
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		active, err = activeKeyCheck(tx)
		return err
	}); err != nil {
		return nil, err
	}
	if active == "" {
		return kr.Primary(), nil
	}
	if b := kr.ForCheck(active); b != nil {
		return b, nil
	}
	return nil, conflict("the leader's secret_store.encryption_key is not the key this cluster's secrets are sealed with (key check %s); "+
		"every node needs the same key (or the old one in secret_store.previous_encryption_keys while rotating)", active)
}

type rotateKeyRequest struct {
	// Abort rolls the running rotation back to the key it started from.
	Abort bool `json:"abort"`
}

// rotateEncryptionKey starts re-sealing every secret under this leader's
// configured key, or with abort rolls the running rotation back. It
// checks first that this leader and every voter hold both keys, so no
// node is left unable to open a value mid-way.
func (s *Server) rotateEncryptionKey(c echo.Context) error {
	var req rotateKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	kr, err := s.keyring()
	if err != nil {
		return err
	}
	var recorded string
	var rot *model.KeyRotation
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		recorded = store.SecretKeyCheck(tx)
		rot, err = store.GetKeyRotation(tx)
		return err
	}); err != nil {
		return err
	}
	cmd := fsm.KeyRotationStart{Source: recorded, Abort: req.Abort}
	var need []string
	switch {
	case req.Abort && rot != nil && rot.Aborted && rot.State == model.KeyRotationDone:
		// An abort sent again after the rollback finished (the first
		// answer was lost, say): nothing left to do.
		return s.answerRotation(c)
	case req.Abort:
		if rot == nil || rot.State != model.KeyRotationRotating {
			return conflict("no encryption key rotation is running, so there is none to abort")
		}
		need = []string{rot.Source, rot.Target}
		// What the abort ends under, as this leader sees it: the applier
		// refuses any other rotation and treats a rollback already
		// running to it as done, so a repeated abort stays a rollback.
		cmd.RollbackTo = rot.Source
		if rot.Aborted {
			cmd.RollbackTo = rot.Target
		}
	default:
		cmd.Target = kr.Primary().KeyCheck()
		need = []string{cmd.Target}
		if recorded != "" {
			need = append(need, recorded)
		}
	}
	for _, check := range need {
		if check != "" && !kr.Has(check) {
			return conflict("this leader does not hold the encryption key with key check %s; configure it (secret_store.encryption_key "+
				"or secret_store.previous_encryption_keys) on every node, restart them one by one, then try again", check)
		}
	}
	if err := s.checkMembersHoldKeys(c, cmd.Target, need); err != nil {
		return err
	}
	if _, err := s.apply(c, fsm.CmdKeyRotationStart, cmd); err != nil {
		return err
	}
	return s.answerRotation(c)
}

// answerRotation answers a rotate request with the rotation's status.
func (s *Server) answerRotation(c echo.Context) error {
	st, err := s.rotationStatus()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, st)
}

// checkMembersHoldKeys asks every voter (its health answer lists the key
// checks it holds, its configured key first, to this leader proving the
// cluster secret or passing on the admin caller's token) and refuses when one is
// unreachable or lacks a key, or, when target is set, is configured with
// another key than the leader (the rollout is not finished: the rotation
// would target whichever node happens to lead).
func (s *Server) checkMembersHoldKeys(c echo.Context, target string, need []string) error {
	members, err := s.cluster.Members(withCallerAuthorization(c))
	if err != nil {
		return err
	}
	var problems []string
	for _, m := range members {
		if !m.Voter {
			continue
		}
		if !m.Reachable {
			problems = append(problems, m.ID+" is not reachable")
			continue
		}
		if len(m.KeyChecks) == 0 {
			problems = append(problems, m.ID+" did not say which keys it holds (its health check lists them only to an admin "+
				"or to a node with the same cluster.secret)")
			continue
		}
		if target != "" && m.KeyChecks[0] != target {
			problems = append(problems, m.ID+" is configured with key "+m.KeyChecks[0]+", the leader with "+target)
		}
		for _, check := range need {
			if check != "" && !slices.Contains(m.KeyChecks, check) {
				problems = append(problems, m.ID+" does not hold key "+check)
			}
		}
	}
	if len(problems) > 0 {
		return conflict("every voter must hold the keys before a rotation (or its abort) starts: %s; "+
			"configure the keys on every node and restart them one by one", strings.Join(problems, "; "))
	}
	return nil
}

// getEncryptionKeyRotation answers the rotation's state and what is left
// to re-seal, as this node's state has it.
func (s *Server) getEncryptionKeyRotation(c echo.Context) error {
	st, err := s.rotationStatus()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (s *Server) rotationStatus() (*model.KeyRotationStatus, error) {
	st := &model.KeyRotationStatus{NodeKeyChecks: []string{}}
	if s.opts.Secrets != nil {
		st.NodeKeyChecks = s.opts.Secrets.Checks()
	}
	err := s.view(func(tx *bbolt.Tx) (err error) {
		if st.Rotation, err = store.GetKeyRotation(tx); err != nil {
			return err
		}
		st.KeyCheck = store.SecretKeyCheck(tx)
		target := st.KeyCheck
		if st.Rotation != nil && st.Rotation.State == model.KeyRotationRotating {
			target = st.Rotation.Target
		}
		st.Remaining, st.Total, err = store.CountSealed(tx, target)
		return err
	})
	return st, err
}
