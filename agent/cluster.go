package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/api"
	"github.com/goferhq/gofer/fsm"
	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// Members implements api.Cluster: the raft configuration joined with the
// recorded API addresses and each member's own view of its health.
func (a *Agent) Members(ctx context.Context) ([]*model.Member, error) {
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	_, leaderID := a.raft.LeaderWithID()
	servers := f.Configuration().Servers
	members := make([]*model.Member, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		m := &model.Member{
			ID:          string(s.ID),
			RaftAddr:    string(s.Address),
			Voter:       s.Suffrage == raft.Voter,
			Leader:      s.ID == leaderID,
			LastContact: -1,
		}
		members[i] = m
		_ = a.fsm.View(func(tx *bbolt.Tx) error {
			if rec, err := store.GetServer(tx, m.ID); err == nil && rec != nil {
				m.APIAddr, m.Version = rec.APIAddr, rec.Version
			}
			return nil
		})
		if m.ID == a.nodeID {
			m.APIAddr = a.cfg.APIURL()
			m.Reachable, m.AppliedIndex, m.State, m.Version = true, a.fsm.AppliedIndex(), a.State(), a.meta.Semver
			m.KeyChecks = a.secrets.Checks()
			m.LogStore = a.cfg.Raft.LogStore
			m.LastContact = a.LastContact().Milliseconds()
			continue
		}
		if m.APIAddr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := a.fetchHealthAs(ctx, m.APIAddr, true)
			if err != nil {
				return
			}
			m.Reachable, m.AppliedIndex, m.State, m.LastContact = true, h.AppliedIndex, h.State, h.LastContact
			m.KeyChecks, m.LogStore = h.KeyChecks, h.LogStore
			if h.Version != "" {
				m.Version = h.Version
			}
		}()
	}
	wg.Wait()
	return members, nil
}

// fetchHealth asks a node about itself. A 503 still carries the body.
func (a *Agent) fetchHealth(ctx context.Context, apiURL string) (*model.Health, error) {
	return a.fetchHealthAs(ctx, apiURL, false)
}

// fetchHealthAs is fetchHealth that, for a member of this cluster
// (credentials), proves the cluster secret and passes on the caller's
// Authorization (api.CallerAuthorization), so the member also lists the
// key checks of its encryption keys, which it tells no anonymous caller.
// Never set for an address that is not a recorded member: the secret
// would go to whoever answers there.
func (a *Agent) fetchHealthAs(ctx context.Context, apiURL string, credentials bool) (*model.Health, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(apiURL, "/")+"/api/system/health", nil)
	if err != nil {
		return nil, err
	}
	if credentials {
		if a.cfg.Cluster.Secret != "" {
			req.Header.Set(api.HeaderClusterSecret, a.cfg.Cluster.Secret)
		}
		if auth := api.CallerAuthorization(ctx); auth != "" {
			req.Header.Set("Authorization", auth)
		}
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var h model.Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return nil, fmt.Errorf("health of %s: %w", apiURL, err)
	}
	return &h, nil
}

// AddMember implements api.Cluster (leader only). A member with the same id
// and address is left alone (joining twice is a no-op); a member that
// reuses only the id or only the address is replaced.
func (a *Agent) AddMember(ctx context.Context, s model.Server) error {
	if !a.IsLeader() {
		return api.ErrNotLeader
	}
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return mapRaftError(err)
	}
	present := false
	for _, cur := range f.Configuration().Servers {
		sameID, sameAddr := string(cur.ID) == s.ID, string(cur.Address) == s.RaftAddr
		switch {
		case sameID && sameAddr:
			present = true
		case sameID || sameAddr:
			if string(cur.ID) == a.nodeID {
				return fmt.Errorf("%w: node %s at %s conflicts with the leader itself", fsm.ErrConflict, s.ID, s.RaftAddr)
			}
			a.logger.Info("replacing a member that reuses the id or address", "old_id", cur.ID, "old_addr", cur.Address, "new_id", s.ID, "new_addr", s.RaftAddr)
			if err := a.raft.RemoveServer(cur.ID, 0, 0).Error(); err != nil {
				return mapRaftError(err)
			}
		}
	}
	if !present {
		a.logger.Info("adding a voter", "node_id", s.ID, "raft_addr", s.RaftAddr, "api_addr", s.APIAddr)
		if err := a.raft.AddVoter(raft.ServerID(s.ID), raft.ServerAddress(s.RaftAddr), 0, 0).Error(); err != nil {
			return mapRaftError(err)
		}
	}
	_, _, err := a.Apply(ctx, fsm.CmdServerUpsert, fsm.Meta{Actor: "system", Timestamp: s.Joined}, fsm.ServerUpsert{Server: s})
	return err
}

// RemoveMember implements api.Cluster (leader only).
func (a *Agent) RemoveMember(ctx context.Context, id string) error {
	if !a.IsLeader() {
		return api.ErrNotLeader
	}
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return mapRaftError(err)
	}
	found := false
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%w: %q is not a member of this cluster", fsm.ErrNotFound, id)
	}
	// Forget the addresses first: once a leader removes itself it can no
	// longer apply anything.
	if _, err := a.applySystem(ctx, fsm.CmdServerRemove, fsm.ServerRemove{ID: id}); err != nil {
		return err
	}
	a.logger.Info("removing member", "node_id", id)
	return mapRaftError(a.raft.RemoveServer(raft.ServerID(id), 0, 0).Error())
}

// JoinCluster implements api.Cluster: ask the cluster at target to add this
// node. auth (the caller's Authorization header) or the configured cluster
// secret proves the right to join.
func (a *Agent) JoinCluster(ctx context.Context, target, auth string) error {
	target = strings.TrimRight(target, "/")
	h, err := a.fetchHealth(ctx, target)
	if err != nil {
		return fmt.Errorf("%w: cannot reach %s: %v", api.ErrInvalidInput, target, err)
	}
	if !h.KnownLeader {
		return fmt.Errorf("%w: the cluster at %s has no leader right now", api.ErrNoLeader, target)
	}
	if own := a.clusterID(); own != "" && h.ClusterID != own {
		return fmt.Errorf("%w: this node belongs to cluster %s but %s is in cluster %s; a node joins a different cluster only with an empty data dir",
			fsm.ErrConflict, own, target, h.ClusterID)
	}
	body, _ := json.Marshal(api.AddMemberRequest{ID: a.nodeID, RaftAddr: a.cfg.RaftAdvertise(), APIAddr: a.cfg.APIURL(), Version: a.meta.Semver})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/api/cluster/members", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.HeaderAPIVersion, api.APIVersion)
	switch {
	case auth != "":
		req.Header.Set("Authorization", auth)
	case a.cfg.Cluster.Secret != "":
		req.Header.Set(api.HeaderClusterSecret, a.cfg.Cluster.Secret)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: join through %s: %v", api.ErrNoLeader, target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		a.logger.Info("joined the cluster", "through", target)
		return nil
	}
	var eb api.ErrorBody
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&eb)
	return &api.RemoteError{URL: target, Status: resp.StatusCode, Body: eb}
}

// joinLoop keeps trying to join through the given members until one
// accepts or the node stops. It runs at every start with --join; joining
// a cluster this node is already in is a no-op on the leader.
func (a *Agent) joinLoop(targets []string) {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		for _, t := range targets {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			err := a.JoinCluster(ctx, t, "")
			cancel()
			if err == nil {
				return
			}
			var re *api.RemoteError
			if errors.As(err, &re) && (re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden) {
				a.logger.Error("the cluster refused to admit this node; check cluster.secret", "through", t, "error", err)
			} else {
				a.logger.Warn("join attempt failed; retrying", "through", t, "attempt", attempt, "error", err)
			}
		}
		select {
		case <-a.shutdownCh:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
