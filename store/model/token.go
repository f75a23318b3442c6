package model

// Token is an API credential. Only the SHA-256 of its secret is kept; the
// secret itself is shown once, when the token is created.
type Token struct {
	ID       string            `json:"id"`
	User     string            `json:"user"`
	Roles    []string          `json:"roles"`
	Metadata map[string]string `json:"metadata"`
	Created  int64             `json:"created"`
	// Expires is epoch ms; 0 means never.
	Expires  int64 `json:"expires"`
	Disabled bool  `json:"disabled"`
}

// Expired reports whether the token has passed its expiry at time now (ms).
func (t *Token) Expired(now int64) bool { return t.Expires != 0 && now >= t.Expires }

// StoredToken is the token as kept in state, hash included. The API never
// serialises it.
type StoredToken struct {
	Token
	// Hash is hex SHA-256 of the secret.
	Hash string `json:"hash"`
	// Permissions are granted besides Roles' (a run's own token).
	Permissions []Permission `json:"permissions,omitempty"`
	// Sealed is the secret itself, sealed with the cluster's secret key
	// (store/seal), for a run token the executor hands to its tasks and
	// an extension's token the supervisor hands to its container (both
	// under seal.RunTokenLocation, so a key rotation re-seals both).
	// Tokens users create never keep their secret.
	Sealed []byte `json:"sealed,omitempty"`
	// KeyCheck names the key that sealed Sealed; empty on records written
	// before key rotation existed (the cluster's recorded key).
	KeyCheck string `json:"key_check,omitempty"`
	// Extension names the extension whose token this is; run starts made
	// with it may carry trigger keys, and stop when it is disabled.
	Extension string `json:"extension,omitempty"`
}

// RunTokenPermissions is what a run's injected API token may do: read
// and write the objects, runs and task executions of its own pipeline,
// and read the pipeline, its configs and deployments. It cannot read
// secrets, the (cluster-wide) event stream, or any other pipeline; the
// API also keeps it from changing the pipeline itself.
func RunTokenPermissions(namespace, pipeline string) []Permission {
	ns, p := "namespaces:"+namespace, "pipelines:"+pipeline
	return []Permission{
		{Resources: []string{ns, p, "objects", "runs", "task_executions"}, Actions: []Action{ActionRead, ActionWrite}},
		{Resources: []string{ns, p, "configs", "deployments"}, Actions: []Action{ActionRead}},
	}
}

// Action is what a request does to a resource.
type Action string

// The three actions a permission can grant.
const (
	ActionRead   Action = "read"
	ActionWrite  Action = "write"
	ActionDelete Action = "delete"
)

// Permission grants actions on resources. A resource is "kind" or
// "kind:pattern"; the pattern is a regular expression that must match the
// whole id (namespaces, pipelines and extensions carry ids). "all" grants
// every resource.
type Permission struct {
	Resources []string `json:"resources"`
	Actions   []Action `json:"actions"`
}

// Role is a named set of permissions that tokens reference.
type Role struct {
	ID          string       `json:"id"`
	Description string       `json:"description"`
	Permissions []Permission `json:"permissions"`
	// SystemRole roles are built in and cannot be changed or deleted.
	SystemRole bool  `json:"system_role"`
	Created    int64 `json:"created"`
	Modified   int64 `json:"modified"`
}

// Built-in role ids.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Resource kinds a permission can name. cluster_events lets a role read
// events that belong to no namespace (tokens, roles, membership, system).
var ResourceKinds = []string{
	"all", "cluster_events", "configs", "deployments", "events", "extensions", "namespaces", "objects",
	"permissions", "pipelines", "runs", "secrets", "subscriptions", "system",
	"task_executions", "tokens",
}

// BuiltinRoles returns the roles every cluster starts with.
func BuiltinRoles(now int64) []*Role {
	rwd := []Action{ActionRead, ActionWrite, ActionDelete}
	return []*Role{
		{
			ID:          RoleAdmin,
			Description: "Full access to every resource, including tokens, roles and the cluster.",
			Permissions: []Permission{{Resources: []string{"all"}, Actions: rwd}},
			SystemRole:  true, Created: now, Modified: now,
		},
		{
			ID:          RoleUser,
			Description: "Read, write and delete pipelines and their runs in the default namespace.",
			Permissions: []Permission{{
				Resources: []string{
					"namespaces:default", "pipelines:.*", "configs", "deployments", "events",
					"objects", "runs", "secrets", "subscriptions", "task_executions",
				},
				Actions: rwd,
			}},
			SystemRole: true, Created: now, Modified: now,
		},
	}
}
