// Package api is Gofer's REST API: echo handlers and the middleware every
// request passes (request id, version header, body limit, leader
// forwarding, consistency, authentication and authorization).
//
// The API never writes bbolt. Reads go through the local state (store
// helpers on a read transaction); writes become fsm commands that the
// Cluster interface replicates through raft. Everything non-deterministic
// (time, ids, token secrets) is decided here, on the leader, before apply.
package api
