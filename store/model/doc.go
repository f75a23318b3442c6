// Package model holds the records Gofer keeps in its replicated state. The
// same structs are the REST API's JSON, so the field names follow upstream
// Gofer's API (snake_case, times in epoch milliseconds).
//
// The package is a leaf: plain data, no behaviour that touches storage, so
// the FSM, the API, the Go client and the CLI can all share it.
package model
