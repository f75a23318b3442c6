package api

import (
	"crypto/subtle"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// health answers load balancers: 200 when this node knows a leader (it can
// serve reads and forward writes), 503 otherwise. No auth, no version
// header, and no key material: the key checks of this node's encryption
// keys are listed only to a caller proving the cluster secret or
// presenting an admin token (mayReadKeyChecks).
func (s *Server) health(c echo.Context) error {
	leaderID, _ := s.cluster.Leader()
	h := model.Health{
		NodeID:       s.cluster.NodeID(),
		State:        s.cluster.State(),
		Leader:       leaderID,
		KnownLeader:  leaderID != "",
		AppliedIndex: s.cluster.FSM().AppliedIndex(),
		LastLogIndex: s.cluster.LastLogIndex(),
		LastContact:  s.cluster.LastContact().Milliseconds(),
		Version:      s.opts.Metadata.Semver,
		LogStore:     s.opts.LogStore,
	}
	if s.opts.Secrets != nil && s.mayReadKeyChecks(c) {
		h.KeyChecks = s.opts.Secrets.Checks()
	}
	// Load balancers poll this often; committed state is fresh enough.
	_ = s.cluster.FSM().ViewCommitted(func(tx *bbolt.Tx) error {
		h.ClusterID = store.ClusterID(tx)
		return nil
	})
	status := http.StatusOK
	if !h.KnownLeader {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, h)
}

// mayReadKeyChecks says whether the health caller may see this node's key
// checks: another node of the cluster (the cluster secret, compared in
// constant time) or an admin. A key check is a fast keyed hash of the key,
// so anyone holding one can test guesses of a weak key offline, and two
// clusters sharing a key would show it; anonymous callers get neither.
func (s *Server) mayReadKeyChecks(c echo.Context) bool {
	req := c.Request()
	if got := req.Header.Get(HeaderClusterSecret); got != "" {
		want := s.cluster.ClusterSecret()
		return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	}
	if req.Header.Get(echo.HeaderAuthorization) == "" {
		return false
	}
	id, err := s.authenticate(c, access{})
	return err == nil && s.authz.isAdmin(id, model.ActionRead)
}

// metadata answers {semver, commit} unwrapped, as upstream does.
func (s *Server) metadata(c echo.Context) error {
	return c.JSON(http.StatusOK, s.opts.Metadata)
}

func (s *Server) getSystem(c echo.Context) error {
	var sys *model.System
	if err := s.view(func(tx *bbolt.Tx) (err error) {
		sys, err = store.GetSystem(tx)
		return err
	}); err != nil {
		return err
	}
	// Upstream answers the preferences unwrapped.
	return c.JSON(http.StatusOK, sys)
}

type updateSystemRequest struct {
	IgnorePipelineRunEvents *bool `json:"ignore_pipeline_run_events"`
}

// updateSystem flips the event-ingress toggle.
func (s *Server) updateSystem(c echo.Context) error {
	var req updateSystemRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.IgnorePipelineRunEvents == nil {
		return badRequest("nothing to update: set ignore_pipeline_run_events")
	}
	sys, err := applyAs[model.System](s, c, fsm.CmdSystemUpdate, fsm.SystemUpdate{IgnorePipelineRunEvents: req.IgnorePipelineRunEvents})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sys)
}
