package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/goferhq/gofer/store/backup"
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
// its size. It verifies the backup as it downloads (its checksum, size
// and end): an error means what w received must not be kept. The leader
// makes the snapshot before it sends a byte, which may take minutes, so
// WithAnswerTimeout does not apply (the server bounds it at 10 minutes).
func (c *Client) SnapshotSave(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/api/cluster/snapshot", stream: true, unbounded: true}, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	cw := &countingWriter{w: w}
	// A server of the previous format sends version 1, which has no
	// checksum to verify: it is saved as it is.
	if _, err := backup.Read(io.TeeReader(resp.Body, cw), io.Discard, true); err != nil {
		return cw.n, fmt.Errorf("snapshot download failed after %d bytes: %w", cw.n, err)
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// RestoreOptions modify SnapshotRestore.
type RestoreOptions struct {
	// ForceLegacy accepts a backup in format version 1, which has no
	// checksum.
	ForceLegacy bool
}

// RestoreResult describes a completed restore.
type RestoreResult struct {
	Index     uint64 `json:"index"`
	ClusterID string `json:"source_cluster_id"`
	Size      int64  `json:"size"`
}

// SnapshotRestore replaces the whole cluster state with a backup. The
// leader verifies all of it first and refuses a damaged one (400).
func (c *Client) SnapshotRestore(ctx context.Context, r io.Reader, opts ...RestoreOptions) (*RestoreResult, error) {
	var out struct {
		Restore *RestoreResult `json:"restore"`
	}
	q := url.Values{}
	if len(opts) > 0 && opts[0].ForceLegacy {
		q.Set("force_legacy", "true")
	}
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/cluster/snapshot", query: q, rawBody: r}, &out)
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
