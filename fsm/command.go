package fsm

import (
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
}

// envelope is the JSON body after the type byte.
type envelope struct {
	Meta Meta            `json:"meta"`
	Body json.RawMessage `json:"body"`
}

// Encode frames a command for raft.Apply: one type byte, then JSON.
func Encode(t CommandType, meta Meta, body any) ([]byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", t, err)
	}
	env, err := json.Marshal(envelope{Meta: meta, Body: raw})
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", t, err)
	}
	return append([]byte{byte(t)}, env...), nil
}

// decode splits a log entry into its type, meta and body. It returns an
// error rather than panicking so the caller decides how to fail.
func decode(data []byte) (CommandType, *envelope, error) {
	if len(data) < 1 {
		return 0, nil, fmt.Errorf("empty command")
	}
	t := CommandType(data[0])
	var env envelope
	if err := json.Unmarshal(data[1:], &env); err != nil {
		return t, nil, fmt.Errorf("command %d: %w", t, err)
	}
	return t, &env, nil
}
