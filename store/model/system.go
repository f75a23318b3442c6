package model

// System holds cluster-wide switches.
type System struct {
	BootstrapTokenCreated bool `json:"bootstrap_token_created"`
	// IgnorePipelineRunEvents is the event-ingress toggle: while true, no new
	// runs are accepted.
	IgnorePipelineRunEvents bool `json:"ignore_pipeline_run_events"`
}

// Metadata is what GET /api/system/metadata returns.
type Metadata struct {
	Semver string `json:"semver"`
	Commit string `json:"commit"`
}

// Server is a cluster member's addresses as recorded in state, so any node
// can forward a request to the leader's API.
type Server struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Version  string `json:"version"`
	Joined   int64  `json:"joined"`
}

// Member is one row of `gofer server members`.
type Member struct {
	ID           string `json:"id"`
	RaftAddr     string `json:"raft_addr"`
	APIAddr      string `json:"api_addr"`
	Voter        bool   `json:"voter"`
	Leader       bool   `json:"leader"`
	Reachable    bool   `json:"reachable"`
	AppliedIndex uint64 `json:"applied_index"`
	// LastContact is ms since the member last heard from the leader
	// (0 for the leader itself, -1 if unknown).
	LastContact int64  `json:"last_contact_ms"`
	State       string `json:"state"`
	// KeyChecks are the member's secret encryption keys (Health.KeyChecks);
	// empty when it was not reachable or did not list them (they are
	// asked with the cluster secret and the admin caller's token).
	KeyChecks []string `json:"key_checks,omitempty"`
	Version   string   `json:"version"`
	// LogStore is the member's raft log store ("boltdb" or "wal"), as it
	// reports it; empty when it was not reachable or predates the field.
	LogStore string `json:"log_store,omitempty"`
}

// Health is GET /api/system/health: enough for a load balancer and for
// `gofer server members` to ask each node about itself.
type Health struct {
	NodeID       string `json:"node_id"`
	ClusterID    string `json:"cluster_id"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	KnownLeader  bool   `json:"known_leader"`
	AppliedIndex uint64 `json:"applied_index"`
	// LastLogIndex is the newest entry in this node's raft log (committed
	// or not): how complete its log is in an election.
	LastLogIndex uint64 `json:"last_log_index"`
	LastContact  int64  `json:"last_contact_ms"`
	Version      string `json:"version"`
	// KeyChecks identify the secret encryption keys this node holds (its
	// configured key first), so a leader can tell that every node holds a
	// key before it rotates the cluster's secrets to it. Listed only to a
	// caller proving the cluster secret or presenting an admin token: a
	// key check is a fast hash of the key (store/seal), so it lets whoever
	// holds it test guesses of a weak key offline.
	KeyChecks []string `json:"key_checks,omitempty"`
	// LogStore is this node's raft log store: "boltdb" or "wal"
	// (raft.log_store). Empty from a node that predates the field.
	LogStore string `json:"log_store,omitempty"`
}
