package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/goferhq/gofer/store"
	"github.com/goferhq/gofer/store/model"
)

// TokenPrefix starts every token secret so secret scanners can spot them.
const TokenPrefix = "gofer_"

// identity is who is calling.
type identity struct {
	TokenID string
	User    string
	Roles   []*model.Role
	// Dev is set when authentication is off (dev mode).
	Dev bool
	// ClusterSecret is set when the caller proved the cluster secret
	// rather than presenting a token (a node joining).
	ClusterSecret bool
	// RunToken is set for a run's own token (inject_api_token): it may
	// change only what lives under its pipeline, never the pipeline.
	RunToken bool
	// Extension is set for an extension's token (the extension's id): its
	// run starts may carry trigger keys and stop when it is disabled.
	Extension string
}

const ctxIdentity = "gofer.identity"

func callerOf(c echo.Context) *identity {
	id, _ := c.Get(ctxIdentity).(*identity)
	if id == nil {
		return &identity{}
	}
	return id
}

// actor is how the caller appears in events and records.
func (id *identity) actor() string {
	switch {
	case id.Dev:
		return "dev"
	case id.ClusterSecret:
		return "cluster"
	}
	return id.User
}

// resourceRef is one resource a route touches: a kind and, for kinds that
// carry ids (namespaces, pipelines, extensions), the id.
type resourceRef struct {
	kind   string
	target string
}

// anyTarget is the target a list route asks for; see authorizer.permits.
const anyTarget = "*"

// access says who may call a route.
type access struct {
	// public routes need no token.
	public bool
	// admin routes need a role granting "all".
	admin bool
	// ownExtension admits, besides an admin, the token of the extension
	// the route's :extension names (an extension reporting on its own
	// subscriptions, which no role grant can express).
	ownExtension bool
	// authenticated routes need any valid token; the handler decides
	// what the caller may see (their own token, say).
	authenticated bool
	// clusterSecret routes also accept the cluster secret header.
	clusterSecret bool
	action        model.Action
	resources     func(c echo.Context) []resourceRef
}

// newTokenSecret returns a fresh secret and the hex SHA-256 stored for it.
func newTokenSecret() (secret, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, hashSecret(secret)
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// authenticate resolves the caller from the Authorization header (or the
// cluster secret, on routes that accept it).
func (s *Server) authenticate(c echo.Context, a access) (*identity, error) {
	if s.opts.Dev {
		return &identity{User: "dev", Dev: true}, nil
	}
	req := c.Request()
	if a.clusterSecret {
		if got := req.Header.Get(HeaderClusterSecret); got != "" {
			want := s.cluster.ClusterSecret()
			if want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
				return &identity{ClusterSecret: true}, nil
			}
			return nil, unauthorized("the cluster secret is wrong or no cluster secret is configured on this node")
		}
	}
	secret, err := bearerSecret(req.Header.Get(echo.HeaderAuthorization))
	if err != nil {
		return nil, err
	}
	hash := hashSecret(secret)
	now := s.opts.Now().UnixMilli()
	// The generation is read before state, so an identity cached from
	// state that a concurrent token/role change made stale is dropped on
	// the next request.
	gen := s.cluster.FSM().AuthGeneration()
	if cached := s.tokens.get(hash, gen); cached != nil {
		if cached.expires != 0 && now >= cached.expires {
			return nil, unauthorized("token %s has expired", cached.id.TokenID)
		}
		return cached.id, nil
	}
	var id *identity
	var expires int64
	unknown := false
	lookup := func(tx *bbolt.Tx) error {
		tok, err := store.GetTokenByHash(tx, hash)
		if err != nil {
			return err
		}
		if tok == nil || subtle.ConstantTimeCompare([]byte(tok.Hash), []byte(hash)) != 1 {
			unknown = true
			return unauthorized("unknown token")
		}
		if tok.Disabled {
			return unauthorized("token %s is disabled", tok.ID)
		}
		if tok.Expired(now) {
			return unauthorized("token %s has expired", tok.ID)
		}
		id = &identity{TokenID: tok.ID, User: tok.User, Extension: tok.Extension}
		expires = tok.Expires
		if len(tok.Permissions) > 0 {
			// A run's own token: its grants travel with it.
			id.Roles = append(id.Roles, &model.Role{ID: "run-token", Permissions: tok.Permissions})
			id.RunToken = true
		}
		for _, name := range tok.Roles {
			role, err := store.GetRole(tx, name)
			if err != nil {
				return err
			}
			if role != nil {
				id.Roles = append(id.Roles, role)
			}
		}
		return nil
	}
	err = s.cluster.FSM().View(lookup)
	if unknown && plausibleSecret(secret) && !s.cluster.IsLeader() {
		// A follower may not have applied a token the leader just
		// created: look again once it has caught up (catchup.go).
		budget, waits := minIndexWait(c)
		switch s.catchUp.waitFor(c.Request().Context(), budget) {
		case caughtUp:
			unknown, id, expires = false, nil, 0
			gen = s.cluster.FSM().AuthGeneration()
			err = s.cluster.FSM().View(lookup)
		case catchUpBusy:
			return nil, errCatchUpBusy()
		case catchUpFailed:
			if waits {
				// The caller asked to read at an index this node has
				// not reached: it says so rather than guess the token.
				return nil, unavailable(1, "this node has applied index %d and could not catch up with the leader in time to check the token; retry or read from another node", s.cluster.FSM().AppliedIndex())
			}
			// Nothing proved either way; the local answer stands.
		}
	}
	if err == nil {
		s.tokens.put(hash, &cachedIdentity{gen: gen, id: id, expires: expires})
	}
	return id, err
}

// cachedIdentity is a resolved token, valid while the FSM's auth
// generation is unchanged. Expiry is still checked on every request.
type cachedIdentity struct {
	gen     uint64
	id      *identity
	expires int64
}

// identityCache saves every request a bbolt read and the JSON decoding of
// a token and its roles. Only tokens that authenticated are cached, and
// the cache is bounded (cleared when full), so unknown tokens sprayed at
// the API cannot grow it.
type identityCache struct {
	mu      sync.Mutex
	entries map[string]*cachedIdentity
}

const maxCachedIdentities = 4096

func (c *identityCache) get(hash string, gen uint64) *cachedIdentity {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[hash]; e != nil && e.gen == gen {
		return e
	}
	return nil
}

func (c *identityCache) put(hash string, e *cachedIdentity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedIdentities {
		c.entries = make(map[string]*cachedIdentity)
	}
	c.entries[hash] = e
}

// authMiddleware authenticates and authorizes the route's access rule.
func (s *Server) authMiddleware(a access) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if a.public {
				return next(c)
			}
			id, err := s.authenticate(c, a)
			if err != nil {
				return err
			}
			c.Set(ctxIdentity, id)
			if err := s.limitToken(c, id); err != nil {
				return err
			}
			if id.Dev || id.ClusterSecret || a.authenticated {
				return next(c)
			}
			if a.admin {
				if a.ownExtension && id.Extension != "" && id.Extension == c.Param("extension") {
					return next(c)
				}
				if !s.authz.isAdmin(id, a.action) {
					if a.ownExtension {
						return forbidden("this route needs an admin token or the token of extension %q", c.Param("extension"))
					}
					return forbidden("this route needs an admin token (a role granting \"all\")")
				}
				return next(c)
			}
			var refs []resourceRef
			if a.resources != nil {
				refs = a.resources(c)
			}
			if !s.authz.allowed(id, refs, a.action) {
				return forbidden("token %s may not %s %s", id.TokenID, a.action, describe(refs))
			}
			return next(c)
		}
	}
}

func describe(refs []resourceRef) string {
	parts := make([]string, len(refs))
	for i, r := range refs {
		if r.target != "" {
			parts[i] = r.kind + ":" + r.target
		} else {
			parts[i] = r.kind
		}
	}
	return strings.Join(parts, " + ")
}

// authorizer evaluates roles against a route's resources. Compiled
// patterns are cached; roles change rarely.
type authorizer struct {
	patterns sync.Map // string -> *regexp.Regexp (nil if invalid)
}

func newAuthorizer() *authorizer { return &authorizer{} }

// isAdmin reports whether a role grants "all" with the action.
func (z *authorizer) isAdmin(id *identity, action model.Action) bool {
	if id.Dev {
		return true
	}
	for _, r := range id.Roles {
		for _, p := range r.Permissions {
			if hasAction(p, action) && contains(p.Resources, "all") {
				return true
			}
		}
	}
	return false
}

// allowed is true if one role grants the action on every resource.
func (z *authorizer) allowed(id *identity, refs []resourceRef, action model.Action) bool {
	if id.Dev || id.ClusterSecret {
		return true
	}
	if id.RunToken && action != model.ActionRead && !changesInsidePipeline(refs) {
		// Its grant covers the namespace and pipeline so that it reaches
		// their objects and runs; that must not let it change (disable,
		// delete) the pipeline itself.
		return false
	}
	for _, r := range id.Roles {
		if z.roleAllows(r, refs, action) {
			return true
		}
	}
	return false
}

// changesInsidePipeline: the route acts on something under a pipeline
// (its objects, runs or task executions), not on the pipeline.
func changesInsidePipeline(refs []resourceRef) bool {
	for _, r := range refs {
		switch r.kind {
		case "objects", "runs", "task_executions":
			return true
		}
	}
	return false
}

func (z *authorizer) roleAllows(r *model.Role, refs []resourceRef, action model.Action) bool {
	for _, ref := range refs {
		granted := false
		for _, p := range r.Permissions {
			if hasAction(p, action) && z.permits(p.Resources, ref) {
				granted = true
				break
			}
		}
		if !granted {
			return false
		}
	}
	return len(refs) > 0 || z.isAdmin(&identity{Roles: []*model.Role{r}}, action)
}

// permits reports whether one of resources covers ref: "all", the bare
// kind (any id), or "kind:pattern" whose pattern matches the whole id.
func (z *authorizer) permits(resources []string, ref resourceRef) bool {
	for _, res := range resources {
		if res == "all" || res == ref.kind {
			return true
		}
		kind, pattern, ok := strings.Cut(res, ":")
		if !ok || kind != ref.kind {
			continue
		}
		// A list route asks for target "*": any grant on the kind lets
		// the caller list, and the handler filters the items one by one.
		if ref.target == anyTarget {
			return true
		}
		if re := z.compile(pattern); re != nil && re.MatchString(ref.target) {
			return true
		}
	}
	return false
}

func (z *authorizer) compile(pattern string) *regexp.Regexp {
	if v, ok := z.patterns.Load(pattern); ok {
		re, _ := v.(*regexp.Regexp)
		return re
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		re = nil
	}
	z.patterns.Store(pattern, re)
	return re
}

func hasAction(p model.Permission, a model.Action) bool {
	for _, x := range p.Actions {
		if x == a {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
