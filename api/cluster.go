package api

import (
	"context"
	"io"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store/model"
)

// Cluster is what the API needs from the node it runs on. The agent
// implements it; tests may too.
type Cluster interface {
	// NodeID is this node's raft server id.
	NodeID() string
	// FSM gives read access to local state and its change notifier.
	FSM() *fsm.FSM
	// Apply replicates a command. It must be called on the leader.
	// Errors: ErrNotLeader, ErrNoLeader, ErrOutcomeUnknown,
	// ErrEntryTooLarge, or a storage failure.
	Apply(ctx context.Context, t fsm.CommandType, meta fsm.Meta, body any) (*fsm.Result, uint64, error)
	// IsLeader reports raft leadership; Ready additionally means the
	// leader finished establishing itself (barrier done, services up).
	IsLeader() bool
	Ready() bool
	// Leader returns the leader's id and API URL ("" when unknown).
	Leader() (id, apiURL string)
	// LastContact is how long since this node heard from the leader
	// (0 on the leader).
	LastContact() time.Duration
	// State is the raft state name (Leader, Follower, Candidate…).
	State() string
	// LastLogIndex is the newest index in this node's raft log.
	LastLogIndex() uint64
	// VerifyLeader confirms with a quorum that this node still leads.
	VerifyLeader(ctx context.Context) error

	// Members lists the raft configuration with each member's health.
	Members(ctx context.Context) ([]*model.Member, error)
	// AddMember adds (or, for a known id and address, keeps) a voter.
	// Leader only.
	AddMember(ctx context.Context, s model.Server) error
	// RemoveMember removes a voter. Leader only.
	RemoveMember(ctx context.Context, id string) error
	// JoinCluster asks the cluster at url to add this node; auth is the
	// caller's Authorization header, passed through.
	JoinCluster(ctx context.Context, url, auth string) error
	// HasState reports whether this node already belongs to a cluster.
	HasState() bool
	// ClusterSecret is the shared secret nodes present when joining ("" if
	// none is configured).
	ClusterSecret() string

	// SnapshotSave streams a backup of the whole state. Leader only.
	SnapshotSave(ctx context.Context, w io.Writer) error
	// SnapshotRestore replaces the whole cluster state with a backup made
	// by SnapshotSave, after verifying all of it. Leader only.
	SnapshotRestore(ctx context.Context, r io.Reader, opts RestoreOptions) (*RestoreResult, error)
}

// callerAuthKey carries the caller's Authorization header in a context.
type callerAuthKey struct{}

// withCallerAuthorization hands the caller's Authorization header to the
// cluster layer: Members passes it on to the members' health checks, which
// list their encryption key checks only to an admin or to a node proving
// the cluster secret (a cluster joined with admin tokens has no secret).
func withCallerAuthorization(c echo.Context) context.Context {
	ctx := c.Request().Context()
	if auth := c.Request().Header.Get(echo.HeaderAuthorization); auth != "" {
		ctx = context.WithValue(ctx, callerAuthKey{}, auth)
	}
	return ctx
}

// CallerAuthorization is the Authorization header of the API caller on
// whose behalf ctx runs ("" when none).
func CallerAuthorization(ctx context.Context) string {
	s, _ := ctx.Value(callerAuthKey{}).(string)
	return s
}

// RestoreOptions modify a restore.
type RestoreOptions struct {
	// ForceLegacy accepts a backup in format version 1, which has no
	// checksum (?force_legacy=true).
	ForceLegacy bool
}

// RestoreResult describes a completed restore.
type RestoreResult struct {
	// Index is the raft index the restored state was taken at.
	Index     uint64 `json:"index"`
	ClusterID string `json:"source_cluster_id"`
	Size      int64  `json:"size"`
}
