package api

import (
	"encoding/base64"
	"strings"

	"github.com/labstack/echo/v4"
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
// it was just created.

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

// preAuthMiddleware refuses, from the headers alone, requests to a
// non-public route that no node could authenticate.
func (s *Server) preAuthMiddleware(a access) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if s.opts.Dev || a.public {
				return next(c)
			}
			req := c.Request()
			if a.clusterSecret && req.Header.Get(HeaderClusterSecret) != "" {
				return next(c) // checked where the route runs
			}
			secret, err := bearerSecret(req.Header.Get(echo.HeaderAuthorization))
			if err != nil {
				return err
			}
			if !plausibleSecret(secret) {
				return unauthorized("unknown token")
			}
			return next(c)
		}
	}
}
