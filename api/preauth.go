package api

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
)

// Header-only authentication before forwarding.
//
// Writes are forwarded to the leader before authentication (DESIGN.md,
// "Forward first, authenticate on the leader"), because this node's token
// table may lag. But some requests cannot succeed on any node whatever the
// lag: one with no credentials, a malformed Authorization header, or a
// secret that is not shaped like a token Gofer issues. They get their 401
// here, from the headers alone, before anything reads the body — so an
// anonymous client cannot make a follower hold a connection (and a proxied
// connection to the leader) while it dribbles a body. A well-formed secret
// this node does not know is still forwarded: only the leader knows whether
// it was just created — unless this node has caught up with the leader
// (catchup.go) and still does not know it: then no node knows it, and the
// 401 comes from here too. A known token is forwarded whatever its state;
// the leader authenticates and authorizes it as before. The cluster secret
// (a node joining) is compared here too, in constant time, against this
// node's own: every node is configured with the same one.
//
// Requests served here (reads) are authenticated by authMiddleware before
// ?min_index or ?consistent make them wait (routes.go), so a made-up token
// cannot hold a connection either.
//
// Public routes with a body (bootstrap, join) read it before anyone is
// authenticated; at most maxPublicBodies of them run at once on a node,
// more get 503 with Retry-After before their body is read.

// tokenSecretLen is the length of every secret newTokenSecret makes.
var tokenSecretLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(32)

// bearerSecret extracts the secret of an "Authorization: Bearer <secret>"
// header, or returns the 401 that explains what is wrong with it.
func bearerSecret(header string) (string, error) {
	if header == "" {
		return "", unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
	}
	scheme, secret, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return "", unauthorized("malformed Authorization header; want 'Bearer <token>'")
	}
	return strings.TrimSpace(secret), nil
}

// plausibleSecret reports whether secret could be one Gofer issued:
// the prefix, then 32 bytes in unpadded base64url.
func plausibleSecret(secret string) bool {
	if len(secret) != tokenSecretLen || !strings.HasPrefix(secret, TokenPrefix) {
		return false
	}
	for _, r := range secret[len(TokenPrefix):] {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// maxPublicBodies caps concurrent requests with a body on public routes.
const maxPublicBodies = 64

// preAuthMiddleware refuses, from the headers alone, requests to a
// non-public route that no node could authenticate; forwarded says whether
// the request is about to be forwarded to the leader.
func (s *Server) preAuthMiddleware(a access, forwarded func(echo.Context) bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		inner := s.preAuth(a, forwarded, next)
		return func(c echo.Context) error {
			return s.limitRefused(c, inner(c))
		}
	}
}

// limitRefused counts a request refused for want of a valid token (401)
// against the client's address; over the limit the answer is 429, so a
// flood of bad tokens is slowed down like any other.
func (s *Server) limitRefused(c echo.Context, err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
		if lerr := s.limitRefusedAddress(c); lerr != nil {
			return lerr
		}
	}
	return err
}

func (s *Server) preAuth(a access, forwarded func(echo.Context) bool, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if s.opts.Dev {
			return next(c)
		}
		if a.public {
			// Anyone may call these: each counts against the
			// client's address, the health check (load balancers
			// poll it, and it costs nothing) excepted.
			if c.Path() != "/api/system/health" {
				if err := s.limitAddress(c); err != nil {
					return err
				}
			}
			if req.ContentLength == 0 {
				return next(c)
			}
			select {
			case s.publicBodies <- struct{}{}:
				defer func() { <-s.publicBodies }()
				return next(c)
			default:
				return unavailable(1, "too many requests with a body on public routes at once; retry")
			}
		}
		if a.clusterSecret {
			if got := req.Header.Get(HeaderClusterSecret); got != "" {
				// Every node has the same cluster.secret: check it
				// here, before the body is read or forwarded, so an
				// anonymous client cannot push slow bodies through
				// this node to the leader.
				want := s.cluster.ClusterSecret()
				if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
					return unauthorized("the cluster secret is wrong or no cluster secret is configured on this node")
				}
				return next(c)
			}
		}
		secret, err := bearerSecret(req.Header.Get(echo.HeaderAuthorization))
		if err != nil {
			return err
		}
		if !plausibleSecret(secret) {
			return unauthorized("unknown token")
		}
		if forwarded(c) {
			if err := s.refuseUnknown(c, secret); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// errCatchUpBusy is the answer to an unknown token when every catch-up
// slot is taken: the token may be one just created, so it is not refused
// as unknown, and it is not forwarded either (a flood of made-up tokens
// would then reach the leader).
func errCatchUpBusy() error {
	return unavailable(1, "too many requests with tokens this node does not know are waiting for it to catch up with the leader; retry")
}

// refuseUnknown decides a request about to be forwarded with a well-formed
// secret: nil (forward it) when this node knows the token, in any state,
// or could not ask the leader (then the leader decides); 401 when no node
// knows it: this node does not, even after catching up with the leader's
// applied index; 503 when too many requests already wait to catch up.
func (s *Server) refuseUnknown(c echo.Context, secret string) error {
	hash := hashSecret(secret)
	known := func() bool {
		found := false
		_ = s.cluster.FSM().View(func(tx *bbolt.Tx) error {
			tok, err := store.GetTokenByHash(tx, hash)
			found = err != nil || tok != nil // a storage error proves nothing
			return nil
		})
		return found
	}
	if known() {
		return nil
	}
	switch s.catchUp.wait(c.Request().Context()) {
	case caughtUp:
		if known() {
			return nil
		}
		return unauthorized("unknown token")
	case catchUpBusy:
		return errCatchUpBusy()
	default:
		return nil
	}
}
