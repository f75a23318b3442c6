package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/goferhq/gofer/store/model"
)

// Members lists the cluster's members with their health.
func (c *Client) Members(ctx context.Context) ([]*model.Member, error) {
	var out struct {
		Members []*model.Member `json:"members"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/cluster/members"}, &out)
	return out.Members, err
}

// Join asks the node this client talks to (the first node) to join the
// cluster reachable at address. The client's token is passed on to that
// cluster, which must accept it as an admin token.
func (c *Client) Join(ctx context.Context, address string) error {
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/cluster/join", body: map[string]string{"address": address}}, nil)
	return err
}

// RemoveMember removes a node from the cluster.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/cluster/members/" + seg(id)}, nil)
	return err
}

// SnapshotSave writes a backup of the whole cluster state to w and returns
// its size.
func (c *Client) SnapshotSave(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/api/cluster/snapshot", stream: true}, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("snapshot download interrupted after %d bytes: %w", n, err)
	}
	return n, nil
}

// RestoreResult describes a completed restore.
type RestoreResult struct {
	Index     uint64 `json:"index"`
	ClusterID string `json:"source_cluster_id"`
	Size      int64  `json:"size"`
}

// SnapshotRestore replaces the whole cluster state with a backup.
func (c *Client) SnapshotRestore(ctx context.Context, r io.Reader) (*RestoreResult, error) {
	var out struct {
		Restore *RestoreResult `json:"restore"`
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/cluster/snapshot", rawBody: r}, &out)
	return out.Restore, err
}

// RotateEncryptionKey starts re-sealing every secret under the leader's
// configured encryption key, or with abort rolls the running rotation
// back to the key it started from.
func (c *Client) RotateEncryptionKey(ctx context.Context, abort bool) (*model.KeyRotationStatus, error) {
	var out model.KeyRotationStatus
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/system/encryption-key/rotate", body: map[string]bool{"abort": abort}}, &out)
	return &out, err
}

// EncryptionKeyRotation reports the rotation's state and what is left to
// re-seal, as the answering node sees it.
func (c *Client) EncryptionKeyRotation(ctx context.Context) (*model.KeyRotationStatus, error) {
	var out model.KeyRotationStatus
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/system/encryption-key/rotation"}, &out)
	return &out, err
}
