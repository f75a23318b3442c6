package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// CommandType identifies a raft command. The numbers are written into the
// raft log and snapshots forever: append new types at the end, never
// renumber or reuse one.
type CommandType byte

// IgnoreUnknownFlag marks a command that an older node may skip if it does
// not know the type (for optional housekeeping). Without the flag an
// unknown type stops the node: silent divergence is worse than a crash.
const IgnoreUnknownFlag CommandType = 0x80

// The command set. Append only.
const (
	CmdClusterInit      CommandType = 1
	CmdServerUpsert     CommandType = 2
	CmdServerRemove     CommandType = 3
	CmdNamespaceCreate  CommandType = 4
	CmdNamespaceUpdate  CommandType = 5
	CmdNamespaceDelete  CommandType = 6
	CmdConfigRegister   CommandType = 7
	CmdConfigDeploy     CommandType = 8
	CmdConfigDelete     CommandType = 9
	CmdPipelineSetState CommandType = 10
	CmdPipelineDelete   CommandType = 11
	CmdTokenBootstrap   CommandType = 12
	CmdTokenCreate      CommandType = 13
	CmdTokenSetDisabled CommandType = 14
	CmdTokenDelete      CommandType = 15
	CmdRoleCreate       CommandType = 16
	CmdRoleUpdate       CommandType = 17
	CmdRoleDelete       CommandType = 18
	CmdSystemUpdate     CommandType = 19
	CmdPrune            CommandType = 20 | IgnoreUnknownFlag
	CmdEventDelete      CommandType = 21
	CmdRunCreate        CommandType = 22
	CmdRunStart         CommandType = 23
	CmdTaskSchedule     CommandType = 24
	CmdTaskRunning      CommandType = 25
	CmdTaskFinish       CommandType = 26
	CmdTaskResolve      CommandType = 27
	CmdRunFinish        CommandType = 28
	CmdRunCancel        CommandType = 29
	CmdTaskCancel       CommandType = 30
	CmdLogAppend        CommandType = 31
	CmdLogsDelete       CommandType = 32
	// CmdLogsExpireOptional was log expiry marked optional by mistake: it
	// changes tasks and emits events, so a node that skipped it would
	// diverge. Entries of it in existing logs still apply; leaders issue
	// CmdLogsExpire.
	CmdLogsExpireOptional CommandType = 33 | IgnoreUnknownFlag
	CmdSecretPut          CommandType = 34
	CmdSecretDelete       CommandType = 35
	CmdObjectPut          CommandType = 36
	CmdObjectDelete       CommandType = 37
	CmdRunObjectsExpire   CommandType = 38
	CmdLogsExpire         CommandType = 39
	// Encryption key rotation (fsm/DESIGN.md, "Key rotation").
	CmdKeyRotationStart  CommandType = 40
	CmdSecretsReseal     CommandType = 41
	CmdKeyRotationFinish CommandType = 42
	// CmdRoleDeleteDetach deletes a role even while tokens hold it, taking
	// it out of them (CmdRoleDelete refused that).
	CmdRoleDeleteDetach CommandType = 43
	// Extensions and pipeline subscriptions (docs/extensions.md).
	CmdExtensionInstall      CommandType = 44
	CmdExtensionSetStatus    CommandType = 45
	CmdExtensionDelete       CommandType = 46
	CmdSubscriptionCreate    CommandType = 47
	CmdSubscriptionSetStatus CommandType = 48
	CmdSubscriptionDelete    CommandType = 49
	// The extension supervisor (agent/supervisor): what it observes of an
	// extension's container, and the once-per-cluster install of the
	// standard extensions.
	CmdExtensionSetState   CommandType = 50
	CmdExtensionStdInstall CommandType = 51
	// CmdTriggerSkip records ticks a trigger extension skipped
	// (docs/triggers.md, "Missed ticks and catch-up").
	CmdTriggerSkip CommandType = 52
	// CmdDeploymentDecide records the one decision of a canary
	// deployment (promote, rollback or abort).
	CmdDeploymentDecide CommandType = 53
	// CmdAuditRecord appends audit events: API requests that change (or
	// tried to change) something, recorded by the leader after answering.
	CmdAuditRecord CommandType = 54
	// CmdRunsDelete deletes a pipeline's finished runs past its run
	// retention (docs/runs.md, "Run retention"), a bounded batch each.
	CmdRunsDelete CommandType = 55
	// CmdTasksSlim rewrites fat task executions (written by entries before
	// envelope version 6) slim, a bounded batch at a time, issued by the
	// leader's migrator (fsm/DESIGN.md, "Version 6").
	CmdTasksSlim CommandType = 56
)

// Meta travels with every command. Everything non-deterministic (time, ids,
// who asked) is decided on the leader before apply and carried here.
type Meta struct {
	RequestID string `json:"request_id,omitempty"`
	// Actor is the token user the change is attributed to.
	Actor string `json:"actor,omitempty"`
	// ActorID is the token id, used to scope idempotency keys per caller.
	ActorID string `json:"actor_id,omitempty"`
	// Timestamp is the leader's clock in epoch ms when it accepted the
	// request; appliers use it for every "created"/"modified" field.
	Timestamp      int64  `json:"ts"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// RequestHash identifies the request that carried IdempotencyKey
	// (hex SHA-256 of method, path, query and canonical body, computed by
	// the leader), so the key cannot replay the outcome of another request.
	RequestHash string `json:"request_hash,omitempty"`
}

// envelopeVersion is the second byte of every command. Version 1: meta
// as length-prefixed fields, then the JSON body (parsed once, by the
// applier). Version 2 adds RequestHash after IdempotencyKey. Version 3 has
// version 2's layout (the hash always present, maybe empty) and changes
// what appliers write: typed event details and lower-case deployment
// states. Versions 1 and 2 were written by binaries that stored details
// as strings and deployment states PascalCase, and every node applies them
// so, whatever binary it runs: the stored bytes follow the log entry, not
// the node (DESIGN.md, "Envelope and evolution"). Version 4 keeps the
// layout again and changes what release appliers write: a canary run's
// duration under its own key instead of inside the deployment record, and
// the release step events (counted_canary_run, switched_live_version and
// the numbers on the deployment events). Version 3 entries keep writing
// what version 3 binaries wrote. Version 5 keeps the layout and lets a
// LogAppend store per-stream positions (TaskExecution.StreamOffsets), for
// backends that keep stdout and stderr apart; older entries never stored
// them. Version 6 keeps the layout and makes run creation write slim
// task executions (the run's config version, not
// the task's config: store/taskconfig.go); older entries keep writing fat
// ones.
const (
	envelopeVersion      = 1
	envelopeVersionHash  = 2
	envelopeVersionTyped = 3
	envelopeVersionSteps = 4
	envelopeVersionLogs  = 5
	envelopeVersionSlim  = 6
	// envelopeVersionCurrent is what this binary proposes.
	envelopeVersionCurrent = envelopeVersionSlim
)

// envelope is a decoded command: its meta, raw JSON body and the envelope
// version it was written with.
type envelope struct {
	Meta    Meta
	Body    []byte
	Version byte
}

// legacyFormat reports whether appliers must write this entry's records in
// the format of the binaries that wrote versions 1 and 2.
func (e *envelope) legacyFormat() bool { return e.Version < envelopeVersionTyped }

// releaseSteps reports whether appliers keep canary durations under
// per-run keys and emit the release step events (version 4 on).
func (e *envelope) releaseSteps() bool { return e.Version >= envelopeVersionSteps }

// streamOffsets reports whether a log append stores the per-stream
// positions it carries (version 5 on).
func (e *envelope) streamOffsets() bool { return e.Version >= envelopeVersionLogs }

// slimTasks reports whether run creation writes slim task executions
// (version 6 on).
func (e *envelope) slimTasks() bool { return e.Version >= envelopeVersionSlim }

// Encode frames a command for raft.Apply:
// [type][version][meta fields][JSON body], always at the current version.
func Encode(t CommandType, meta Meta, body any) ([]byte, error) {
	return encodeAt(envelopeVersionCurrent, t, meta, body)
}

// encodeAt frames a command at a given envelope version; older versions
// are only for tests that replay what older binaries wrote (version 1
// cannot carry a request hash).
func encodeAt(version byte, t CommandType, meta Meta, body any) ([]byte, error) {
	var raw []byte
	fast, isFast := body.(fastEncoder)
	if !isFast {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode command %d: %w", t, err)
		}
	}
	if version == envelopeVersion && meta.RequestHash != "" {
		return nil, fmt.Errorf("encode command %d: envelope version 1 has no request hash", t)
	}
	bodyCap := len(raw)
	if isFast {
		bodyCap = 256
	}
	buf := make([]byte, 0, 2+len(meta.RequestID)+len(meta.Actor)+len(meta.ActorID)+len(meta.IdempotencyKey)+len(meta.RequestHash)+6*binary.MaxVarintLen64+bodyCap)
	buf = append(buf, byte(t), version)
	buf = appendString(buf, meta.RequestID)
	buf = appendString(buf, meta.Actor)
	buf = appendString(buf, meta.ActorID)
	buf = binary.AppendVarint(buf, meta.Timestamp)
	buf = appendString(buf, meta.IdempotencyKey)
	if version != envelopeVersion {
		buf = appendString(buf, meta.RequestHash)
	}
	if isFast {
		return fast.appendJSON(buf), nil
	}
	return append(buf, raw...), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decode splits a log entry into its type, meta and body. It returns an
// error rather than panicking so the caller decides how to fail.
func decode(data []byte) (CommandType, *envelope, error) {
	if len(data) < 2 {
		return 0, nil, fmt.Errorf("command too short (%d bytes)", len(data))
	}
	t := CommandType(data[0])
	version := data[1]
	if version < envelopeVersion || version > envelopeVersionCurrent {
		return t, nil, fmt.Errorf("command %d: unknown envelope version %d", t, data[1])
	}
	r := &metaReader{buf: data[2:]}
	env := &envelope{Version: version}
	env.Meta.RequestID = r.string()
	env.Meta.Actor = r.string()
	env.Meta.ActorID = r.string()
	env.Meta.Timestamp = r.varint()
	env.Meta.IdempotencyKey = r.string()
	if version != envelopeVersion {
		env.Meta.RequestHash = r.string()
	}
	if r.err != nil {
		return t, nil, fmt.Errorf("command %d: %w", t, r.err)
	}
	env.Body = r.buf
	return t, env, nil
}

// metaReader reads length-prefixed fields, remembering the first error.
type metaReader struct {
	buf []byte
	err error
}

func (r *metaReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.err = fmt.Errorf("bad varint in meta")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *metaReader) string() string {
	if r.err != nil {
		return ""
	}
	l, n := binary.Uvarint(r.buf)
	if n <= 0 || uint64(len(r.buf)-n) < l {
		r.err = fmt.Errorf("truncated meta field")
		return ""
	}
	s := string(r.buf[n : n+int(l)])
	r.buf = r.buf[n+int(l):]
	return s
}
