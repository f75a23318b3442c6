package api

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

func (s *Server) listMembers(c echo.Context) error {
	page, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(withCallerAuthorization(c), 5*time.Second)
	defer cancel()
	members, err := s.cluster.Members(ctx)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("members", pageSlice(members, page)))
}

// AddMemberRequest is what a joining node sends to the cluster.
type AddMemberRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Version  string `json:"version"`
}

// validate checks a join request's fields so a bad address never reaches
// the raft configuration.
func (r *AddMemberRequest) validate() error {
	if err := sdk.ValidateIdentifier(r.ID); err != nil {
		return badRequest("id: %s", err)
	}
	host, port, err := net.SplitHostPort(r.RaftAddr)
	if err != nil || host == "" || port == "" {
		return badRequest("raft_addr must be host:port, got %q", r.RaftAddr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return badRequest("raft_addr %q is an unspecified address; advertise an address peers can reach", r.RaftAddr)
	}
	u, err := url.Parse(r.APIAddr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badRequest("api_addr must be an http(s) URL like http://10.0.0.5:8080, got %q", r.APIAddr)
	}
	return nil
}

// addMember adds a node to the raft configuration (leader only; followers
// forward). Adding a node that is already a member with the same
// addresses changes nothing.
func (s *Server) addMember(c echo.Context) error {
	var req AddMemberRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), applyTimeout)
	defer cancel()
	srv := model.Server{ID: req.ID, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr, Version: req.Version, Joined: s.opts.Now().UnixMilli()}
	if err := s.cluster.AddMember(ctx, srv); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("member", srv))
}

func (s *Server) removeMember(c echo.Context) error {
	id := c.Param("id")
	if err := validID("member id", id); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), applyTimeout)
	defer cancel()
	if err := s.cluster.RemoveMember(ctx, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// JoinRequest asks this node to join the cluster reachable at Address.
type JoinRequest struct {
	Address string `json:"address"`
}

// joinCluster makes this node ask another cluster to add it. A node that
// already belongs to a cluster needs a local admin token; a fresh node
// cannot check tokens, so it passes the caller's Authorization header to
// the target cluster, which decides.
func (s *Server) joinCluster(c echo.Context) error {
	if s.cluster.HasState() && !s.opts.Dev {
		id, err := s.authenticate(c, access{})
		if err != nil {
			return err
		}
		if !s.authz.isAdmin(id, model.ActionWrite) {
			return forbidden("joining a cluster needs an admin token")
		}
	}
	var req JoinRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := url.Parse(req.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badRequest("address must be the http(s) URL of a cluster node, got %q", req.Address)
	}
	if u.Scheme != "https" && s.opts.TLS != nil {
		// The caller's Authorization header goes to that address: a TLS
		// node never sends it in clear (server.join must be https too).
		return badRequest("address: this node runs with TLS, so the cluster to join must be an https:// URL, got %q", req.Address)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 30*time.Second)
	defer cancel()
	if err := s.cluster.JoinCluster(ctx, req.Address, c.Request().Header.Get(echo.HeaderAuthorization)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, joinAnswer{Joined: req.Address, NodeID: s.cluster.NodeID()})
}

// joinAnswer is the answer of POST /api/cluster/join.
type joinAnswer struct {
	Joined string `json:"joined"`
	NodeID string `json:"node_id"`
}

// saveSnapshot streams a backup of the whole cluster state from the
// leader.
func (s *Server) saveSnapshot(c echo.Context) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/octet-stream")
	w.Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="gofer-%s.snap"`, time.Now().UTC().Format("20060102T150405Z")))
	bw := &lazyHeaderWriter{c: c}
	if err := s.cluster.SnapshotSave(c.Request().Context(), bw); err != nil {
		if !bw.started {
			return err
		}
		s.logger.Error("snapshot stream failed after it started", "error", err)
		panic(http.ErrAbortHandler) // cut the connection so the client sees a short read
	}
	if !bw.started {
		w.WriteHeader(http.StatusOK)
	}
	return bw.flush()
}

// lazyHeaderWriter sends the 200 status only when the first byte is
// written, so an error before that can still be a JSON error response.
type lazyHeaderWriter struct {
	c       echo.Context
	started bool
	buf     *bufio.Writer
}

func (w *lazyHeaderWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.started = true
		w.c.Response().WriteHeader(http.StatusOK)
		w.buf = bufio.NewWriterSize(w.c.Response(), 1<<20)
	}
	return w.buf.Write(p)
}

func (w *lazyHeaderWriter) flush() error {
	if w.buf == nil {
		return nil
	}
	return w.buf.Flush()
}

// restoreSnapshot replaces the whole cluster state with an uploaded backup.
// A damaged, truncated or unverifiable (version 1, unless force_legacy)
// backup is refused with 400 before anything changes.
func (s *Server) restoreSnapshot(c echo.Context) error {
	forceLegacy, err := boolQuery(c, "force_legacy")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), 10*time.Minute)
	defer cancel()
	res, err := s.cluster.SnapshotRestore(ctx, c.Request().Body, RestoreOptions{ForceLegacy: forceLegacy})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wrap("restore", res))
}
